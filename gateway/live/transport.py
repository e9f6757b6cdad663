"""Subscriptions on /graphql: over WebSocket (graphql-transport-ws, strawberry's handler) and over Server-Sent
Events (graphql-sse, distinct connections mode: one POST with `Accept: text/event-stream` per subscription).

Both hold callers to the rules of queries: the same credentials (an API key or end-user token: in
`connection_init`'s payload as `{"authorization": "Bearer …"}` on a WebSocket, in the Authorization header
for SSE), the same tenancy, the same document checks and limits, the rate limit charged once per
subscription at its start, and every error coded (gateway.execution.results). Only subscriptions are served
here: queries go to /graphql over plain HTTP, where batching, persisted documents and the rest apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from functools import partial
from typing import Any

import orjson
import strawberry.asgi
from graphql import GraphQLError, OperationType
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    CompleteMessage,
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.types import ExecutionResult

from gateway.access.admission import Caller, Gatekeeper
from gateway.domain.lookup import Lookup
from gateway.edge.state import AppState
from gateway.errors import BadRequest, GatewayError
from gateway.execution.documents import DocumentCache
from gateway.execution.results import format_error
from gateway.live.outboxes import GONE, SocketOutbox, StreamOutbox, compiled
from gateway.live.plans import LivePlan, SubscriptionCompiler
from gateway.live.service import LiveContext
from gateway.schema.query import ROOT_RESOLVERS

logger = logging.getLogger("gateway.live.transport")

# An SSE comment this often keeps proxies from closing a quiet stream.
SSE_HEARTBEAT_SECONDS = 15.0
SSE_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}
# graphql-transport-ws close codes: the protocol's own where it has one.
CLOSE_FORBIDDEN, CLOSE_TRY_LATER = 4403, 4503


def document_refusal(
    documents: DocumentCache, query: Any, operation_name: Any, request_id: str
) -> list[dict[str, Any]] | None:
    """Why this subscription cannot start, as coded errors; None when it can."""
    if not isinstance(query, str):
        return [_error(BadRequest("the subscription's `query` must be a string"))]
    document = documents.get(query)
    if document.errors:
        return [format_error(error, request_id) for error in document.errors]
    operation = document.operation(operation_name if isinstance(operation_name, str) else None)
    if operation is None:
        return [_error(BadRequest("the document has no such operation: say which one with operationName"))]
    if operation.operation is not OperationType.SUBSCRIPTION:
        return [_error(BadRequest("only subscriptions are served here: send queries to /graphql over HTTP"))]
    return None


def coded(result: ExecutionResult, request_id: str) -> dict[str, Any]:
    """One result as sent: its errors coded, and masked unless they are the client's to fix."""
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [format_error(error, request_id) for error in result.errors]
    return payload


def _error(error: GatewayError) -> dict[str, Any]:
    return {"message": error.message, "extensions": error.extensions}


async def admit(gatekeeper: Gatekeeper, state: AppState, live: LiveContext, credential: str | None) -> Caller:
    """Authenticate the caller of a live connection, as a query's; raises GatewayError."""
    caller = await gatekeeper.admit(credential, state.authenticator)
    assert credential is not None  # admitted
    still_allowed = partial(gatekeeper.admit, credential, state.authenticator)
    live.admit(caller, credential, still_allowed, partial(gatekeeper.charge, caller, credential))
    return caller


class WebSocketEndpoint(strawberry.asgi.GraphQL):
    """graphql-transport-ws on /graphql, strawberry's implementation with the gateway's rules."""

    def __init__(self, schema: Any, gatekeeper: Gatekeeper, documents: DocumentCache, allowed_origins: list[str]):
        super().__init__(
            schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=None,  # the gateway counts its own (LiveService)
            allowed_origins=allowed_origins,
        )
        self.gatekeeper = gatekeeper
        self.documents = documents
        self.compiler = live_compiler(schema)
        self.graphql_transport_ws_handler_class = _TransportWSHandler

    async def get_context(self, request: Request | WebSocket, response: Any) -> LiveContext:  # type: ignore[override]
        state: AppState = request.scope["state"]["gateway"]
        request_id = request.headers.get("x-request-id") or f"ws-{id(request):x}"
        return LiveContext(state.live, self.documents, request_id, app_state=state)


