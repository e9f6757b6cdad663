"""The compiled coercion of variables gives what graphql-core gives, or steps aside for it.

For every value tried: when graphql-core accepts the variables, the compiled coercer must give the same
coerced values (or None, leaving graphql-core to coerce); when graphql-core refuses them, the compiled
coercer must give None, so that graphql-core's error is the one reported. Values of the built-in
scalars' own Python types must never need graphql-core.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse
from graphql.execution.values import VariableValues, get_variable_values

from gateway.execution.variables import NotSupported, variables_coercer
from gateway.schema import schema

GRAPHQL = schema._schema

DOCUMENT = """
query (
  $ids: [IdentifierInput!]!, $source: Source!, $account: String, $program: Int, $all: Boolean,
  $entity: EntityType = FLEET, $key: ID, $names: [String]
) { __typename }
"""

ODD_VALUES: list[Any] = [
    None, "", "text", "INSTORE", "EMAIL", 0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**80,
    1.0, 1.5, float("inf"), True, False, [], ["a"], [None], {}, {"type": "EMAIL", "value": "a@b"},
    {"type": "EMAIL"}, {"type": "EMAIL", "value": "a@b", "other": 1}, {"type": "NOPE", "value": "x"},
    {"type": "EMAIL", "value": 5}, [{"type": "MOBILE", "value": "123"}], ("a", "b"),
]  # fmt: skip
BASE = {"ids": [{"type": "EMAIL", "value": "ann@example.com"}], "source": "INSTORE"}


def operation() -> OperationDefinitionNode:
    node = parse(DOCUMENT).definitions[0]
    assert isinstance(node, OperationDefinitionNode)
    return node


def reference(node: OperationDefinitionNode, raw: dict[str, Any]) -> dict[str, Any] | None:
    values = get_variable_values(GRAPHQL, node.variable_definitions, raw)
    return values.coerced if isinstance(values, VariableValues) else None


@pytest.mark.parametrize("name", ["ids", "source", "account", "program", "all", "entity", "key", "names"])
def test_each_variable_is_coerced_like_graphql_core(name: str) -> None:
    node = operation()
    coerce = variables_coercer(GRAPHQL, node.variable_definitions)
    for value in [*ODD_VALUES, "absent"]:
        raw = dict(BASE)
        if value == "absent":
            raw.pop(name, None)
        else:
            raw[name] = value
        expected = reference(node, raw)
        got = coerce(raw)
        if expected is None:
            assert got is None, (name, value, got)
        else:
            assert got == expected, (name, value, got, expected)


def test_values_of_the_scalars_own_types_need_no_graphql_core() -> None:
    node = operation()
    coerce = variables_coercer(GRAPHQL, node.variable_definitions)
    for account, program, flag, key in itertools.product(["", "x"], [0, 2**31 - 1, None], [True, False], ["7", "k"]):
        raw = {**BASE, "account": account, "program": program, "all": flag, "key": key, "names": ["a", None]}
        got = coerce(raw)
        assert got is not None and got == reference(node, raw)


def test_a_single_value_is_a_list_of_one() -> None:
    node = operation()
    coerce = variables_coercer(GRAPHQL, node.variable_definitions)
    raw = {**BASE, "ids": {"type": "EMAIL", "value": "ann@example.com"}, "names": "solo"}
    assert coerce(raw) == reference(node, raw)
    assert coerce(raw)["names"] == ["solo"]  # type: ignore[index]


def test_types_nested_deeper_than_python_allows_are_left_to_graphql_core() -> None:
    depth = 40
    node = parse(f"query ($deep: {'[' * depth}String{']' * depth}) {{ __typename }}").definitions[0]
    with pytest.raises(NotSupported):
        variables_coercer(GRAPHQL, node.variable_definitions)  # type: ignore[attr-defined]
