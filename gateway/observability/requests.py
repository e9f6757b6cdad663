"""Each request to /graphql, observed: its metrics and its one log line.

`ObservedEndpoint` wraps the GraphQL endpoint. It keeps a `RequestRecord` in a
context variable for the length of the request; the endpoint notes the org,
the operation and the outcome on it, and the database layer adds up the time
spent holding connections (DataLoader batches run in tasks that inherit the
variable, so their time counts too). At the end: one counter, two histogram
observations, and one log line, built only when it will be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from logging import INFO
from math import floor
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.observability import metrics
from gateway.observability.logs import RequestLog, safe_request_id
from gateway.observability.tracing import Tracing


class RequestRecord:
    """What one request did; filled in as it goes."""

    __slots__ = (
        "cost",
        "db_seconds",
        "operation",
        "org_id",
        "outcome",
        "phases",
        "request_id",
        "started",
        "status",
        "token",
        "wait_seconds",
    )

    def __init__(self, started: float) -> None:
        self.started = started
        self.db_seconds = 0.0
        # Time spent waiting for its turn: its org's share of the worker, a database connection.
        self.wait_seconds = 0.0
        # What the request was charged against its caller's budget (0: it was refused before).
        self.cost = 0
        self.org_id: int | None = None
        # None: the request never got as far as choosing an operation.
        self.operation: str | None = None
        # None: no error was noted, so OK (or the status says otherwise).
        self.outcome: str | None = None
        self.request_id: str | None = None
        # 0 until the response starts; a request that never answers is logged as a 500.
        self.status = 0
        self.token: Any = None
        # With tracing on: (name, start in ns since the epoch, seconds) of its parse, waits and statements.
        self.phases: list[tuple[str, int, float]] | None = None


_CURRENT: ContextVar[RequestRecord | None] = ContextVar("loyalty_gateway_request", default=None)


def note_operation_name(name: str, org_id: int) -> None:
    """The operation the request runs, by name, for this org (called once it is picked; the REST endpoint names
    its one)."""
    record = _CURRENT.get()
    if record is not None:
        record.operation = name
        record.org_id = org_id


def note_request_id(request_id: str) -> None:
    """The request's id (called by the endpoint first thing; it has checked a client's id is plainly one)."""
    record = _CURRENT.get()
    if record is not None:
        record.request_id = request_id


def note_outcome(code: str) -> None:
    """The request's outcome is this error code (the first one noted wins)."""
    record = _CURRENT.get()
    if record is not None and record.outcome is None:
        record.outcome = code


def note_cost(cost: int) -> None:
    record = _CURRENT.get()
    if record is not None:
        record.cost = cost


def note_result(org_id: int, body: dict[str, Any]) -> None:
    """The org and the GraphQL answer: the request's outcome is the code of its first error, if any."""
    record = _CURRENT.get()
    if record is None:
        return
    record.org_id = org_id
    errors = body.get("errors")
    if errors and record.outcome is None:
        record.outcome = errors[0].get("extensions", {}).get("code")


# Where a request waits (observability/tenants.py's `where`) -> its span's name.
_WAITS = {"pool": "wait for a database connection", "fair_share": "wait for the org's turn"}


def note_request_wait(seconds: float, where: str) -> None:
    """Time the request waited for its turn, and where (called by the fair share and the database layer)."""
    record = _CURRENT.get()
    if record is not None:
        record.wait_seconds += seconds
        if record.phases is not None:
            record.phases.append((_WAITS.get(where, where), time.time_ns() - int(seconds * 1e9), seconds))


def note_request_statement(seconds: float) -> None:
    """The time of a statement run for the request, alone or shared with others (gateway.db.lookup_groups): its
    database time, and a span when it is traced."""
    record = _CURRENT.get()
    if record is not None:
        record.db_seconds += seconds
        if record.phases is not None:
            record.phases.append(("database statement", time.time_ns() - int(seconds * 1e9), seconds))


def note_phase(name: str, started_ns: int, seconds: float) -> None:
    """A step of the request worth its own span when tracing is on (a parse, a validation)."""
    record = _CURRENT.get()
    if record is not None and record.phases is not None:
        record.phases.append((name, started_ns, seconds))


def tracing_phases() -> bool:
    """Whether the current request is traced: steps off the usual path time themselves only then."""
    record = _CURRENT.get()
    return record is not None and record.phases is not None


