"""The database as the rest of the gateway sees it: leases of pooled connections that fail fast, as clients'
errors (SERVICE_UNAVAILABLE), never as driver exceptions."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import asyncpg

from gateway.db.lookup_groups import LookupGroup, LookupGroups
from gateway.db.pool import BROKEN, CONNECTION_ERRORS, ConnectionPool, PoolShed
from gateway.errors import ServiceUnavailable
from gateway.observability.metrics import DB_UNAVAILABLE
from gateway.observability.tenants import note_shed, note_wait

logger = logging.getLogger("gateway.db")

_NOT_READY = DB_UNAVAILABLE.labels(reason="not_ready")
_ACQUIRE_TIMEOUT = DB_UNAVAILABLE.labels(reason="acquire_timeout")
_UNREACHABLE = DB_UNAVAILABLE.labels(reason="unreachable")
_STATEMENT_TIMEOUT = DB_UNAVAILABLE.labels(reason="statement_timeout")


def _ignore(seconds: float) -> None:
    pass


class Reads(Protocol):
    """Where balance lookups are read when read replicas are configured (gateway.db.replicas.ReplicaSet)."""

    async def fetch(
        self, statement: str, arguments: Sequence[object], *, tenant: int, cost: int
    ) -> list[asyncpg.Record]:
        """The statement's rows, read from a healthy replica (or the primary when none is)."""
        ...


