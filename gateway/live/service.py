"""The worker's live subscriptions: the change feed, batched lookups, topics, and the limits on who holds how
many.

Limits, per worker process (settings, README "Live balances"): connections (WebSocket and SSE together),
subscriptions per connection, and subscriptions per API key or end user. Each is refused with a code when
reached; the rate of messages per subscription is held at one per `live_message_interval` by merging
changes, not refused.

A subscription starts (`subscribe`) with its first look, batched with the others' (gateway.live.lookups);
it then joins its topic (gateway.live.topics), which sends it each changed balance through its Outbox.
It ends when its client ends it or leaves (`release`), or when the gateway ends it with an error (`end`):
its lookup fails, its entity changes, its subscriber's API key is revoked or end-user token expires.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from types import FrameType
from typing import Any

import asyncpg
import strawberry

from gateway.access.admission import Caller
from gateway.config import Settings
from gateway.db.database import Database
from gateway.domain.lookup import Balance, Lookup, Matches, decide
from gateway.errors import GatewayError, ServiceUnavailable, Unauthenticated
from gateway.execution.documents import DocumentCache
from gateway.live.changes import ChangeFeed
from gateway.live.lookups import Lookups
from gateway.live.plans import LivePlan
from gateway.live.topics import RETRY_SECONDS, Outbox, Subscription, Topics
from gateway.observability.metrics import LIVE_CONNECTIONS, LIVE_LISTENING, LIVE_SUBSCRIPTIONS

logger = logging.getLogger("gateway.live")
# How often each subscriber's right to read is checked (its token's expiry, its key).
_SWEEP_SECONDS = 1.0
# A subscription's first look is tried this many times while the database cannot answer (a reconnection
# storm), RETRY_SECONDS apart give or take half, before the subscription fails with the error.
FIRST_LOOK_ATTEMPTS = 5


class TooManySubscriptions(GatewayError):
    code = "TOO_MANY_SUBSCRIPTIONS"
    http_status = 429


class TooManyConnections(GatewayError):
    code = "TOO_MANY_CONNECTIONS"
    http_status = 503


@dataclass(frozen=True, slots=True, eq=False)
class Subscriber:
    """Who subscribed: their org, the customer an end-user token limits them to, and how their right to
    read lapses: `still_allowed` raises Unauthenticated once the API key is revoked; `expires_at`
    (time.monotonic) is when the end-user token expires."""

    org_id: int
    customer_id: int | None
    still_allowed: Callable[[], Awaitable[None]]
    expires_at: float | None = None


class LiveService:
    """What the worker's subscriptions share; opened and closed with the app."""

    def __init__(
        self, database: Database, connect: Callable[[], Awaitable[asyncpg.Connection]], settings: Settings
    ) -> None:
        self.feed = ChangeFeed(connect)
        self.lookups = Lookups(database)
        self.topics = Topics(self.feed, self.lookups, settings.live_message_interval, self.end)
        self.settings = settings
        self.connections = 0
        self._per_key: dict[Hashable, int] = {}
        # Each subscriber's subscriptions (one subscriber per WebSocket or SSE request).
        self._subscriptions: dict[Subscriber, set[Subscription]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        # What to call when the server starts stopping: each SSE stream's end (gateway.live.transport).
        self.on_stop: set[Callable[[], None]] = set()
        self._signals: dict[int, Any] = {}

    def start(self) -> None:
        self.feed.start()
        self._sweeper = asyncio.create_task(self._sweep(), name="live-subscribers")
        self._hear_stop_signals()

    def _hear_stop_signals(self) -> None:
        """Be told of SIGTERM and SIGINT before the server's own handler (uvicorn's, which then waits up to the
        shutdown grace for responses to finish): SSE streams end at once, so that their clients subscribe again
        elsewhere, rather than at the grace. WebSockets are closed by the server itself."""
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only (a server run in a thread is stopped otherwise)
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(number)
            if callable(previous):
                self._signals[number] = previous
                signal.signal(number, partial(self._stop_signal, loop, previous))

    def _stop_signal(
        self, loop: asyncio.AbstractEventLoop, previous: Any, number: int, frame: FrameType | None
    ) -> None:
        loop.call_soon_threadsafe(self.stop_streams)
        previous(number, frame)

    def stop_streams(self) -> None:
        for stop in tuple(self.on_stop):
            stop()

    async def _sweep(self) -> None:
        """End the subscriptions of subscribers who may no longer read, checked every second: one check per
        subscriber (a WebSocket, an SSE request), not per subscription, and no timer per subscription. The
        check is the one every request passes (cached: a revoked API key is refused within
        api_key_cache_ttl), so a revoked key's subscriptions end within that and a second."""
        while True:
            await asyncio.sleep(_SWEEP_SECONDS)
            now = time.monotonic()
            for subscriber, subscriptions in tuple(self._subscriptions.items()):
                error: GatewayError | None = None
                if subscriber.expires_at is not None and now >= subscriber.expires_at:
                    error = Unauthenticated("the end-user token expired")
                else:
                    try:
                        await subscriber.still_allowed()
                    except GatewayError as refused:
                        error = refused if refused.code != ServiceUnavailable.code else None
                if error is not None:
                    for subscription in tuple(subscriptions):
                        self.end(subscription, error)

    def sample(self) -> None:
        """Copy the live connections, subscriptions and the listener's state into their gauges."""
        LIVE_CONNECTIONS.set(self.connections)
        LIVE_SUBSCRIPTIONS.set(sum(self._per_key.values()))
        LIVE_LISTENING.set(1 if self.feed.connected.is_set() else 0)

    async def close(self) -> None:
        for number, previous in self._signals.items():
            if isinstance(handler := signal.getsignal(number), partial) and handler.func == self._stop_signal:
                signal.signal(number, previous)
        self.stop_streams()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.lookups.close()
        await self.feed.close()

    @contextmanager
    def connection(self) -> Any:
        """One WebSocket or SSE connection held open; raises TooManyConnections."""
        if self.connections >= self.settings.max_live_connections:
            raise TooManyConnections(
                f"this server holds {self.settings.max_live_connections} live connections already; try another"
            )
        self.connections += 1
        try:
            yield
        finally:
            self.connections -= 1

    def subscribe(
        self, live: LiveContext, lookup: Lookup, outbox: Outbox, id: str = "", plan: LivePlan | None = None
    ) -> Subscription:
        """One subscription of the connection `live`, started: its messages go to `outbox` (the balance now,
        then after each change). Raises GatewayError when a limit refuses it."""
        subscriber = live.subscriber
        if subscriber is None:
            raise GatewayError("the connection was not authenticated")  # the transports make this impossible
        limit = self.settings.max_subscriptions_per_connection
        if live.subscriptions >= limit:
            raise TooManySubscriptions(f"a connection may hold at most {limit} subscriptions")
        key = live.key
        limit = self.settings.max_subscriptions_per_key
        if self._per_key.get(key, 0) >= limit:
            raise TooManySubscriptions(f"one API key (or end user) may hold at most {limit} subscriptions here")
        # Charged as the same lookup over HTTP would be, once, when it starts.
        live.charge(lookup.cost)
        live.subscriptions += 1
        self._per_key[key] = self._per_key.get(key, 0) + 1
        subscription = Subscription(id, outbox, plan, live)
        self._subscriptions.setdefault(subscriber, set()).add(subscription)
        self._first_look(subscription, lookup, FIRST_LOOK_ATTEMPTS)
        return subscription

    def _first_look(self, subscription: Subscription, lookup: Lookup, attempts: int) -> None:
        """Look the balance up; many subscriptions start at once after a reconnection: while the database
        cannot take their looks, they wait their turn (up to FIRST_LOOK_ATTEMPTS) rather than fail."""
        if subscription.ended:
            return
        announced = self.feed.announcements

        def looked(found: Matches | Exception) -> None:
            if subscription.ended:
                return
            if isinstance(found, ServiceUnavailable) and attempts > 1:
                pause = RETRY_SECONDS * (0.5 + random.random())  # spread, not in step
                asyncio.get_running_loop().call_later(pause, self._first_look, subscription, lookup, attempts - 1)
                return
            try:
                if isinstance(found, Exception):
                    raise found
                balance = decide(lookup, found)
            except GatewayError as error:
                self.end(subscription, error)
                return
            except Exception:
                logger.exception("a live lookup failed")
                self.end(subscription, None)
                return
            try:
                self.topics.join(subscription, lookup, balance, announced)
            except Exception:
                logger.exception("a live message could not be written")
                self.end(subscription, None)

        subscriber = subscription.live.subscriber
        self.lookups.ask(subscriber.org_id, subscriber.customer_id, lookup, looked)

    def release(self, subscription: Subscription) -> None:
        """The subscription is over (its client ended it, or left): it is sent nothing more."""
        if subscription.ended:
            return
        subscription.ended = True
        self.topics.leave(subscription)
        live = subscription.live
        live.subscriptions -= 1
        key = live.key
        left = self._per_key[key] - 1
        if left:
            self._per_key[key] = left
        else:
            del self._per_key[key]
        subscriptions = self._subscriptions.get(live.subscriber)
        if subscriptions is not None:
            subscriptions.discard(subscription)
            if not subscriptions:
                del self._subscriptions[live.subscriber]

    def end(self, subscription: Subscription, error: GatewayError | None) -> None:
        """End the subscription with this error (None: a fault of ours, masked)."""
        if subscription.ended:
            return
        self.release(subscription)
        subscription.outbox.end(subscription, error)

    async def balances(self, live: LiveContext, lookup: Lookup) -> AsyncIterator[Balance]:
        """One subscription of the connection `live` as balances, for graphql-core to execute: the balance
        now, then after each change; raises GatewayError to end it."""
        follower = Follower()
        subscription = self.subscribe(live, lookup, follower)
        try:
            async for balance in follower.balances():
                yield balance
        finally:
            self.release(subscription)


class Follower:
    """The Outbox of a subscription that graphql-core executes: its balances, latest only, as an iterator."""

    __slots__ = ("_ended", "_error", "_latest", "_wake")

    def __init__(self) -> None:
        self._latest: Balance | None = None
        self._ended = False
        self._error: GatewayError | None = None
        self._wake = asyncio.Event()

    def send(self, subscription: Subscription, balance: Balance) -> None:
        self._latest = balance
        self._wake.set()

    def end(self, subscription: Subscription, error: GatewayError | None) -> None:
        self._ended, self._error = True, error
        self._wake.set()

    async def balances(self) -> AsyncIterator[Balance]:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._latest is not None:
                balance, self._latest = self._latest, None
                yield balance
            if self._ended:
                if self._error is None:
                    raise RuntimeError("a live lookup failed")  # masked, as any fault of ours
                raise self._error


@dataclass(slots=True)
class LiveContext:
    """The context of a live connection's subscriptions (strawberry's `info.context`)."""

    service: LiveService
    documents: DocumentCache
    request_id: str
    subscriber: Subscriber | None = None
    # What the limits count the subscriber as: its API key's prefix, or its end user.
    key: Hashable = None
    subscriptions: int = 0
    # The graphql-transport-ws connection_init payload (strawberry sets it).
    connection_params: dict[str, Any] | None = field(default=None, repr=False)
    # The app's state (gateway.edge.state.AppState), for a WebSocket's admission at connection_init.
    app_state: Any = field(default=None, repr=False)
    charge: Callable[[int], object] = field(default=lambda units: None, repr=False)

    def admit(
        self,
        caller: Caller,
        credential: str,
        still_allowed: Callable[[], Awaitable[None]],
        charge: Callable[[int], object],
    ) -> None:
        """The connection's caller, admitted; `still_allowed` raises once their key is revoked, `charge(units)`
        spends their rate limit's budget (raises RateLimited)."""
        self.charge = charge
        expires_at = None
        if caller.expires_at is not None:
            expires_at = time.monotonic() + (caller.expires_at - time.time())
        self.subscriber = Subscriber(caller.org_id, caller.customer_id, still_allowed, expires_at)
        # `Bearer lgw_<12 hex prefix>_<secret>`: the prefix names the API key (as for its rate limit).
        end_user = caller.customer_id is not None
        self.key = (caller.org_id, caller.customer_id) if end_user else credential.partition("_")[2][:12]

    async def balances(self, lookup: Callable[[], Lookup]) -> AsyncIterator[Balance]:
        """The balances of a subscription to `lookup()` (which raises on bad arguments). Errors end it: the
        transports code them (gateway.execution.results), masking what is not a GatewayError."""
        async for balance in self.service.balances(self, lookup()):
            yield balance


LiveInfo = strawberry.Info[LiveContext, None]