def live_compiler(schema: Any) -> SubscriptionCompiler:
    """Plans for subscriptions to the gateway's schema (their root fields are the queries')."""
    return SubscriptionCompiler(schema, ROOT_RESOLVERS)


class _TransportWSHandler(BaseGraphQLTransportWSHandler[LiveContext, None]):
    """strawberry's handler, with the gateway's admission; compiled subscriptions are the handler's own
    (gateway.live.outboxes.SocketOutbox: no task per subscription), others strawberry's operations."""

    view: WebSocketEndpoint
    _outbox: SocketOutbox | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = message.get("payload") or {}
        if self.connection_timed_out or not isinstance(payload, dict) or self.connection_init_received:
            await super().handle_connection_init(message)  # the protocol's own refusals
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        self.connection_init_received = True
        self.context.connection_params = payload
        state: AppState = self.context.app_state
        try:
            await admit(self.view.gatekeeper, state, self.context, _credential(payload))
            self._slot = state.live.connection()
            self._slot.__enter__()
        except GatewayError as error:
            code = CLOSE_TRY_LATER if error.http_status == 503 else CLOSE_FORBIDDEN
            await self.websocket.close(code=code, reason=f"{error.code}: {error.message}"[:120])
            return
        await self.send_message({"type": "connection_ack"})
        self._outbox = SocketOutbox(self._send_text)
        self.connection_acknowledged = True

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        outbox = self._outbox
        if self.connection_acknowledged and outbox is not None and message["id"] not in self.operations:
            if message["id"] in outbox.subscriptions:
                await self.websocket.close(code=4409, reason=f"Subscriber for {message['id']} already exists")
                return
            payload = message.get("payload") or {}
            refusal = document_refusal(
                self.view.documents, payload.get("query"), payload.get("operationName"), self.context.request_id
            )
            if refusal is not None:
                await self.send_message({"id": message["id"], "type": "error", "payload": refusal})
                return
            if self._subscribe_compiled(message["id"], payload, outbox):
                return
        await super().handle_subscribe(message)

    def _subscribe_compiled(self, id: str, payload: dict[str, Any], outbox: SocketOutbox) -> bool:
        """Start the subscription as a compiled plan; False: strawberry and graphql-core run it."""
        found = compiled(
            self.view.compiler, self.view.documents, payload["query"], payload.get("operationName"),
            payload.get("variables"),
        )  # fmt: skip
        if found is None:
            return False
        try:
            if isinstance(found, GatewayError):
                raise found
            plan, lookup = found
            outbox.subscriptions[id] = self.context.service.subscribe(self.context, lookup, outbox, id, plan)
        except GatewayError as error:
            outbox.refuse(id, error)
        return True

    async def handle_complete(self, message: CompleteMessage) -> None:
        outbox = self._outbox
        subscription = outbox.subscriptions.pop(message["id"], None) if outbox is not None else None
        if subscription is None:
            await super().handle_complete(message)
            return
        assert outbox is not None
        outbox.drop(subscription)
        self.context.service.release(subscription)

    async def _send_text(self, text: str) -> None:
        websocket = self.websocket.ws  # type: ignore[attr-defined]
        try:
            await websocket.send_text(text)
        except RuntimeError as error:
            # Starlette's refusal to send once the connection closed: the client left.
            if websocket.application_state is WebSocketState.DISCONNECTED:
                raise WebSocketDisconnect(1006) from error
            raise

    async def handle_task_exception(self, error: Exception) -> None:
        """A client that leaves while strawberry sends to it is not a fault."""
        websocket = self.websocket.ws  # type: ignore[attr-defined]
        if isinstance(error, GONE) or (
            isinstance(error, RuntimeError) and websocket.application_state is WebSocketState.DISCONNECTED
        ):
            logger.debug("a live client left while it was being sent a message: %r", error)
            return
        await super().handle_task_exception(error)

    async def _send_result_stream(self, operation: Any, result_source: Any) -> None:
        await super()._send_result_stream(operation, _coded_results(result_source, self.context.request_id))

    async def shutdown(self) -> None:
        try:
            outbox = self._outbox
            if outbox is not None:
                for subscription in outbox.subscriptions.values():
                    self.context.service.release(subscription)
                outbox.subscriptions.clear()
                await outbox.close()
            await super().shutdown()
        finally:
            slot = getattr(self, "_slot", None)
            if slot is not None:
                slot.__exit__(None, None, None)


