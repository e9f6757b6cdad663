"""The GraphQL endpoint: HTTP in, authentication, execution, JSON out.

Every error a client sees is JSON with `extensions.code`. Only GatewayErrors
and GraphQL's own syntax and validation errors keep their messages; anything
else is masked and logged with the request id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError, OperationType
from graphql import execute as graphql_execute
from graphql.execution.values import VariableValues, get_variable_values
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.schema.schema import Schema as StrawberrySchema

from gateway.access.admission import Gatekeeper
from gateway.access.deadlines import Deadlines, absorb_late_cancellation
from gateway.access.limits import Limits, read_body
from gateway.config import Settings
from gateway.edge.graphiql import graphiql_page
from gateway.edge.state import AppState
from gateway.errors import (
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INTERNAL_SERVER_ERROR,
    BadRequest,
    BadUserInput,
    GatewayError,
    InvalidEntityType,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
)
from gateway.execution.compiler import BatchRoot, Compiler
from gateway.execution.documents import DEFAULT_RULES, DocumentCache
from gateway.observability.requests import note_operation, note_outcome, note_request_id, note_result
from gateway.resolvers.context import Context

logger = logging.getLogger("gateway.edge.graphql")

REQUEST_ID_HEADER = "x-request-id"
# Incoming request ids are kept only when they are plainly ids (they are echoed and logged).
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")
JSON_MEDIA_TYPES = ("application/json", "application/graphql-response+json")


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


class GraphQLEndpoint:
    """The ASGI app behind /graphql."""

    def __init__(
        self,
        *,
        schema: StrawberrySchema,
        root_resolvers: Mapping[str, BatchRoot],
        settings: Settings,
        example_query: str | None = None,
    ) -> None:
        self.schema = schema
        self.settings = settings
        self.example_query = example_query
        if settings.env not in (None, "production", "development"):
            raise ValueError(f"the environment must be production or development, not {settings.env!r}")
        # Production hides the schema: no introspection, no GraphiQL, no "Did you mean …".
        development = settings.development
        self.graphiql = settings.graphiql or development
        self.hide_suggestions = not development
        self.limits = Limits.from_settings(settings)
        self.deadlines = Deadlines(settings.request_timeout)
        self.gatekeeper = Gatekeeper(settings)
        # Every rule is built here, once: a repeated document is validated once (strawberry issue 4635).
        self.documents = DocumentCache(
            schema._schema,
            rules=DEFAULT_RULES,
            limit_rules=self.limits.validation_rules(introspection=settings.introspection or development),
            max_tokens=settings.max_tokens,
            hide_suggestions=self.hide_suggestions,
        )
        self.compiler = Compiler(schema, root_resolvers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # ASGI header names are lower-case already; one dict instead of a Headers scan per lookup.
        headers: dict[bytes, bytes] = dict(scope["headers"])
        request_id = _request_id(headers.get(b"x-request-id"))
        note_request_id(request_id)
        # The deadline cancels whatever is under way, database statements included.
        task = self.deadlines.begin()
        expired = False
        try:
            try:
                response = await self._respond(scope, receive, headers, request_id)
            except ClientDisconnect:
                # The client left before its request arrived whole: nobody to answer.
                note_outcome("CLIENT_DISCONNECTED")
                return
            except GatewayError as error:
                response = error_response(error.message, error.extensions, error.http_status, error.headers)
            except Exception:
                logger.exception("unexpected error, request id %s", request_id)
                response = error_response(*_masked(request_id), 500)
            finally:
                expired = self.deadlines.end(task)
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()
            timeout = RequestTimeout(f"the request took longer than {self.deadlines.seconds:g} s and was stopped")
            response = error_response(timeout.message, timeout.extensions, timeout.http_status)
        else:
            if expired:
                await absorb_late_cancellation(task)
        response.headers[REQUEST_ID_HEADER] = request_id
        await response(scope, receive, send)

    async def _respond(self, scope: Scope, receive: Receive, headers: dict[bytes, bytes], request_id: str) -> Response:
        method = scope["method"]
        if method == "GET":
            request = Request(scope, receive)
            if _wants_graphiql(request):
                if not self.graphiql:
                    raise NotFound("GraphiQL is not enabled on this server")
                return HTMLResponse(graphiql_page(api_key=self.settings.demo_api_key, example_query=self.example_query))
            size = len(scope["query_string"])
            if size > self.limits.max_body_bytes:
                error = PayloadTooLarge(f"the query string is longer than {self.limits.max_body_bytes} bytes")
                return error_response(error.message, error.extensions, 414)
            graphql_request = _from_query_string(request)
        elif method == "POST":
            body = await read_body(receive, headers.get(b"content-length"), self.limits.max_body_bytes)
            size = len(body)
            graphql_request = _from_body(headers.get(b"content-type"), body)
        else:
            return error_response(
                "GraphQL is served over GET and POST", {"code": BadRequest.code}, 405, {"allow": "GET, POST"}
            )

        # The query takes at least len(query) bytes of the request; variables have the rest.
        if self.limits.long_string_in(graphql_request.variables, size - len(graphql_request.query)):
            message = f"a string in `variables` is longer than {self.limits.max_string_length} characters"
            return error_response(message, {"code": BadUserInput.code}, 400)

        state: AppState = scope["state"]["gateway"]
        authorization = headers.get(b"authorization")
        caller = await self.gatekeeper.admit(
            authorization.decode("latin-1") if authorization is not None else None, state.authenticator
        )
        context = Context(
            settings=self.settings,
            database=state.database,
            org_id=caller.org_id,
            request_id=request_id,
            customer_id=caller.customer_id,
        )
        status, body = await self.execute(graphql_request, context, is_get=method == "GET")
        note_result(context.org_id, body)
        return Response(orjson.dumps(body), status_code=status, media_type="application/json")

    async def execute(
        self, request: GraphQLRequest, context: Context, *, is_get: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, response body) for one GraphQL request."""
        request_id = context.request_id
        document = self.documents.get(request.query)
        if document.errors:
            return 400, {"errors": [format_error(error, request_id) for error in document.errors]}
        operation = document.operation(request.operation_name)
        if operation is not None:
            note_operation(operation, context.org_id)
        if operation is None:
            if request.operation_name is None:
                message = "the document has several operations: say which one to run with operationName"
            else:
                message = f"the document has no operation named {request.operation_name!r}"
            return 400, {"errors": [{"message": message, "extensions": {"code": BadRequest.code}}]}
        if is_get and operation.operation is not OperationType.QUERY:
            return 405, {
                "errors": [{"message": "only queries may be sent with GET", "extensions": {"code": BadRequest.code}}]
            }

        variables = self.compiler.coerce_variables(document, operation, request.variables or {})
        if not isinstance(variables, VariableValues):
            if self.hide_suggestions:
                # Explained again without "Did you mean …": only requests with invalid variables pay for it.
                definitions = operation.variable_definitions or ()
                raw = request.variables or {}
                variables = get_variable_values(self.schema._schema, definitions, raw, hide_suggestions=True)
                assert not isinstance(variables, VariableValues)
            return 400, {"errors": [format_error(error, request_id) for error in variables]}

        plan = self.compiler.plan(document, request.operation_name, variables)
        if plan is not None:
            data, errors = await plan.execute(context, variables)
        else:
            data, errors = await self._execute_with_graphql_core(document.node, request, context)
        body: dict[str, Any] = {}
        if errors:
            body["errors"] = [format_error(error, request_id) for error in errors]
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


