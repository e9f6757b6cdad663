"""Generated serializers give what the scalars' own serialize gives, for values of every kind.

The built-in scalars are inlined: a value of the scalar's own Python type passes as it is, anything
else goes through the scalar's serialize. Values at the edges (bools for Int, floats for ID, ints
out of Int's range, subclasses of str) must come out as graphql-core has them, or fail as it does.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError, parse
from graphql.execution.values import VariableValues

from gateway.execution.compiler import _definition, _strawberry_field
from gateway.execution.plans import NonNullViolation
from gateway.execution.serializers import SerializerBuilder


@strawberry.type
class Thing:
    text: str | None
    number: int | None
    flag: bool | None
    key: strawberry.ID | None
    texts: list[str]


@strawberry.type
class Query:
    @strawberry.field
    def thing(self) -> Thing | None:  # pragma: no cover - only the schema is used
        return None


SCHEMA = strawberry.Schema(Query)._schema
SCALAR_FIELDS = {"text": "String", "number": "Int", "flag": "Boolean", "key": "ID"}


class Colour(enum.StrEnum):
    RED = "red"


ODD_VALUES: list[Any] = [
    "plain", "", Colour.RED, True, False, 0, 7, -(2**31), 2**31 - 1, 2**31, -(2**31) - 1, 2**70,
    1.0, 1.5, float("nan"), Decimal("3.000"), Decimal("2.5"), b"bytes", [1], object(),
]  # fmt: skip


def serializer() -> Any:
    document = parse("{ thing { text number flag key texts } }")
    node = document.definitions[0].selection_set.selections[0]  # type: ignore[attr-defined]
    builder = SerializerBuilder(_definition, _strawberry_field, {}, VariableValues({}, {}))
    return builder.build(SCHEMA.query_type.fields["thing"].type, "Query", "thing", [node])  # type: ignore[union-attr]


def expected(scalar: str, value: Any) -> Any:
    try:
        return SCHEMA.type_map[scalar].serialize(value)  # type: ignore[union-attr]
    except GraphQLError as error:
        return ("error", error.message)


@pytest.mark.parametrize("field", SCALAR_FIELDS)
def test_each_scalar_serializes_like_graphql_core(field: str) -> None:
    serialize = serializer()
    for value in ODD_VALUES:
        thing = SimpleNamespace(text=None, number=None, flag=None, key=None, texts=[])
        setattr(thing, field, value)
        try:
            got = serialize(thing)[field]
        except GraphQLError as error:
            got = ("error", error.message)
        want = expected(SCALAR_FIELDS[field], value)
        assert got == want or (got != got and want != want), (field, value, got, want)  # NaN is not equal to itself
        assert type(got) is type(want), (field, value)


def test_null_where_the_schema_says_non_null_is_refused() -> None:
    serialize = serializer()
    assert serialize(None) is None
    with pytest.raises(NonNullViolation, match=r"Thing\.texts"):
        serialize(SimpleNamespace(text=None, number=None, flag=None, key=None, texts=None))
    with pytest.raises(NonNullViolation, match=r"Thing\.texts"):
        serialize(SimpleNamespace(text=None, number=None, flag=None, key=None, texts=["a", None]))
    answer = serialize(SimpleNamespace(text="t", number=1, flag=True, key=5, texts=["a", "b"]))
    assert answer == {"text": "t", "number": 1, "flag": True, "key": "5", "texts": ["a", "b"]}
    assert list(answer) == ["text", "number", "flag", "key", "texts"]
