"""Single lookups that find every connection lent wait together, by org, and share one statement.

Under load nearly every lookup finds the pool's connections lent. Waiting one by one, each would take its own
turn in the pool's queue and its own statement, and a statement's round trip costs the gateway far more than
the lookup's own rows do. Instead the first such lookup of an org (and end user) opens a group, which waits
in the pool's queue as one caller; the org's lookups that come while it waits join it, and when its turn
comes one statement answers them all. A group takes at most MAX_LOOKUPS, and no one once it has waited half
the acquire timeout; the next lookup opens another. Its turn costs its org as many units as it answers
lookups (charged once it has its connection: Turns.charge), as a batch of that many would.

Each lookup still waits for its own answer: one that gives up (its deadline) leaves the others theirs and is
left out of the statement if that has not started; when none is left, the group leaves the pool's queue. A
refusal (no connection in time, the database gone) reaches every lookup of the group, each as its own error
and counted as its own. Each request's wait and database time (its log line, its trace) are its own: the
wait from when it joined, the time of the statement it shared.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Protocol

import asyncpg

from gateway.domain.lookup import Lookup, Matches
from gateway.errors import ServiceUnavailable
from gateway.observability.requests import note_request_statement
from gateway.observability.tenants import note_wait

# Lookups one statement answers at most: about what a busy worker has in flight.
MAX_LOOKUPS = 32


class Lending(Protocol):
    """What the groups need of their database (gateway.db.database.Database)."""

    acquire_timeout: float
    # Callers waiting for a connection now: a group's lookups count one each.
    waiting: int

    def lend(self) -> asyncpg.Connection | None: ...

    async def wait(
        self, within: float, tenant: int | None, cost: int, *, group: LookupGroup | None = None
    ) -> asyncpg.Connection: ...

    def charge(self, tenant: int | None, units: int) -> None: ...

    def give_back(self, connection: asyncpg.Connection, started: float, error: BaseException | None) -> None: ...


# How a group's lookups are fetched on the connection its turn brought: (database, connection, org, end user,
# lookups) to each lookup's Matches, in order; the connection is given back.
Fetch = Callable[[Lending, asyncpg.Connection, int, "int | None", list[Lookup]], Awaitable[list[Matches]]]


class LookupGroup:
    """Lookups of one org (and end user) waiting for a connection together."""

    __slots__ = (
        "answers",
        "connected",
        "customer_id",
        "joined",
        "lookups",
        "loop",
        "org_id",
        "statement_seconds",
        "task",
        "waiting",
    )

    def __init__(self, org_id: int, customer_id: int | None, loop: asyncio.AbstractEventLoop) -> None:
        self.org_id = org_id
        self.customer_id = customer_id
        self.loop = loop
        self.lookups: list[Lookup] = []
        self.answers: list[asyncio.Future[Matches]] = []
        # When each joined (time.perf_counter()).
        self.joined: list[float] = []
        # Lookups still waiting for their answers.
        self.waiting = 0
        # The group's wait for a connection and its statement; None once that wait is over.
        self.task: asyncio.Task[None] | None = None
        # When its turn came, and how long its statement took.
        self.connected = 0.0
        self.statement_seconds = 0.0


class LookupGroups:
    """A database's open groups: by org, then end user (None for an API key's requests)."""

    def __init__(self, database: Lending) -> None:
        self._database = database
        self._open: dict[int, dict[int | None, LookupGroup]] = {}
        # The groups' tasks, kept until done (the loop holds only weak references), and whose each is.
        self._tasks: dict[asyncio.Task[None], LookupGroup] = {}

    async def answer(self, org_id: int, customer_id: int | None, lookup: Lookup, fetch: Fetch) -> Matches:
        """The lookup's Matches, once its group's turn has come and `fetch` has run."""
        by_customer = self._open.get(org_id)
        if by_customer is None:
            by_customer = self._open[org_id] = {}
        group = by_customer.get(customer_id)
        joined = perf_counter()
        # A group that has waited half the acquire timeout takes no one else: a lookup joining it would be
        # refused sooner than if it had waited on its own.
        if group is None or joined - group.joined[0] > self._database.acquire_timeout / 2:
            loop = asyncio.get_running_loop()
            group = by_customer[customer_id] = LookupGroup(org_id, customer_id, loop)
            # In a context of its own: what the group does is no one request's (each notes its own below).
            task = group.task = loop.create_task(self._wait_and_fetch(group, fetch), context=contextvars.Context())
            self._tasks[task] = group
            task.add_done_callback(self._finished)
        future: asyncio.Future[Matches] = group.loop.create_future()
        group.lookups.append(lookup)
        group.answers.append(future)
        group.joined.append(joined)
        group.waiting += 1
        self._database.waiting += 1
        if len(group.lookups) == MAX_LOOKUPS:
            self._close(group)
        try:
            matches = await future
        except asyncio.CancelledError:
            # Given up (a deadline): when no lookup of the group waits any more, neither does the group (which
            # no lookup may join from now on).
            group.waiting -= 1
            if group.task is not None:
                self._database.waiting -= 1
                if not group.waiting:
                    self._close(group)
                    group.task.cancel()
            raise
        note_wait(org_id, "pool", group.connected - joined)
        note_request_statement(group.statement_seconds)
        return matches

    async def _wait_and_fetch(self, group: LookupGroup, fetch: Fetch) -> None:
        database, org_id = self._database, group.org_id
        queued = False
        try:
            # (A connection may have come back since the first lookup found none: the pool hands returned
            # connections to callers already waiting, not to callers still to come.)
            connection = database.lend()
            if connection is None:
                queued = True
                connection = await database.wait(database.acquire_timeout, org_id, 1, group=group)
        except (Exception, asyncio.CancelledError) as error:
            self._stop_waiting(group)
            _fail(group.answers, error)
            return
        # Its turn has come: the lookups that joined meanwhile are answered; the next ones open another group.
        group.connected = perf_counter()
        self._stop_waiting(group)
        lookups: list[Lookup] = []
        answers: list[asyncio.Future[Matches]] = []
        for lookup, future in zip(group.lookups, group.answers, strict=True):
            if not future.done():  # (not given up)
                lookups.append(lookup)
                answers.append(future)
        if not lookups:
            database.give_back(connection, group.connected, None)
            return
        if queued and len(lookups) > 1:
            # It took one turn in the pool's queue; its statement costs as many as it answers lookups.
            database.charge(org_id, len(lookups) - 1)
        try:
            found = await fetch(database, connection, org_id, group.customer_id, lookups)
        except (Exception, asyncio.CancelledError) as error:
            _fail(answers, error)
            return
        group.statement_seconds = perf_counter() - group.connected
        for future, matches in zip(answers, found, strict=True):
            if not future.done():
                future.set_result(matches)

    def _finished(self, task: asyncio.Task[None]) -> None:
        group = self._tasks.pop(task)
        if group.task is task:  # cancelled before it began (at the loop's end): its lookups are not answered
            self._stop_waiting(group)
            _fail(group.answers, asyncio.CancelledError())

    def _stop_waiting(self, group: LookupGroup) -> None:
        """The group's wait for a connection is over, whatever its outcome."""
        group.task = None
        self._close(group)
        self._database.waiting -= group.waiting

    def _close(self, group: LookupGroup) -> None:
        """No more lookups join this group."""
        by_customer = self._open.get(group.org_id)
        if by_customer is not None and by_customer.get(group.customer_id) is group:
            del by_customer[group.customer_id]
            if not by_customer:
                del self._open[group.org_id]


def _fail(answers: list[asyncio.Future[Matches]], error: BaseException) -> None:
    """What stopped the group reaches each lookup still waiting (the group's task itself ends quietly); a
    refusal as each request's own error, as it would have met it alone."""
    for future in answers:
        if future.done():
            continue
        if isinstance(error, asyncio.CancelledError):
            future.cancel()
        elif isinstance(error, ServiceUnavailable):
            own = ServiceUnavailable(error.message, retry_after=error.retry_after)
            own.__cause__ = error.__cause__
            future.set_exception(own)
        else:
            future.set_exception(error)
