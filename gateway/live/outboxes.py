"""Where compiled subscriptions' messages go: a WebSocket's outbox (graphql-transport-ws), an SSE stream's
(graphql-sse). Each keeps, per subscription, only what is not yet sent, the latest balance replacing an
older one; a message is written as text once per topic and plan (gateway.live.topics), and only the
operation's id is added per subscriber.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from graphql import GraphQLError
from graphql.execution.values import VariableValues
from starlette.websockets import WebSocketDisconnect
from strawberry.http.exceptions import WebSocketDisconnected

from gateway.domain.lookup import Balance, Lookup
from gateway.errors import GatewayError
from gateway.execution.documents import DocumentCache
from gateway.execution.results import masked
from gateway.live.plans import LivePlan, SubscriptionCompiler
from gateway.live.topics import Subscription

logger = logging.getLogger("gateway.live.outboxes")

# What sending to a client that has gone raises (uvicorn's ClientDisconnected is an OSError).
GONE = (WebSocketDisconnect, WebSocketDisconnected, OSError)


def compiled(
    compiler: SubscriptionCompiler, documents: DocumentCache, query: str, operation_name: Any, raw_variables: Any
) -> tuple[LivePlan, Lookup] | GatewayError | None:
    """A valid subscription's plan and lookup, or the client's error in its arguments; None: graphql-core
    runs it (no plan, or variables or arguments whose errors graphql-core explains)."""
    if raw_variables is None:
        raw_variables = {}
    if not isinstance(raw_variables, dict) or not isinstance(operation_name, str | None):
        return None
    document = documents.get(query)
    operation = document.operation(operation_name)
    if operation is None or document.errors:
        return None
    variables = compiler.coerce_variables(document, operation, raw_variables)
    if not isinstance(variables, VariableValues):
        return None
    plan = compiler.subscription_plan(document, operation_name, variables)
    if plan is None:
        return None
    try:
        return plan, plan.lookup(variables)
    except GatewayError as error:
        return error
    except (GraphQLError, ValueError, TypeError):
        return None


def error_payload(error: GatewayError | None, request_id: str) -> str:
    """The payload of the message that ends a subscription with this error (None: a fault of ours)."""
    if error is None:
        message, extensions = masked(request_id)
    else:
        message, extensions = error.message, error.extensions
    return orjson.dumps({"data": None, "errors": [{"message": message, "extensions": extensions}]}).decode()


class SocketOutbox:
    """A WebSocket's compiled subscriptions by id, and their messages waiting to be sent: one task per
    WebSocket sends them in order."""

    def __init__(self, send_text: Callable[[str], Awaitable[None]]) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        self._send_text = send_text
        self._pending: dict[object, list[str]] = {}
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None

    def send(self, subscription: Subscription, balance: Balance) -> None:
        assert subscription.plan is not None and subscription.topic is not None
        payload = subscription.topic.payload(subscription.plan, balance)
        self._put(subscription, [f'{{"id":{_quoted(subscription.id)},"type":"next","payload":{payload}}}'], True)

    def end(self, subscription: Subscription, error: GatewayError | None) -> None:
        if self.subscriptions.get(subscription.id) is subscription:
            del self.subscriptions[subscription.id]
        self._put(subscription, _final(subscription.id, error_payload(error, subscription.live.request_id)), False)

    def refuse(self, id: str, error: GatewayError) -> None:
        """A subscription that could not start: its error, and its end."""
        self._put(object(), _final(id, error_payload(error, "")), False)

    def drop(self, subscription: Subscription) -> None:
        """The client ended the subscription: send it nothing more."""
        self._pending.pop(subscription, None)

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)

    def _put(self, key: object, frames: list[str], replace: bool) -> None:
        waiting = self._pending.get(key)
        if waiting is None or replace:
            self._pending[key] = frames
        else:
            waiting.extend(frames)
        self._wake.set()
        if self._sender is None:
            self._sender = asyncio.create_task(self._send(), name="live-socket")

    async def _send(self) -> None:
        pending, wake = self._pending, self._wake
        try:
            while True:
                await wake.wait()
                wake.clear()
                while pending:
                    key = next(iter(pending))
                    for frame in pending.pop(key):
                        await self._send_text(frame)
        except GONE as error:
            # The client left: its connection's end releases its subscriptions.
            logger.debug("a live client left while it was being sent a message: %r", error)


class StreamOutbox:
    """An SSE stream's one subscription: its events waiting to be written."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self._next: bytes | None = None
        self._final: list[bytes] | None = None
        self._stopped = False
        self._wake = asyncio.Event()

    def send(self, subscription: Subscription, balance: Balance) -> None:
        assert subscription.plan is not None and subscription.topic is not None
        self._next = _event("next", subscription.topic.payload(subscription.plan, balance))
        self._wake.set()

    def end(self, subscription: Subscription | None, error: GatewayError | None) -> None:
        self._final = [_event("next", error_payload(error, self.request_id)), _event("complete", "")]
        self._wake.set()

    def stop(self) -> None:
        """The server is stopping: end the stream without `complete`, so that the client subscribes again."""
        self._stopped = True
        self._wake.set()

    async def events(self, heartbeat: float) -> AsyncIterator[bytes]:
        """The events as they come, and an SSE comment after each `heartbeat` seconds of quiet."""
        wake = self._wake
        while True:
            try:
                await asyncio.wait_for(wake.wait(), heartbeat)
            except TimeoutError:
                yield b":\n\n"
                continue
            wake.clear()
            if self._stopped:
                return
            if self._next is not None:
                event, self._next = self._next, None
                yield event
            if self._final is not None:
                for event in self._final:
                    yield event
                return


def _quoted(id: str) -> str:
    return orjson.dumps(id).decode()


def _final(id: str, payload: str) -> list[str]:
    quoted = _quoted(id)
    return [f'{{"id":{quoted},"type":"next","payload":{payload}}}', f'{{"id":{quoted},"type":"complete"}}']


def _event(name: str, data: str) -> bytes:
    return f"event: {name}\ndata: {data}\n\n".encode()
