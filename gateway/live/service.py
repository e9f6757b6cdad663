"""The worker's live subscriptions: the change feed, batched lookups, and the limits on who holds how many.

Limits, per worker process (settings, README "Live balances"): connections (WebSocket and SSE together),
subscriptions per connection, and subscriptions per API key or end user. Each is refused with a code when
reached; the rate of messages per subscription is held at one per `live_message_interval` by merging
changes, not refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import strawberry

from gateway.access.admission import Caller
from gateway.config import Settings
from gateway.db.database import Database
from gateway.domain.lookup import Balance, Lookup
from gateway.errors import GatewayError, ServiceUnavailable, Unauthenticated
from gateway.execution.documents import DocumentCache
from gateway.live.changes import ChangeFeed
from gateway.live.watch import BalanceWatch, Lookups, Subscriber
from gateway.observability.metrics import LIVE_CONNECTIONS, LIVE_LISTENING, LIVE_MESSAGES, LIVE_SUBSCRIPTIONS

logger = logging.getLogger("gateway.live")
# How often each subscriber's right to read is checked (its token's expiry, its key).
_SWEEP_SECONDS = 1.0


class TooManySubscriptions(GatewayError):
    code = "TOO_MANY_SUBSCRIPTIONS"
    http_status = 429


class TooManyConnections(GatewayError):
    code = "TOO_MANY_CONNECTIONS"
    http_status = 503


class LiveService:
    """What the worker's subscriptions share; opened and closed with the app."""

    def __init__(
        self, database: Database, connect: Callable[[], Awaitable[asyncpg.Connection]], settings: Settings
    ) -> None:
        self.feed = ChangeFeed(connect)
        self.lookups = Lookups(database)
        self.settings = settings
        self.connections = 0
        self._per_key: dict[Hashable, int] = {}
        # Each subscriber's running watches (one subscriber per WebSocket or SSE request).
        self._watches: dict[Subscriber, set[BalanceWatch]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.feed.start()
        self._sweeper = asyncio.create_task(self._sweep(), name="live-subscribers")

    async def _sweep(self) -> None:
        """End the watches of subscribers who may no longer read, checked every second: one check per
        subscriber (a WebSocket, an SSE request), not per subscription, and no timer per subscription. The
        check is the one every request passes (cached: a revoked API key is refused within
        api_key_cache_ttl), so a revoked key's subscriptions end within that and a second."""
        while True:
            await asyncio.sleep(_SWEEP_SECONDS)
            now = time.monotonic()
            for subscriber, watches in tuple(self._watches.items()):
                error: GatewayError | None = None
                if subscriber.expires_at is not None and now >= subscriber.expires_at:
                    error = Unauthenticated("the end-user token expired")
                else:
                    try:
                        await subscriber.still_allowed()
                    except GatewayError as refused:
                        error = refused if refused.code != ServiceUnavailable.code else None
                if error is not None:
                    for watch in tuple(watches):
                        watch.end(error)

    def sample(self) -> None:
        """Copy the live connections, subscriptions and the listener's state into their gauges."""
        LIVE_CONNECTIONS.set(self.connections)
        LIVE_SUBSCRIPTIONS.set(sum(self._per_key.values()))
        LIVE_LISTENING.set(1 if self.feed.connected.is_set() else 0)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
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

    async def balances(self, live: LiveContext, lookup: Lookup) -> AsyncIterator[Balance]:
        """One subscription of the connection `live`: the balance now, then after each change."""
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
        try:
            watch = BalanceWatch(
                self.feed, self.lookups, lookup, subscriber, interval=self.settings.live_message_interval
            )
            watches = self._watches.setdefault(subscriber, set())
            watches.add(watch)
            try:
                async for balance in watch.balances():
                    LIVE_MESSAGES.inc()
                    yield balance
            finally:
                watches.discard(watch)
                if not watches and self._watches.get(subscriber) is watches:
                    del self._watches[subscriber]
        finally:
            live.subscriptions -= 1
            left = self._per_key[key] - 1
            if left:
                self._per_key[key] = left
            else:
                del self._per_key[key]


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
