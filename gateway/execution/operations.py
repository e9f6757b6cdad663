"""Running GraphQL operations: document, operation, variables, plan, result.

A document is taken from the cache (parsed and validated once), the operation chosen, the variables
coerced, and the operation run by its compiled plan, or by graphql-core for what plans do not cover.
Several operations of one batch share their loads: all their lookups go to the database together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from graphql import ExecutionResult, FieldNode, GraphQLError, OperationDefinitionNode, OperationType
from graphql import execute as graphql_execute
from graphql.execution.values import VariableValues, get_variable_values
from graphql.language import Visitor, visit
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.schema.schema import Schema as StrawberrySchema

from gateway.errors import BadRequest, QueryTooComplex, ServiceUnavailable
from gateway.execution.compiler import Compiler
from gateway.execution.documents import Document, DocumentCache
from gateway.execution.plans import BatchRoot, Plan, PlanRun, load_runs
from gateway.execution.results import format_error
from gateway.execution.variables import VariablesCoercer
from gateway.observability.requests import note_operation_name
from gateway.resolvers.context import Context


class GraphQLRequest(NamedTuple):
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


@dataclass(slots=True)
class Prepared:
    """An operation past every check, ready to run, and what running it costs."""

    request: GraphQLRequest
    document: Document
    variables: VariableValues
    run: PlanRun | None  # its compiled plan, prepared; None: graphql-core runs it
    cost: int
    plan: Plan | None  # the compiled plan it runs


# What an operation that could not start answers: (status as application/graphql-response+json has it, body).
Refused = tuple[int, dict[str, Any]]

_UNPLANNED: Any = object()


class _Operation:
    """One operation of a cached document: what each request for it would otherwise look up again."""

    __slots__ = ("coerce", "fixed", "kind", "least_cost", "name", "node", "plan")

    def __init__(
        self,
        node: OperationDefinitionNode,
        kind: OperationType,
        name: str,
        least_cost: int,
        coerce: VariablesCoercer | None,
        *,
        fixed: bool,
    ) -> None:
        self.node = node
        self.kind = kind
        self.name = name  # "" when anonymous
        self.least_cost = least_cost
        self.coerce = coerce  # the compiled coercion of its variables; None: graphql-core's
        # Whether its plan is the same whatever its variables; once known, that plan (None: graphql-core runs it).
        self.fixed = fixed
        self.plan: Plan | None = _UNPLANNED


class Executor:
    def __init__(
        self,
        schema: StrawberrySchema,
        root_resolvers: Mapping[str, BatchRoot],
        documents: DocumentCache,
        *,
        hide_suggestions: bool,
        max_cost: int,
    ) -> None:
        self.schema = schema
        self.documents = documents
        self.compiler = Compiler(schema, root_resolvers)
        self.hide_suggestions = hide_suggestions
        self.max_cost = max_cost

    async def execute(
        self, request: GraphQLRequest, context: Context, *, is_get: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, response body) for one operation, with no budget to charge."""
        prepared = self.prepare(request, context, is_get=is_get)
        if not isinstance(prepared, Prepared):
            return prepared
        return await self.run(prepared, context)

    def prepare(
        self,
        request: GraphQLRequest,
        context: Context,
        *,
        is_get: bool,
        afford: Callable[[int], object] | None = None,
    ) -> Prepared | Refused:
        """Every check before an operation runs, and its cost (no I/O): its document, operation, variables,
        arguments. The status is the one application/graphql-response+json calls for: 400 when it cannot start.

        `afford(units)` raises (RateLimited) when the caller cannot pay that much: it is asked, before the
        variables are read, for the least the operation can cost, so that a caller out of budget is refused
        without the work of pricing its request exactly."""
        request_id = context.request_id
        document = self.documents.get(request.query)
        if document.errors:
            return 400, {"errors": [format_error(error, request_id) for error in document.errors]}
        operation = document.entries.get(request.operation_name)
        if operation is None:
            operation = self._operation(document, request.operation_name)
            if operation is None:
                return 400, {"errors": [{"message": _no_operation(request), "extensions": {"code": BadRequest.code}}]}
        note_operation_name(operation.name, context.org_id)
        if operation.kind is not OperationType.QUERY:
            if is_get:
                error = {"message": "only queries may be sent with GET", "extensions": {"code": BadRequest.code}}
                return 405, {"errors": [error]}
            if operation.kind is OperationType.SUBSCRIPTION:
                message = (
                    "subscriptions are served over WebSocket (graphql-transport-ws) or Server-Sent Events "
                    "(Accept: text/event-stream), not plain HTTP"
                )
                return 400, {"errors": [{"message": message, "extensions": {"code": BadRequest.code}}]}
        least = operation.least_cost
        if least > self.max_cost:
            return _too_complex(f"the operation costs at least {least}; at most {self.max_cost} is allowed")
        if afford is not None and least > 1:
            afford(least)

        node = operation.node
        variables = self.compiler.coerce_with(operation.coerce, node, request.variables or {})
        if not isinstance(variables, VariableValues):
            if self.hide_suggestions:
                # Explained again without "Did you mean …": only requests with invalid variables pay for it.
                definitions = node.variable_definitions or ()
                raw = request.variables or {}
                variables = get_variable_values(self.schema._schema, definitions, raw, hide_suggestions=True)
                assert not isinstance(variables, VariableValues)
            return 400, {"errors": [format_error(error, request_id) for error in variables]}
        plan = operation.plan
        if plan is _UNPLANNED:
            plan = self.compiler.plan(document, request.operation_name, variables)
            if operation.fixed:
                operation.plan = plan
        run = plan.prepare(variables) if plan is not None else None
        cost = max(1, run.cost) if run is not None else _upper_cost(document)
        if cost > self.max_cost:
            return _too_complex(f"the operation costs {cost}; at most {self.max_cost} is allowed")
        return Prepared(request, document, variables, run, cost, plan)

    def _operation(self, document: Document, name: str | None) -> _Operation | None:
        """What every request for this operation of the document shares, looked up once (None: no such operation)."""
        node = document.operation(name)
        if node is None:
            return None
        operation = _Operation(
            node,
            node.operation,
            node.name.value if node.name is not None else "",
            _least_cost(node),
            self.compiler.variables_coercer(document, node),
            fixed=self.compiler.plan_is_fixed(document, name),
        )
        document.entries[name] = operation
        return operation

    async def run(self, prepared: Prepared, context: Context) -> tuple[int, dict[str, Any]]:
        run = prepared.run
        if run is None:
            return await self._finish(prepared, context)
        await load_runs(context, [run])
        return _answer(run.data, run.errors, context.request_id)

    async def run_batch(self, operations: Sequence[Prepared | Refused], context: Context) -> list[dict[str, Any]]:
        """One response body per operation, in order; the compiled ones share each load."""
        await load_runs(context, [op.run for op in operations if isinstance(op, Prepared) and op.run is not None])
        bodies = []
        for operation in operations:
            _, body = await self._finish(operation, context) if isinstance(operation, Prepared) else operation
            bodies.append(body)
        return bodies

    async def _finish(self, prepared: Prepared, context: Context) -> tuple[int, dict[str, Any]]:
        if prepared.run is not None:
            data, errors = prepared.run.data, prepared.run.errors
        else:
            data, errors = await self._execute_with_graphql_core(prepared.document.node, prepared.request, context)
        return _answer(data, errors, context.request_id)

    async def _execute_with_graphql_core(
        self, document: Any, request: GraphQLRequest, context: Context
    ) -> tuple[dict[str, Any] | None, list[GraphQLError]]:
        result = graphql_execute(
            self.schema._schema,
            document,
            context_value=context,
            variable_values=request.variables,
            operation_name=request.operation_name,
            # graphql-core renamed this argument across versions; strawberry knows its name.
            **execution_context_class_kwargs(self.schema.execution_context_class),
        )
        if not isinstance(result, ExecutionResult):
            result = await result
        return result.data, list(result.errors or ())