def error_response(
    message: str, extensions: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> Response:
    note_outcome(extensions["code"])
    headers = dict(headers or {})
    if status == 401:
        headers["www-authenticate"] = "Bearer"
    body = {"errors": [{"message": message, "extensions": extensions}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _wants_graphiql(request: Request) -> bool:
    return "query" not in request.query_params and "text/html" in request.headers.get("accept", "")


def _from_query_string(request: Request) -> GraphQLRequest:
    params = request.query_params
    variables = params.get("variables")
    return _graphql_request(
        {
            "query": params.get("query"),
            "variables": _parse_json(variables, "variables") if variables else None,
            "operationName": params.get("operationName") or None,
        }
    )


def _from_body(content_type: bytes | None, data: bytes) -> GraphQLRequest:
    media_type = (content_type or b"").decode("latin-1").split(";", 1)[0].strip().lower()
    if media_type not in JSON_MEDIA_TYPES:
        raise BadRequest("send the request as JSON (Content-Type: application/json)")
    body = _parse_json(data, "body")
    if isinstance(body, list):
        raise BadRequest("batched requests are not accepted; send one operation per request")
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with a `query`")
    return _graphql_request(body)


def _parse_json(data: str | bytes, what: str) -> Any:
    try:
        # orjson rejects invalid UTF-8 and absurdly deep nesting as well.
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BadRequest(f"the {what} is not valid JSON") from None


def _graphql_request(raw: dict[str, Any]) -> GraphQLRequest:
    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("the request has no GraphQL `query`")
    variables = raw.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("`variables` must be a JSON object")
    operation_name = raw.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise BadRequest("`operationName` must be a string")
    return GraphQLRequest(query, variables, operation_name)


def _request_id(incoming: bytes | None) -> str:
    if incoming is not None and _REQUEST_ID.fullmatch(incoming):
        return incoming.decode("ascii")
    # 128 random bits as 32 hex digits, like uuid4().hex. An id, not a secret: no system call for it.
    return f"{random.getrandbits(128):032x}"


# What graphql-core may keep as the cause of an error in the client's document or variables.
_INPUT_ERRORS = (type(None), GraphQLError, ValueError, TypeError)


def format_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    """One GraphQL error as the client sees it."""
    original = error.original_error
    formatted: dict[str, Any] = {}
    if isinstance(original, GatewayError):
        formatted["message"] = original.message
        extensions = original.extensions
    elif (isinstance(original, _INPUT_ERRORS) and error.path is None) or _is_argument_error(error):
        # GraphQL's own syntax, validation and variable errors: the client's to fix
        # (graphql-core keeps the inner error of a value it could not read as original_error,
        # e.g. a ValueError for an integer literal of more than 4300 digits).
        formatted["message"] = error.message
        extensions = {"code": _graphql_error_code(error)}
        if extensions["code"] == InvalidEntityType.code:
            extensions["errorCode"] = InvalidEntityType.error_code
    else:
        logger.error("unexpected error, request id %s: %s", request_id, error.message, exc_info=original)
        formatted["message"], extensions = _masked(request_id)
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        formatted["path"] = error.path
    formatted["extensions"] = extensions
    return formatted


def _is_argument_error(error: GraphQLError) -> bool:
    """graphql-core refusing an argument's value while the field runs: a valid document whose variable
    holds null for an argument that takes none (`$all: Boolean` for `Boolean! = false`)."""
    if error.path is None:  # validation's errors about arguments are validation errors
        return False
    if isinstance(error.original_error, GraphQLError):  # located at the field: the refusal is inside
        error = error.original_error
    return error.original_error is None and error.message.startswith("Argument '")


def _masked(request_id: str) -> tuple[str, dict[str, Any]]:
    """What a client sees of a fault of ours: nothing but the id that finds it in the log."""
    return f"Internal server error (request id {request_id})", {"code": INTERNAL_SERVER_ERROR, "requestId": request_id}


def _graphql_error_code(error: GraphQLError) -> str:
    message = error.message
    if message.startswith("Syntax Error"):
        return GRAPHQL_PARSE_FAILED
    # An entity type the API does not know is its own error in the reference API (1212).
    if "'EntityType' enum" in message or '"EntityType" enum' in message:
        return InvalidEntityType.code
    # A variable's value the client sent; "Variable '$x' is never used" and the like are validation errors.
    if message.startswith("Variable '$") and " has invalid " in message:
        return BadUserInput.code
    if _is_argument_error(error):
        return BadUserInput.code
    return GRAPHQL_VALIDATION_FAILED
