"""Compiled conversion of coerced GraphQL arguments into a resolver's Python arguments.

graphql-core hands over plain dicts (camelCase keys, input objects as dicts);
resolvers take snake_case keywords and strawberry input classes. strawberry's
own generic conversion re-inspects the types on every call; this one looks
once per field and keeps a small function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strawberry.types.base import StrawberryList, StrawberryOptional, has_object_definition
from strawberry.types.enum import StrawberryEnumDefinition
from strawberry.types.field import StrawberryField

Converter = Callable[[Any], Any]


class UnsupportedArgument(Exception):
    """A type this converter does not know; the caller falls back to graphql-core."""


def argument_converter(field: StrawberryField) -> Callable[[dict[str, Any]], dict[str, Any]]:
    entries = [
        (argument.graphql_name or camel_case(argument.python_name), argument.python_name, _converter(argument.type))
        for argument in field.arguments
    ]

    def convert(raw: dict[str, Any]) -> dict[str, Any]:
        return {python: convert(raw[name]) for name, python, convert in entries if name in raw}

    return convert


def _converter(type_: Any) -> Converter:
    if isinstance(type_, StrawberryOptional):
        inner = _converter(type_.of_type)
        return lambda value: None if value is None else inner(value)
    if isinstance(type_, StrawberryList):
        item = _converter(type_.of_type)
        return lambda values: None if values is None else [item(value) for value in values]
    if isinstance(type_, StrawberryEnumDefinition) or type_ in (str, int, float, bool):
        # graphql-core has already coerced these to their Python values.
        return _identity
    if has_object_definition(type_) and type_.__strawberry_definition__.is_input:
        fields = [
            (field.graphql_name or camel_case(field.python_name), field.python_name, _converter(field.type))
            for field in type_.__strawberry_definition__.fields
        ]

        def build(value: dict[str, Any]) -> Any:
            return type_(**{python: convert(value[name]) for name, python, convert in fields if name in value})

        return build
    raise UnsupportedArgument(repr(type_))


def camel_case(name: str) -> str:
    """strawberry's default name conversion: snake_case to camelCase."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _identity(value: Any) -> Any:
    return value
