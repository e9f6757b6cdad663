"""Compiled coercion of request variables, for operations with a plan.

A mirror of graphql-core's `coerce_input_value`, written once per operation as
one Python function of plain statements (as graphql-jit does) instead of
re-inspecting the types for every value. It only decides *what* the coerced
values are; whenever a value is invalid it gives up (returns None) and
graphql-core's own coercion runs, so error messages stay graphql-core's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLID,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLString,
    Undefined,
    VariableDefinitionNode,
    is_required_input_field,
    type_from_ast,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.pyutils import is_iterable
from graphql.type import GraphQLEnumType, GraphQLScalarType

from gateway.execution.generated import GeneratedFunction

# From raw variables to the coerced dict, or None: let graphql-core coerce (and explain).
VariablesCoercer = Callable[[dict[str, Any]], dict[str, Any] | None]


class NotSupported(Exception):
    """A type this module does not mirror; use graphql-core for the operation."""


def variables_coercer(schema: GraphQLSchema, definitions: Collection[VariableDefinitionNode]) -> VariablesCoercer:
    """A function from raw variables to the coerced dict, or None: let graphql-core coerce (and explain)."""
    writer = _Writer()
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
        writer.emit(1, f"if {name!r} in raw:")
        writer.emit(2, f"v = raw[{name!r}]")
        result = writer.value(type_, "v", 2)  # type: ignore[arg-type]
        writer.emit(2, f"coerced[{name!r}] = {result}")
        if default is not Undefined:
            writer.emit(1, f"else: coerced[{name!r}] = {writer.name(default)}")
        elif isinstance(type_, GraphQLNonNull):
            writer.emit(1, "else: return None")
    return writer.coercer()


class _Writer(GeneratedFunction):
    """Writes the coercion of an operation's variables as one function (graphql-core's coerce_input_value,
    unrolled for these types): `return None` wherever a value does not fit, for graphql-core to explain."""

    def __init__(self) -> None:
        super().__init__("coerce", "raw", {"Undefined": Undefined, "is_iterable": is_iterable})
        self.emit(1, "coerced = {}")

    def coercer(self) -> VariablesCoercer:
        coerce: VariablesCoercer = self.compile("    return coerced", "<variables coercer>", NotSupported)
        return coerce

    def value(self, type_: GraphQLInputType, value: str, depth: int) -> str:
        """Emit the coercion of `value` (a local); the name of the local holding the result."""
        if isinstance(type_, GraphQLNonNull):
            self.emit(depth, f"if {value} is None: return None")
            return self._present(type_.of_type, value, depth)
        result = self.local()
        self.emit(depth, f"if {value} is None: {result} = None")
        self.emit(depth, "else:")
        inner = self._present(type_, value, depth + 1)
        self.emit(depth + 1, f"{result} = {inner}")
        return result

    def _present(self, type_: GraphQLInputType, value: str, depth: int) -> str:
        """Emit the coercion of `value`, known not to be None."""
        result = self.local()
        if isinstance(type_, GraphQLList):
            items, item = self.local(), self.local()
            # A single value is a list of one.
            self.emit(depth, f"{items} = {value} if type({value}) is list or is_iterable({value}) else [{value}]")
            self.emit(depth, f"{result} = []")
            self.emit(depth, f"for {item} in {items}:")
            self.emit(depth + 1, f"{result}.append({self.value(type_.of_type, item, depth + 1)})")
        elif isinstance(type_, GraphQLInputObjectType):
            self._input_object(type_, value, result, depth)
        elif isinstance(type_, GraphQLEnumType):
            # Each name coerced once by the type itself: a lookup per value instead of the type's coercion
            # (strawberry's calls the Python enum, whose lookup by value runs in Python).
            members = self.name({name: type_.coerce_input_value(name) for name in type_.values})
            self.emit(depth, f"try: {result} = {members}[{value}]")
            # Not a name of the enum, or not even hashable.
            self.emit(depth, "except (KeyError, TypeError): return None")
        elif isinstance(type_, GraphQLScalarType):
            self._scalar(type_, value, result, depth)
        else:
            raise NotSupported(str(type_))
        return result

    def _input_object(self, type_: GraphQLInputObjectType, value: str, result: str, depth: int) -> None:
        if type_.is_one_of:
            raise NotSupported(type_.name)
        known = self.name(frozenset(type_.fields))
        self.emit(depth, f"if not isinstance({value}, dict) or not {known}.issuperset({value}): return None")
        self.emit(depth, f"{result} = {{}}")
        for name, field in type_.fields.items():
            required = is_required_input_field(field)
            if not required and (field.default is not None or field.default_value is not Undefined):
                raise NotSupported(f"{type_.name}.{name} has a default")
            field_value = self.local()
            self.emit(depth, f"if {name!r} in {value}:")
            self.emit(depth + 1, f"{field_value} = {value}[{name!r}]")
            coerced = self.value(field.type, field_value, depth + 1)
            self.emit(depth + 1, f"{result}[{(field.out_name or name)!r}] = {coerced}")
            if required:
                self.emit(depth, "else: return None")
        if type_.out_type is not GraphQLInputObjectType.out_type:
            self.emit(depth, f"{result} = {self.name(type_.out_type)}({result})")

    def _scalar(self, type_: GraphQLScalarType, value: str, result: str, depth: int) -> None:
        general = self.name(type_.coerce_input_value)
        inline = _INLINE_SCALARS.get(type_)
        if inline is not None:
            # A value of the scalar's own Python type, which it takes as it is.
            self.emit(depth, f"if {inline.format(v=value)}: {result} = {value}")
            self.emit(depth, "else:")
            depth += 1
        self.emit(depth, f"try: {result} = {general}({value})")
        self.emit(depth, "except Exception: return None")
        self.emit(depth, f"if {result} is Undefined: return None")


# What a built-in scalar's coercion returns unchanged: checked inline, the rest goes through the scalar.
_INLINE_SCALARS = {
    GraphQLString: "type({v}) is str",
    GraphQLID: "type({v}) is str",
    GraphQLBoolean: "type({v}) is bool",
    GraphQLInt: "type({v}) is int and -2147483648 <= {v} <= 2147483647",
}
