"""One live subscription to a balance: the current answer first, then one after each change that alters it.

A watch is poked by the ChangeFeed when the entity it shows may have changed; it then looks the balance up
again (with the other watches poked at the same moment: one statement per org for up to 100 of them) and
sends it if it differs from what it sent last. It keeps no queue: pokes while it waits or sends merge into
one look, so a slow subscriber gets the latest balance, never a backlog. It sends at most one message per
`interval`. It ends with an error when the lookup stops matching the entity it started with, or when it is
ended: its subscriber's API key revoked or end-user token expired (LiveService checks, for every watch of
a worker at once).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from gateway.db.balances import fetch_balances
from gateway.db.database import Database
from gateway.domain.lookup import Balance, Lookup, Matches, decide
from gateway.errors import GatewayError, ServiceUnavailable
from gateway.live.changes import ChangeFeed, entity_key

# Lookups of one org sent in one statement, at most.
BATCH = 100
# After the database could not answer, a watch looks again this much later (and keeps its subscriber);
# a subscription's first look is tried this many times before the subscription fails with the error.
RETRY_SECONDS = 1.0
FIRST_LOOK_ATTEMPTS = 5


class EntityChanged(GatewayError):
    code = "ENTITY_CHANGED"


@dataclass(frozen=True, slots=True, eq=False)
class Subscriber:
    """Who subscribed: their org, the customer an end-user token limits them to, and how their right to
    read lapses: `still_allowed` raises Unauthenticated once the API key is revoked; `expires_at`
    (time.monotonic) is when the end-user token expires."""

    org_id: int
    customer_id: int | None
    still_allowed: Callable[[], Awaitable[None]]
    expires_at: float | None = None


class Lookups:
    """Watches' lookups, batched: those asked for in the same turn of the event loop share statements."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._pending: dict[tuple[int, int | None], list[tuple[Lookup, asyncio.Future[Matches]]]] = {}
        self._running: set[asyncio.Task[None]] = set()  # referenced until done, as asyncio requires

    def matches(self, org_id: int, customer_id: int | None, lookup: Lookup) -> asyncio.Future[Matches]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Matches] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.setdefault((org_id, customer_id), []).append((lookup, future))
        return future

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        for (org_id, customer_id), waiting in pending.items():
            for start in range(0, len(waiting), BATCH):
                task = asyncio.create_task(self._fetch(org_id, customer_id, waiting[start : start + BATCH]))
                self._running.add(task)
                task.add_done_callback(self._running.discard)

    async def _fetch(
        self, org_id: int, customer_id: int | None, waiting: Sequence[tuple[Lookup, asyncio.Future[Matches]]]
    ) -> None:
        try:
            found = await fetch_balances(
                self._database, org_id, [lookup for lookup, _ in waiting], customer_id=customer_id
            )
            for (_, future), matches in zip(waiting, found, strict=True):
                if not future.done():
                    future.set_result(matches)
        except Exception as error:
            for _, future in waiting:
                if not future.done():
                    future.set_exception(error)
        finally:
            for _, future in waiting:
                future.cancel()  # only those still waiting: the worker is stopping


class BalanceWatch:
    def __init__(
        self, feed: ChangeFeed, lookups: Lookups, lookup: Lookup, subscriber: Subscriber, *, interval: float
    ) -> None:
        self._feed = feed
        self._lookups = lookups
        self._lookup = lookup
        self.subscriber = subscriber
        self._interval = interval
        self._poked = asyncio.Event()
        self._resend = False
        self._ended: GatewayError | None = None

    def poke(self, *, resend: bool) -> None:
        self._resend = self._resend or resend
        self._poked.set()

    def end(self, error: GatewayError) -> None:
        """End the subscription with this error (its subscriber may no longer read: see LiveService)."""
        self._ended = error
        self._poked.set()

    async def balances(self) -> AsyncIterator[Balance]:
        """The balance now, then after each change; raises GatewayError to end the subscription."""
        subscriber = self.subscriber
        announced = self._feed.announcements
        balance = await self._first_look()
        key = entity_key(balance.entity_type.value, balance.entity_id)
        self._feed.watch(subscriber.org_id, key, self)
        try:
            if self._feed.announcements != announced:
                self.poke(resend=False)  # a change may have committed between the look and the watch
            sent, sent_at = balance, time.monotonic()
            yield balance
            while True:
                await self._poked.wait()
                if self._ended is not None:
                    raise self._ended
                # At most one message per interval: pokes meanwhile merge into the next look.
                await asyncio.sleep(sent_at + self._interval - time.monotonic())
                self._poked.clear()
                resend, self._resend = self._resend, False
                try:
                    balance = await self._look()
                except ServiceUnavailable:
                    self.poke(resend=resend)
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                if (balance.entity_type, balance.entity_id) != (sent.entity_type, sent.entity_id):
                    raise EntityChanged("the identifiers no longer match the entity this subscription started with")
                if resend or balance != sent:
                    sent, sent_at = balance, time.monotonic()
                    yield balance
        finally:
            self._feed.unwatch(subscriber.org_id, key, self)

    async def _first_look(self) -> Balance:
        """The balance now. Many subscriptions start at once after a reconnection: while the database cannot
        take their looks, they wait their turn (up to FIRST_LOOK_ATTEMPTS) rather than fail."""
        for _ in range(FIRST_LOOK_ATTEMPTS - 1):
            try:
                return await self._look()
            except ServiceUnavailable:
                await asyncio.sleep(RETRY_SECONDS * (0.5 + random.random()))  # spread, not in step
        return await self._look()

    async def _look(self) -> Balance:
        subscriber = self.subscriber
        matches = await self._lookups.matches(subscriber.org_id, subscriber.customer_id, self._lookup)
        return decide(self._lookup, matches)