async def _coded_results(source: AsyncIterator[Any], request_id: str) -> AsyncIterator[Any]:
    """The results, their errors replaced by coded ones (strawberry formats them as they come)."""
    async with contextlib.aclosing(source):  # type: ignore[type-var]
        async for result in source:
            if isinstance(result, ExecutionResult) and result.errors:
                result.errors = [
                    GraphQLError(error["message"], extensions=error["extensions"], path=error.get("path"))
                    for error in coded(result, request_id)["errors"]
                ]
            yield result


def _credential(payload: dict[str, Any]) -> str | None:
    """The bearer credential of a connection_init payload: `authorization`, or `headers.Authorization`,
    in any case."""
    for where in (payload, payload.get("headers")):
        if isinstance(where, dict):
            for name, value in where.items():
                if isinstance(name, str) and name.lower() == "authorization" and isinstance(value, str):
                    return value
    return None


def event_stream(
    schema: Any,
    live: LiveContext,
    request: dict[str, Any],
    refusal: list[dict[str, Any]] | None,
    on_close: Callable[[], None],
) -> Response:
    """The graphql-sse (distinct connections) answer: `next` events, then `complete`. A subscription that
    cannot start says why in its one `next` event, as the protocol asks."""

    async def events() -> AsyncIterator[bytes]:
        try:
            if refusal is not None:
                yield _event("next", {"errors": refusal})
            elif (found := compiled(live_compiler(schema), live.documents, request["query"],
                                    request.get("operationName"), request.get("variables"))) is not None:  # fmt: skip
                async for event in _compiled_events(live, found):
                    yield event
                return
            else:
                results = await schema.subscribe(
                    request["query"],
                    variable_values=request.get("variables"),
                    context_value=live,
                    operation_name=request.get("operationName"),
                )
                async for result in _with_heartbeats(results):
                    yield b":\n\n" if result is None else _event("next", coded(result, live.request_id))
            yield _event("complete", None)
        finally:
            on_close()

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


async def _compiled_events(live: LiveContext, found: tuple[LivePlan, Lookup] | GatewayError) -> AsyncIterator[bytes]:
    """A compiled subscription's events: no graphql-core, and no task of its own but the stream's."""
    outbox = StreamOutbox(live.request_id)
    subscription = None
    try:
        if isinstance(found, GatewayError):
            raise found
        plan, lookup = found
        subscription = live.service.subscribe(live, lookup, outbox, plan=plan)
    except GatewayError as error:
        outbox.end(None, error)
    live.service.on_stop.add(outbox.stop)
    try:
        async for event in outbox.events(SSE_HEARTBEAT_SECONDS):
            yield event
    finally:
        live.service.on_stop.discard(outbox.stop)
        if subscription is not None:
            live.service.release(subscription)


def _event(name: str, data: Any) -> bytes:
    body = orjson.dumps(data) if data is not None else b""
    return b"event: " + name.encode() + b"\ndata: " + body + b"\n\n"


async def _with_heartbeats(results: Any) -> AsyncIterator[Any]:
    """The results, with a None each SSE_HEARTBEAT_SECONDS of quiet."""
    iterator = results.__aiter__()
    pending: asyncio.Task[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait([pending], timeout=SSE_HEARTBEAT_SECONDS)
            if not done:
                yield None
                continue
            try:
                result = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield result
    finally:
        if pending is not None:
            # The client left while a result was awaited: stop awaiting it, then close the subscription.
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        if hasattr(iterator, "aclose"):
            await iterator.aclose()
