"""Compiled coercion of request variables, for operations with a plan.

A mirror of graphql-core's `coerce_input_value`, built once per operation as
a tree of small functions instead of re-inspecting the types for every
value. It only decides *what* the coerced values are; whenever a value is
invalid it gives up (returns None) and graphql-core's own coercion runs, so
error messages stay graphql-core's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from graphql import (
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    Undefined,
    VariableDefinitionNode,
    is_required_input_field,
    type_from_ast,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.pyutils import is_iterable
from graphql.type import GraphQLEnumType, GraphQLScalarType

Coercer = Callable[[Any], Any]
# From raw variables to the coerced dict, or None: let graphql-core coerce (and explain).
VariablesCoercer = Callable[[dict[str, Any]], dict[str, Any] | None]


class Invalid(Exception):
    """The value does not fit the type; graphql-core will say why."""


class NotSupported(Exception):
    """A type this module does not mirror; use graphql-core for the operation."""


def variables_coercer(schema: GraphQLSchema, definitions: Collection[VariableDefinitionNode]) -> VariablesCoercer:
    """A function from raw variables to the coerced dict, or None: let graphql-core coerce (and explain)."""
    entries: list[tuple[str, Coercer, Any, bool]] = []
    for definition in definitions:
        name = definition.variable.name.value
        type_ = type_from_ast(schema, definition.type)
        if type_ is None:
            raise NotSupported(name)
        default: Any = Undefined
        if definition.default_value is not None:
            defaults = get_variable_values(schema, [definition], {})
            if not isinstance(defaults, VariableValues):
                raise NotSupported(name)
            default = defaults.coerced.get(name, Undefined)
        entries.append((name, _coercer(type_), default, isinstance(type_, GraphQLNonNull)))  # type: ignore[arg-type]

    def coerce(raw: dict[str, Any]) -> dict[str, Any] | None:
        coerced: dict[str, Any] = {}
        try:
            for name, coerce_value, default, required in entries:
                if name in raw:
                    coerced[name] = coerce_value(raw[name])
                elif default is not Undefined:
                    coerced[name] = default
                elif required:
                    return None
        except Invalid:
            return None
        return coerced

    return coerce


def _coercer(type_: GraphQLInputType) -> Coercer:
    if isinstance(type_, GraphQLNonNull):
        inner = _coercer(type_.of_type)

        def non_null(value: Any) -> Any:
            if value is None:
                raise Invalid
            return inner(value)

        return non_null
    if isinstance(type_, GraphQLList):
        item = _coercer(type_.of_type)

        def listed(value: Any) -> Any:
            if value is None:
                return None
            if not is_iterable(value):
                return [item(value)]  # a single value is a list of one
            return [item(each) for each in value]

        return listed
    if isinstance(type_, GraphQLInputObjectType):
        return _input_object(type_)
    if isinstance(type_, GraphQLEnumType):
        return _enum(type_)
    if isinstance(type_, GraphQLScalarType):
        coerce_leaf = type_.coerce_input_value

        def leaf(value: Any) -> Any:
            if value is None:
                return None
            try:
                coerced = coerce_leaf(value)
            except Exception:
                raise Invalid from None
            if coerced is Undefined:
                raise Invalid
            return coerced

        return leaf
    raise NotSupported(str(type_))


def _enum(type_: GraphQLEnumType) -> Coercer:
    """An enum's names, each coerced once by the type itself: a lookup per value instead of the type's coercion
    (strawberry's calls the Python enum, whose lookup by value runs in Python)."""
    members = {name: type_.coerce_input_value(name) for name in type_.values}

    def enum(value: Any) -> Any:
        if value is None:
            return None
        try:
            return members[value]
        except (KeyError, TypeError):  # not a name of the enum, or not even hashable: graphql-core says why
            raise Invalid from None

    return enum


def _input_object(type_: GraphQLInputObjectType) -> Coercer:
    if type_.is_one_of:
        raise NotSupported(type_.name)
    fields = []
    for name, field in type_.fields.items():
        if not is_required_input_field(field) and (field.default is not None or field.default_value is not Undefined):
            raise NotSupported(f"{type_.name}.{name} has a default")
        fields.append((name, field.out_name or name, _coercer(field.type), is_required_input_field(field)))
    known = frozenset(type_.fields)
    out_type = type_.out_type

    def input_object(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict) or not known.issuperset(value):
            raise Invalid
        coerced: dict[str, Any] = {}
        for name, out_name, coerce_field, required in fields:
            if name in value:
                coerced[out_name] = coerce_field(value[name])
            elif required:
                raise Invalid
        return out_type(coerced)

    return input_object
