"""What a compiled plan is and how it runs: prepare every root field (no I/O), load each kind of
root field in one call (for one request, or for every operation of a batch), finish and serialize."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import FieldNode, GraphQLError, GraphQLField, located_error
from graphql.execution.values import VariableValues, get_argument_values

Serializer = Callable[[Any], Any]
# Reads a root field's arguments straight from the coerced variables; None: graphql-core must.
ArgumentReader = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class BatchRoot:
    """How a plan runs one kind of root field: every field of that kind in a
    request is prepared, then loaded in ONE call, then finished."""

    prepare: Callable[..., Any]  # (**the field's Python arguments) -> item; no I/O; may raise
    load: Callable[[Any, Sequence[Any]], Awaitable[Sequence[Any]]]  # (context, items) -> one result per item
    finish: Callable[[Any, Any], Any]  # (item, result) -> the field's value; may raise
    cost: Callable[[Any], int] = lambda item: 1  # (item) -> what it weighs against the caller's budget
    # (the field's coerced GraphQL arguments, input objects as dicts) -> item, as `prepare` makes it: what
    # compiled plans call, without converting the arguments into the resolver's Python ones first.
    prepare_arguments: Callable[[dict[str, Any]], Any] | None = None


class NonNullViolation(Exception):
    def __init__(self, type_name: str, field_name: str) -> None:
        super().__init__(f"Cannot return null for non-nullable field {type_name}.{field_name}.")


@dataclass(frozen=True, slots=True)
class RootField:
    key: str
    nodes: tuple[FieldNode, ...]
    field: GraphQLField | None  # None for __typename
    root: BatchRoot | None
    prepare: Callable[[dict[str, Any]], Any] | None  # the field's coerced arguments -> its root's item
    constant_arguments: dict[str, Any] | None  # the coerced arguments, when they use no variables
    serialize: Serializer
    # The coerced arguments read straight from the variables; None when they need graphql-core.
    read_arguments: ArgumentReader | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    fields: tuple[RootField, ...]

    async def execute(self, context: Any, variables: VariableValues) -> tuple[dict[str, Any], list[GraphQLError]]:
        run = self.prepare(variables)
        await load_runs(context, [run])
        return run.data, run.errors

    def prepare(self, variables: VariableValues) -> PlanRun:
        """Step 1: every field's arguments and prepared item, no I/O."""
        run = PlanRun({}, [], {}, 0)
        for field in self.fields:
            if field.root is None:
                run.data[field.key] = field.serialize(None)
                continue
            run.data[field.key] = None  # keeps the response in field order
            try:
                arguments = field.constant_arguments
                if arguments is None:
                    arguments = field_arguments(field, variables)
                item = field.prepare(arguments)  # type: ignore[misc]
                run.pending.setdefault(field.root, []).append((field, item))
                run.cost += field.root.cost(item)
            except Exception as error:  # reported like graphql-core does: a located error, the field null
                run.errors.append(_located(error, field))
        return run


@dataclass(slots=True)
class PlanRun:
    """One execution of a plan: its response so far, and the items waiting for their kind's load."""

    data: dict[str, Any]
    errors: list[GraphQLError]
    pending: dict[BatchRoot, list[tuple[RootField, Any]]]
    cost: int  # of the prepared items: what the load will do

    def finish(self, root: BatchRoot, results: Sequence[Any] | Exception) -> None:
        """Step 3: finish and serialize each field of this kind (or give each the load's error)."""
        prepared = self.pending[root]
        if isinstance(results, Exception):
            self.errors.extend(_located(results, field) for field, _ in prepared)
            return
        for (field, item), result in zip(prepared, results, strict=True):
            try:
                self.data[field.key] = field.serialize(root.finish(item, result))
            except Exception as error:
                self.errors.append(_located(error, field))


async def load_runs(context: Any, runs: Sequence[PlanRun]) -> None:
    """Step 2: each kind of root field loaded in ONE call for all the runs (one request, or a batch)."""
    if len(runs) == 1:  # one request: no items of others to interleave
        run = runs[0]
        for root, prepared in run.pending.items():
            try:
                results: Sequence[Any] | Exception = await root.load(context, [item for _, item in prepared])
            except Exception as error:
                results = error
            run.finish(root, results)
        return
    roots = dict.fromkeys(root for run in runs for root in run.pending)
    for root in roots:
        items = [item for run in runs for _, item in run.pending.get(root, ())]
        try:
            results = await root.load(context, items)
        except Exception as error:
            results = error
        offset = 0
        for run in runs:
            count = len(run.pending.get(root, ()))
            if count:
                run.finish(root, results if isinstance(results, Exception) else results[offset : offset + count])
                offset += count


def _located(error: Exception, field: RootField) -> GraphQLError:
    return located_error(error, list(field.nodes), [field.key])


def field_arguments(root: RootField, variables: VariableValues) -> dict[str, Any]:
    """The field's coerced GraphQL arguments."""
    assert root.field is not None
    arguments = root.read_arguments(variables.coerced) if root.read_arguments is not None else None
    if arguments is None:
        # Not compiled, or a value graphql-core refuses: it says why.
        arguments = get_argument_values(root.field, root.nodes[0], variables)
    return arguments


def item_preparer(root: BatchRoot, convert: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Any], Any]:
    """From the field's coerced arguments to its root's item: the root's own reading of them when it has one,
    else its `prepare` called with the arguments converted into the resolver's Python ones."""
    if root.prepare_arguments is not None:
        return root.prepare_arguments
    prepare = root.prepare
    return lambda arguments: prepare(**convert(arguments))
