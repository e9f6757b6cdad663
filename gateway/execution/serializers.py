"""Serializers of a field's result, generated as Python source once per selection, as graphql-jit does.

A selection such as `{ entityId mainPoints programs { programId } }` becomes one function of plain
statements: each field read straight off the domain value (an attribute, or its type's DOMAIN_FIELDS
reader), checked for null where the schema says non-null, and serialized; the built-in scalars inline
(a value already of the scalar's Python type passes as it is; anything else goes through the scalar's
own `serialize`, which converts or raises as graphql-core would). Lists and nested objects are loops
and dict literals in the same function: no call per field, no closure per level.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLString,
)
from graphql.execution.values import VariableValues
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from gateway.execution.collect import collect_fields
from gateway.execution.generated import GeneratedFunction
from gateway.execution.plans import NonNullViolation, Serializer


class NotCompilable(Exception):
    """The operation uses something only graphql-core executes."""


# A value of the built-in scalar's own Python type that it serializes unchanged (or, for ID, as str()): checked
# inline; anything else goes through the scalar's serialize. `{v}` is the value, `{s}` that function.
_INLINE_SCALARS = {
    GraphQLString: "{v} if type({v}) is str else {s}({v})",
    GraphQLBoolean: "{v} if type({v}) is bool else {s}({v})",
    GraphQLInt: "{v} if type({v}) is int and -2147483648 <= {v} <= 2147483647 else {s}({v})",
    GraphQLID: "{v} if type({v}) is str else str({v}) if type({v}) is int else {s}({v})",
}


class SerializerBuilder(GeneratedFunction):
    """Writes the serializer of one field's value, then compiles it."""

    def __init__(
        self,
        definition_of: Callable[[GraphQLObjectType], StrawberryObjectDefinition],
        field_of: Callable[[StrawberryObjectDefinition, str], StrawberryField],
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> None:
        super().__init__("serialize", "value", {"NonNullViolation": NonNullViolation})
        self._definition_of = definition_of
        self._field_of = field_of
        self._fragments = fragments
        self._variables = variables

    def build(self, type_: GraphQLOutputType, parent_name: str, field_name: str, nodes: list[FieldNode]) -> Serializer:
        """The function from the field's value to its JSON-ready form; raises NotCompilable."""
        result = self._value(type_, parent_name, field_name, nodes, "value", 1)
        filename = f"<serializer of {parent_name}.{field_name}>"
        serialize: Serializer = self.compile(f"    return {result}", filename, NotCompilable)
        return serialize

    def _value(
        self,
        type_: GraphQLOutputType,
        parent: str,
        field_name: str,
        nodes: list[FieldNode],
        value: str,
        depth: int,
    ) -> str:
        """Emit what serializes `value` (a local) of this type; the name of the local that holds the result."""
        if isinstance(type_, GraphQLNonNull):
            self.emit(depth, f"if {value} is None: raise NonNullViolation({parent!r}, {field_name!r})")
            return self._present(type_.of_type, parent, field_name, nodes, value, depth)
        result = self.local()
        self.emit(depth, f"if {value} is None: {result} = None")
        self.emit(depth, "else:")
        inner = self._present(type_, parent, field_name, nodes, value, depth + 1)
        self.emit(depth + 1, f"{result} = {inner}")
        return result

    def _present(
        self,
        type_: GraphQLOutputType,
        parent: str,
        field_name: str,
        nodes: list[FieldNode],
        value: str,
        depth: int,
    ) -> str:
        """Emit what serializes `value`, known not to be None."""
        if isinstance(type_, GraphQLList):
            result, item = self.local(), self.local()
            self.emit(depth, f"{result} = []")
            self.emit(depth, f"for {item} in {value}:")
            serialized = self._value(type_.of_type, parent, field_name, nodes, item, depth + 1)
            self.emit(depth + 1, f"{result}.append({serialized})")
            return result
        if isinstance(type_, GraphQLScalarType | GraphQLEnumType):
            result = self.local()
            serialize = self.name(type_.serialize)
            inline = _INLINE_SCALARS.get(type_) if isinstance(type_, GraphQLScalarType) else None
            self.emit(depth, f"{result} = {(inline or '{s}({v})').format(v=value, s=serialize)}")
            return result
        if isinstance(type_, GraphQLObjectType):
            return self._object(type_, nodes, value, depth)
        raise NotCompilable(str(type_))

    def _object(self, type_: GraphQLObjectType, nodes: list[FieldNode], value: str, depth: int) -> str:
        definition = self._definition_of(type_)
        # A type that says how each of its fields reads a domain value is serialized from that value
        # (root resolvers' `finish` returns it), without building the type's own object first.
        domain: dict[str, Callable[[Any], Any]] | None = getattr(definition.origin, "DOMAIN_FIELDS", None)
        entries: list[str] = []
        selections = [node.selection_set for node in nodes if node.selection_set is not None]
        for key, field_nodes in collect_fields(type_.name, selections, self._fragments, self._variables).items():
            name = field_nodes[0].name.value
            if name == "__typename":
                entries.append(f"{key!r}: {type_.name!r}")
                continue
            strawberry_field = self._field_of(definition, name)
            if strawberry_field.base_resolver is not None or field_nodes[0].arguments:
                raise NotCompilable(f"{type_.name}.{name} has a resolver")
            python_name = strawberry_field.python_name
            read = domain[python_name] if domain is not None else attrgetter(python_name)
            field_value = self.local()
            self.emit(depth, f"{field_value} = {self._read(read, value)}")
            result = self._value(type_.fields[name].type, type_.name, name, field_nodes, field_value, depth)
            entries.append(f"{key!r}: {result}")
        result = self.local()
        self.emit(depth, f"{result} = {{{', '.join(entries)}}}")
        return result

    def _read(self, read: Callable[[Any], Any], value: str) -> str:
        """The expression reading a field off `value`: an attribute access for a plain attrgetter."""
        if type(read) is attrgetter:
            _, names = read.__reduce__()
            if len(names) == 1 and all(
                part.isidentifier() and not keyword.iskeyword(part) for part in names[0].split(".")
            ):
                return f"{value}.{names[0]}"
        return f"{self.name(read)}({value})"