class RequestObserver:
    """Counts and logs each request; cheap enough for the hot path (a few microseconds)."""

    def __init__(self, *, metrics_enabled: bool) -> None:
        self.metrics_enabled = metrics_enabled
        self._labels = metrics.OperationLabels()
        # Counted here and published when sampled (see sample): no lock taken per request.
        # (operation label, outcome) -> requests since the last sample; operation label -> its latencies.
        self._requests: dict[tuple[str, str], int] = {}
        self._latencies: dict[str, metrics.HistogramBuffer] = {}
        self._database_time = metrics.HistogramBuffer(metrics.DB_QUERY_SECONDS)
        self._log = RequestLog()
        self._log_enabled_for = self._log.is_enabled_for
        # Requests being answered now: a plain count, copied into its gauge when sampled (see sample).
        self.in_flight = 0
        # Cost units charged since the last sample.
        self.cost_units = 0

    def begin(self) -> RequestRecord:
        record = RequestRecord(time.perf_counter())
        record.token = _CURRENT.set(record)
        self.in_flight += 1
        return record

    def end(self, record: RequestRecord) -> None:
        seconds = time.perf_counter() - record.started
        _CURRENT.reset(record.token)
        if not record.status:
            # 499: the client closed the connection first (nginx's convention).
            record.status = 499 if record.outcome == "CLIENT_DISCONNECTED" else 500
        outcome = record.outcome or ("OK" if record.status < 400 else f"HTTP_{record.status}")
        self.in_flight -= 1
        if self.metrics_enabled:
            operation = self._labels(record.operation)
            key = (operation, outcome)
            self._requests[key] = self._requests.get(key, 0) + 1
            latencies = self._latencies.get(operation)
            if latencies is None:
                latencies = self._latencies[operation] = metrics.HistogramBuffer(
                    metrics.REQUEST_SECONDS.labels(operation=operation)
                )
            latencies.observe(seconds)
            self.cost_units += record.cost
        if self._log_enabled_for(INFO):
            wait = record.wait_seconds
            # Seconds as milliseconds to the microsecond: round(seconds * 1000, 3) for a third of its cost (floor():
            # int() for these non-negative seconds, and cheaper; written out, as a call would cost as much again).
            # Most requests wait for nothing: 0 needs no arithmetic.
            self._log.write(
                record.request_id,
                record.org_id,
                record.operation,
                outcome,
                record.status,
                record.cost,
                floor(seconds * 1e6 + 0.5) / 1000,
                floor(record.db_seconds * 1e6 + 0.5) / 1000,
                floor(wait * 1e6 + 0.5) / 1000 if wait else 0.0,
            )

    def flush(self) -> None:
        """Write the request lines still kept (as the app stops)."""
        self._log.flush()

    def sample(self) -> None:
        """Copy the in-flight count into its gauge, and add what was counted since to the metrics (at each
        scrape, and every second)."""
        metrics.IN_FLIGHT.set(self.in_flight)
        if self.cost_units:
            metrics.COST_UNITS.inc(self.cost_units)
            self.cost_units = 0
        if self._requests:
            counted, self._requests = self._requests, {}
            for (operation, outcome), count in counted.items():
                metrics.REQUESTS.labels(operation=operation, outcome=outcome).inc(count)
        for latencies in self._latencies.values():
            latencies.publish()
        self._database_time.publish()

    def query_hook(self) -> Callable[[float], None]:
        """The database layer's hook: called with the seconds a connection was held (its statement's time)."""
        database_time = self._database_time.observe if self.metrics_enabled else None

        def observe(seconds: float) -> None:
            note_request_statement(seconds)
            if database_time is not None:
                database_time(seconds)

        return observe


class ObservedEndpoint:
    """The endpoint app, with each HTTP request observed (an instance: Starlette routes to it as an ASGI app)."""

    def __init__(self, app: ASGIApp, observer: RequestObserver, tracing: Tracing | None = None) -> None:
        self.app = app
        self.observer = observer
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.tracing is not None:
            await self._traced(scope, receive, send, self.tracing)
            return
        await self._observed(scope, receive, send, self.observer.begin())

    async def _traced(self, scope: Scope, receive: Receive, send: Send, tracing: Tracing) -> None:
        span = tracing.begin(scope)
        record = self.observer.begin()
        if span.is_recording():
            # A request the sampler left out records no steps: its span has nothing to hold them.
            record.phases = []
        try:
            await self._observed(scope, receive, send, record)
        finally:
            tracing.end(span, record)

    async def _observed(self, scope: Scope, receive: Receive, send: Send, record: RequestRecord) -> None:

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except asyncio.CancelledError:
            # Cancelled before answering: the server is shutting down and the grace period is over.
            if not record.status:
                record.outcome = "SERVICE_UNAVAILABLE"
                start = _shutting_down(scope)
                if record.request_id is None:
                    record.request_id = safe_request_id(dict(start["headers"])[b"x-request-id"].decode("latin-1"))
                with contextlib.suppress(Exception):
                    await send_and_note(start)
                    await send({"type": "http.response.body", "body": _SHUTTING_DOWN})
            raise
        finally:
            self.observer.end(record)


_SHUTTING_DOWN = (
    b'{"errors":[{"message":"the server is shutting down; try again","extensions":{"code":"SERVICE_UNAVAILABLE"}}]}'
)


def _shutting_down(scope: Scope) -> Message:
    """The start of a 503 for a request the server gave up on (the body follows in the same message)."""
    incoming = dict(scope.get("headers", ())).get(b"x-request-id")
    request_id = incoming if incoming and len(incoming) <= 128 else uuid.uuid4().hex.encode()
    return {
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(_SHUTTING_DOWN)).encode()),
            (b"x-request-id", request_id),
            (b"connection", b"close"),
        ],
    }
