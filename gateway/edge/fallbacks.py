"""Answers off the GraphQL path: unknown paths and methods, WebSocket upgrades, faults.

Every non-2xx answer of the gateway is JSON with `extensions.code`, like /graphql's own errors, so a
client (or a proxy's log) never has to tell plain text from GraphQL.
"""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway.errors import INTERNAL_SERVER_ERROR, BadRequest, NotFound

logger = logging.getLogger("gateway.edge.fallbacks")


def coded_response(message: str, code: str, status: int, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    return Response(body, status_code=status, headers=headers, media_type="application/json")


async def http_error(request: Request, error: Exception) -> Response:
    """Starlette's 404 and 405 (and any other HTTPException), as JSON."""
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        return coded_response(f"nothing is served at {request.url.path}", NotFound.code, 404, error.headers)
    if error.status_code == 405:
        message = f"{request.method} is not served at {request.url.path}"
        return coded_response(message, BadRequest.code, 405, error.headers)
    return coded_response(error.detail, BadRequest.code, error.status_code, error.headers)


async def server_error(request: Request, error: Exception) -> Response:
    """A fault outside /graphql (Starlette logs it once this answer is sent)."""
    return coded_response("Internal server error", INTERNAL_SERVER_ERROR, 500)


async def refuse_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    """No WebSocket transport is served: the upgrade is refused with a JSON answer where the server can send
    one (uvicorn's WebSocket denial response), else closed."""
    websocket = WebSocket(scope, receive, send)
    message = f"WebSocket is not served at {scope['path']}: send GraphQL over HTTP (POST or GET) to /graphql"
    if "websocket.http.response" in scope.get("extensions", {}):
        await websocket.send_denial_response(coded_response(message, NotFound.code, 404))
    else:
        await websocket.close(code=1008, reason="WebSocket is not served here")