def _answer(data: dict[str, Any] | None, errors: list[GraphQLError], request_id: str) -> tuple[int, dict[str, Any]]:
    if not errors:
        return 200, {"data": data}
    body = {"errors": [format_error(error, request_id) for error in errors], "data": data}
    unavailable = any(isinstance(error.original_error, ServiceUnavailable) for error in errors)
    return (503 if unavailable else 200), body


# Root fields graphql-core may run whose weight is unknown until they run: each is counted at the most a lookup
# weighs (Lookup.cost). Only documents the compiled plans do not cover (introspection beside lookups) pay it.
_LOOKUP_FIELDS = frozenset({"pointsBalance"})
_MOST_A_LOOKUP_COSTS = 2


def _too_complex(message: str) -> Refused:
    return 400, {"errors": [{"message": message, "extensions": {"code": QueryTooComplex.code}}]}


def _least_cost(operation: OperationDefinitionNode) -> int:
    """The least the operation can cost: one unit per lookup at its top level that no directive may skip."""
    return sum(
        isinstance(selection, FieldNode) and selection.name.value in _LOOKUP_FIELDS and not selection.directives
        for selection in operation.selection_set.selections
    )


def _no_operation(request: GraphQLRequest) -> str:
    if request.operation_name is None:
        return "the document has several operations: say which one to run with operationName"
    return f"the document has no operation named {request.operation_name!r}"


def _upper_cost(document: Document) -> int:
    cost = document.plans.get("upper-cost")
    if cost is None:
        lookups = 0

        class Counter(Visitor):
            def enter_field(self, node: FieldNode, *_args: Any) -> None:
                nonlocal lookups
                lookups += node.name.value in _LOOKUP_FIELDS

        assert document.node is not None
        visit(document.node, Counter())
        cost = document.plans["upper-cost"] = max(1, lookups * _MOST_A_LOOKUP_COSTS)
    return int(cost)
