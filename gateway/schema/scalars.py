"""The Decimal scalar: exact points, serialised as strings with three decimals."""

from __future__ import annotations

import decimal
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

Points = NewType("Points", decimal.Decimal)


def serialize_points(value: decimal.Decimal) -> str:
    # format() never uses exponent form: Decimal("1E+3") -> "1000.000".
    return format(value, ".3f")


def parse_points(value: Any) -> decimal.Decimal:
    try:
        return decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None


POINTS_SCALAR: ScalarDefinition = strawberry.scalar(
    name="Decimal",
    description='An exact decimal number, serialised as a string with three decimals, e.g. "8500.000".',
    serialize=serialize_points,
    parse_value=parse_points,
)