class Database:
    """The pool as the rest of the gateway sees it: connections that fail fast.

    `ready` is False until the schema is known to be migrated (the app's
    lifespan migrates in the background and calls mark_ready); until then
    every call is SERVICE_UNAVAILABLE at once. `on_query` is told how long
    each connection was held (for metrics and the request log). `reads` is
    where balance lookups go when read replicas are configured; None (the
    default) reads them here, on this database.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        acquire_timeout: float,
        *,
        ready: bool = True,
        on_query: Callable[[float], None] = _ignore,
    ) -> None:
        self.pool = pool
        self.acquire_timeout = acquire_timeout
        self.ready = ready
        self.on_query = on_query
        # Calls waiting for a connection right now (the pool's queue).
        self.waiting = 0
        self.reads: Reads | None = None
        # Single lookups waiting for a connection together, sharing a statement (gateway.db.lookup_groups).
        self.lookup_groups = LookupGroups(self)
        # Other views of the same pool (on_primary), made ready with this one.
        self._views: list[Database] = []

    def mark_ready(self) -> None:
        """The schema is migrated: serve (this view of the pool and the others)."""
        self.ready = True
        for view in self._views:
            view.ready = True

    def on_primary(self) -> Database:
        """This database with its pool, but whose balance lookups are read here rather than on a replica:
        for readers that must see the latest commit (live subscriptions follow the primary's notifications,
        which may reach the gateway before a replica has replayed the change)."""
        if self.reads is None:
            return self
        view = Database(self.pool, self.acquire_timeout, ready=self.ready, on_query=self.on_query)
        self._views.append(view)
        return view

    @property
    def waiting_all(self) -> int:
        """Calls waiting for a connection of this pool, through any of its views."""
        return self.waiting + sum(view.waiting for view in self._views)

    def connection(self, acquire_timeout: float | None = None, *, tenant: int | None = None, cost: int = 1) -> Lease:
        """`async with database.connection() as connection:` a pooled connection; an unreachable database
        becomes SERVICE_UNAVAILABLE within the timeout. When connections are scarce, callers take turns by
        tenant (an org), each weighted by its statement's `cost`."""
        return Lease(self, acquire_timeout or self.acquire_timeout, tenant, cost)

    def lend(self) -> asyncpg.Connection | None:
        """An idle connection at once, or None (then wait()); SERVICE_UNAVAILABLE until the database is ready.

        With wait() and give_back(), what `async with database.connection()` does, as plain calls for the
        hot path (fetch_balances): the same accounting without the two coroutines of an `async with`.
        """
        if not self.ready:
            _NOT_READY.inc()
            raise ServiceUnavailable("the database is not ready yet; try again shortly")
        return self.pool.lend_idle()

    async def wait(
        self, within: float, tenant: int | None, cost: int, *, group: LookupGroup | None = None
    ) -> asyncpg.Connection:
        """A connection once one is free and it is the tenant's turn; SERVICE_UNAVAILABLE if none comes within
        `within` seconds (with Retry-After when the turn would come too late) or the database cannot be reached.
        `group`: the caller is a group of lookups (gateway.db.lookup_groups), which counts and notes its
        lookups' waits itself; a refusal counts once for each of its lookups still waiting."""
        waiting = 1 if group is None else 0
        self.waiting += waiting
        started = time.perf_counter()
        try:
            connection = await self.pool.wait(within, tenant, cost)
        except PoolShed as error:
            note_shed(tenant, "pool", 1 if group is None else group.waiting)
            retry_after = max(1, math.ceil(error.wait))
            message = f"the database is busy with other requests; try again in {retry_after} s"
            raise ServiceUnavailable(message, retry_after=retry_after) from error
        except TimeoutError as error:
            _ACQUIRE_TIMEOUT.inc(1 if group is None else group.waiting)
            raise ServiceUnavailable("the database did not answer in time; try again shortly") from error
        except CONNECTION_ERRORS as error:
            _UNREACHABLE.inc(1 if group is None else group.waiting)
            raise ServiceUnavailable("the database cannot be reached; try again shortly") from error
        finally:
            self.waiting -= waiting
        if group is None:
            note_wait(tenant, "pool", time.perf_counter() - started)
        return connection

    def charge(self, tenant: int | None, units: int) -> None:
        """A caller of `tenant` that waited its turn used `units` more than it waited with (a group of lookups
        that grew while it waited): the tenant's next turns come that much later."""
        self.pool.charge(tenant, units)

    def give_back(self, connection: asyncpg.Connection, started: float, error: BaseException | None) -> None:
        """The connection lent at time.perf_counter() `started` is done with: its hold reported (on_query) and
        the connection returned; `error`, what its use raised, becomes SERVICE_UNAVAILABLE when the database
        failed (else the caller re-raises it)."""
        held = time.perf_counter() - started
        self.on_query(held)
        if error is None:
            self.pool.release(connection, held=held)
            return
        # A broken connection is dropped. One whose statement was cancelled (a deadline) stays: asyncpg has
        # asked the server to cancel it, and the connection's next statement first waits for that to end.
        broken = isinstance(error, BROKEN)
        self.pool.release(connection, reusable=not broken, held=held)
        if broken:
            # Also the client's command timeout (TimeoutError): the server stopped answering.
            _UNREACHABLE.inc()
            raise ServiceUnavailable("the database cannot be reached; try again shortly") from error
        if isinstance(error, asyncpg.QueryCanceledError):  # statement_timeout
            _STATEMENT_TIMEOUT.inc()
            raise ServiceUnavailable("the database did not answer in time; try again shortly") from error

    @property
    def size(self) -> int:
        """Open connections."""
        return self.pool.size

    @property
    def in_use(self) -> int:
        return self.pool.in_use

    async def warm_up(self, connections: int) -> None:
        """Open up to `connections` connections now rather than on the first requests."""
        count = min(connections, self.pool.max_size)
        if count <= 0:
            return
        opened = await asyncio.gather(
            *(self.pool.acquire(self.acquire_timeout) for _ in range(count)), return_exceptions=True
        )
        for connection in opened:
            if isinstance(connection, BaseException):
                logger.debug("could not open a connection ahead of time: %s", type(connection).__name__)
            else:
                self.pool.release(connection)

    async def close(self, grace: float) -> None:
        """Close the pool: gracefully within grace seconds (connections still lent are waited for), then by force."""
        if not await self.pool.close(grace):
            logger.warning("database connections were still in use after %.0f s; closing them", grace)


class Lease:
    """One use of a pooled connection (Database.connection), and how its failures reach clients."""

    __slots__ = ("_connection", "_cost", "_database", "_started", "_tenant", "_timeout")

    def __init__(self, database: Database, timeout: float, tenant: int | None, cost: int) -> None:
        self._database = database
        self._timeout = timeout
        self._tenant = tenant
        self._cost = cost

    async def __aenter__(self) -> asyncpg.Connection:
        database = self._database
        connection = database.lend()
        if connection is None:
            connection = await database.wait(self._timeout, self._tenant, self._cost)
        self._connection = connection
        self._started = time.perf_counter()
        return connection

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, _: object) -> None:
        self._database.give_back(self._connection, self._started, error)
