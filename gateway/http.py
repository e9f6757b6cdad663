"""The GraphQL endpoint: authentication, JSON in and out, error codes, status codes.

Built on strawberry's ASGI view. What it adds: every error a client sees is
JSON with `extensions.code`; only GatewayErrors and GraphQL's own syntax and
validation errors keep their messages, anything else is masked and logged
with the request id.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from gateway.config import Settings
from gateway.context import AppState, Context
from gateway.errors import (
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INTERNAL_SERVER_ERROR,
    BadRequest,
    BadUserInput,
    GatewayError,
    InvalidEntityType,
)
from gateway.graphiql import graphiql_page

logger = logging.getLogger("gateway.http")

REQUEST_ID_HEADER = "x-request-id"


class GatewayGraphQL(GraphQL[Context, None]):
    allow_queries_via_get = True

    def __init__(self, *, schema: Any, settings: Settings, example_query: str | None = None) -> None:
        super().__init__(schema, graphql_ide="graphiql", allow_queries_via_get=True)
        self.settings = settings
        self.example_query = example_query

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        request_id = _request_id(request)
        request.state.request_id = request_id
        try:
            if self._wants_graphiql(request):
                response: Response = HTMLResponse(
                    graphiql_page(api_key=self.settings.demo_api_key, example_query=self.example_query)
                )
            else:
                response = await self.run(request)
        except GatewayError as error:
            response = self._error_response(error.message, error.extensions, error.http_status)
        except HTTPException as error:
            response = self._error_response(error.reason, {"code": BadRequest.code}, error.status_code)
        response.headers[REQUEST_ID_HEADER] = request_id
        await response(scope, receive, send)

    def _wants_graphiql(self, request: Request) -> bool:
        accept = request.headers.get("accept", "")
        return request.method == "GET" and "query" not in request.query_params and "text/html" in accept

    def _error_response(self, message: str, extensions: dict[str, Any], status: int) -> Response:
        headers = {"www-authenticate": "Bearer"} if status == 401 else None
        body = {"errors": [{"message": message, "extensions": extensions}]}
        return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        state: AppState = request.state.gateway
        org_id = await state.authenticator.org_for(request.headers.get("authorization"))
        return Context(
            settings=self.settings,
            database=state.database,
            org_id=org_id,
            request_id=request.state.request_id,
        )

    def decode_json(self, data: str | bytes) -> object:
        # orjson rejects invalid UTF-8 and absurd nesting with JSONDecodeError,
        # which the base view answers with a 400.
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        parsed = super().parse_json(data)
        if not isinstance(parsed, dict):
            raise BadRequest("the request body must be a JSON object with a `query`")
        return parsed

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:  # type: ignore[override]
        request_id = request.state.request_id
        response: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            response["errors"] = [format_error(error, request_id) for error in result.errors]
            if result.data is None and all(error.path is None for error in result.errors):
                # Rejected before execution: there is no data, not even null.
                del response["data"]
        return response


def _request_id(request: Request) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    if 0 < len(incoming) <= 128 and incoming.isascii() and incoming.isprintable():
        return incoming
    return uuid.uuid4().hex


def format_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    """One GraphQL error as the client sees it."""
    original = error.original_error
    formatted: dict[str, Any] = {}
    if isinstance(original, GatewayError):
        formatted["message"] = original.message
        extensions = original.extensions
    elif original is None:
        formatted["message"] = error.message
        extensions = {"code": _graphql_error_code(error)}
        if extensions["code"] == InvalidEntityType.code:
            extensions["errorCode"] = InvalidEntityType.error_code
    else:
        logger.error("unexpected error, request id %s", request_id, exc_info=original)
        formatted["message"] = f"Internal server error (request id {request_id})"
        extensions = {"code": INTERNAL_SERVER_ERROR, "requestId": request_id}
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        formatted["path"] = error.path
    formatted["extensions"] = extensions
    return formatted


def _graphql_error_code(error: GraphQLError) -> str:
    message = error.message
    if message.startswith("Syntax Error"):
        return GRAPHQL_PARSE_FAILED
    # An entity type the API does not know is its own error in the reference API (1212).
    if "'EntityType' enum" in message or '"EntityType" enum' in message:
        return InvalidEntityType.code
    if message.startswith("Variable '$"):
        return BadUserInput.code
    return GRAPHQL_VALIDATION_FAILED
