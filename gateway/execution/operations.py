"""Running GraphQL operations: document, operation, variables, plan, result.

A document is taken from the cache (parsed and validated once), the operation chosen, the variables
coerced, and the operation run by its compiled plan, or by graphql-core for what plans do not cover.
Several operations of one batch share their loads: all their lookups go to the database together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import ExecutionResult, GraphQLError, OperationType
from graphql import execute as graphql_execute
from graphql.execution.values import VariableValues, get_variable_values
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.schema.schema import Schema as StrawberrySchema

from gateway.errors import BadRequest, ServiceUnavailable
from gateway.execution.compiler import Compiler
from gateway.execution.documents import Document, DocumentCache
from gateway.execution.plans import BatchRoot, Plan, PlanRun, load_runs
from gateway.execution.results import format_error
from gateway.observability.requests import note_operation
from gateway.resolvers.context import Context


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


@dataclass(slots=True)
class _Started:
    """An operation past every check, ready to run."""

    request: GraphQLRequest
    document: Document
    variables: VariableValues
    plan: Plan | None
    run: PlanRun | None = None


class Executor:
    def __init__(
        self,
        schema: StrawberrySchema,
        root_resolvers: Mapping[str, BatchRoot],
        documents: DocumentCache,
        *,
        hide_suggestions: bool,
    ) -> None:
        self.schema = schema
        self.documents = documents
        self.compiler = Compiler(schema, root_resolvers)
        self.hide_suggestions = hide_suggestions

    async def execute(
        self, request: GraphQLRequest, context: Context, *, is_get: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, response body) for one operation. The status is the one
        application/graphql-response+json calls for: 400 when the operation could not start."""
        started = self._start(request, context, is_get=is_get)
        if not isinstance(started, _Started):
            return started
        if started.plan is not None:
            started.run = started.plan.prepare(started.variables)
            await load_runs(context, [started.run])
        return await self._finish(started, context)

    async def execute_batch(self, requests: Sequence[GraphQLRequest], context: Context) -> list[dict[str, Any]]:
        """One response body per operation, in order; the compiled ones share each load."""
        started = [self._start(request, context, is_get=False) for request in requests]
        runs = []
        for operation in started:
            if isinstance(operation, _Started) and operation.plan is not None:
                operation.run = operation.plan.prepare(operation.variables)
                runs.append(operation.run)
        await load_runs(context, runs)
        bodies = []
        for operation in started:
            _, body = await self._finish(operation, context) if isinstance(operation, _Started) else operation
            bodies.append(body)
        return bodies

    def _start(self, request: GraphQLRequest, context: Context, *, is_get: bool) -> _Started | tuple[int, dict]:
        """The checks before an operation runs (no I/O): its document, operation and variables."""
        request_id = context.request_id
        document = self.documents.get(request.query)
        if document.errors:
            return 400, {"errors": [format_error(error, request_id) for error in document.errors]}
        operation = document.operation(request.operation_name)
        if operation is None:
            if request.operation_name is None:
                message = "the document has several operations: say which one to run with operationName"
            else:
                message = f"the document has no operation named {request.operation_name!r}"
            return 400, {"errors": [{"message": message, "extensions": {"code": BadRequest.code}}]}
        note_operation(operation, context.org_id)
        if is_get and operation.operation is not OperationType.QUERY:
            error = {"message": "only queries may be sent with GET", "extensions": {"code": BadRequest.code}}
            return 405, {"errors": [error]}

        variables = self.compiler.coerce_variables(document, operation, request.variables or {})
        if not isinstance(variables, VariableValues):
            if self.hide_suggestions:
                # Explained again without "Did you mean …": only requests with invalid variables pay for it.
                definitions = operation.variable_definitions or ()
                raw = request.variables or {}
                variables = get_variable_values(self.schema._schema, definitions, raw, hide_suggestions=True)
                assert not isinstance(variables, VariableValues)
            return 400, {"errors": [format_error(error, request_id) for error in variables]}
        return _Started(request, document, variables, self.compiler.plan(document, request.operation_name, variables))

    async def _finish(self, started: _Started, context: Context) -> tuple[int, dict[str, Any]]:
        if started.run is not None:
            data, errors = started.run.data, started.run.errors
        else:
            data, errors = await self._execute_with_graphql_core(started.document.node, started.request, context)
        body: dict[str, Any] = {}
        if errors:
            body["errors"] = [format_error(error, context.request_id) for error in errors]
        body["data"] = data
        unavailable = any(isinstance(error.original_error, ServiceUnavailable) for error in errors)
        return (503 if unavailable else 200), body

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
