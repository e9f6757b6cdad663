"""The connection pool: connections opened on demand, lent one user at a time, taken in turns when scarce."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from functools import partial

import asyncpg

from gateway.config import Settings
from gateway.db.turns import Turns

SERVER_SETTINGS = {
    "application_name": "loyalty-gateway",
    # Lookups are tiny OLTP statements; JIT compilation only adds latency.
    "jit": "off",
    # Prepared statements keep one generic plan instead of weighing a custom plan on each call
    # (fetch_customer_balance.sql's generic plan is its best, but only narrowly by the planner's estimate).
    "plan_cache_mode": "force_generic_plan",
}

# Failures that mean "the database cannot be reached now", not "this request is wrong".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
)


# Connections that failed with these are closed rather than returned to the pool.
BROKEN: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.InternalClientError)

# How much longer than statement_timeout the client waits for an answer.
_CLIENT_GRACE = 0.5
# Idle connections beyond pool_min_size are closed after this long (asyncpg's pool does the same).
MAX_IDLE_SECONDS = 300.0
_CLOSE_TIMEOUT = 5.0


async def connect_listener(database_url: str) -> asyncpg.Connection:
    """A connection of its own that LISTENs (gateway.live.changes): no statement timeout, it waits."""
    return await asyncpg.connect(database_url, server_settings=SERVER_SETTINGS, timeout=10)


async def create_pool(database_url: str, settings: Settings) -> ConnectionPool:
    """The pool requests use: every statement bounded in time, on the server and in the client.

    It opens no connection yet, so it is created even while the database is
    down; connections are opened on demand, and again after the database
    comes back. Database.warm_up opens settings.pool_min_size of them once
    the database is there.
    """
    connect = partial(
        asyncpg.connect,
        database_url,
        command_timeout=settings.statement_timeout + _CLIENT_GRACE,
        server_settings={**SERVER_SETTINGS, "statement_timeout": str(int(settings.statement_timeout * 1000))},
    )
    return ConnectionPool(connect, settings.pool_max_size, keep_idle=settings.pool_min_size)


class PoolShed(TimeoutError):
    """A caller's turn for a connection would come later than it can wait: refused at once (SERVICE_UNAVAILABLE)."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"the wait for a connection would be about {wait:.1f} s")
        self.wait = wait


# Callers waiting for a connection are refused by one sweep timer, armed at the earliest deadline of those
# waiting; a sweep that leaves callers waiting re-arms it no sooner than a tick later, so a caller is refused at most
# a tick after its acquire timeout.
_SWEEP_TICK = 0.05
_SWEEP_SLACK = 0.001

# How much the newest hold time weighs in the pool's estimate of how long a connection is held.
_SMOOTHING = 0.1


class ConnectionPool:
    """Up to max_size asyncpg connections, each lent to one user at a time.

    Smaller than asyncpg.Pool on purpose: lending an idle connection and
    taking it back cost no task, timer or round trip (asyncpg's pool wraps
    every acquire in wait_for and every release in shield, a task each, and
    re-arms an inactivity timer). Nor is a connection reset when it comes
    back: connections here only run single read statements, so there is no
    session state to undo.
    A connection that failed is terminated rather than lent again. Beyond
    `keep_idle`, a connection idle for `max_idle` seconds is closed (checked
    as connections come back), so a burst's connections do not stay open.

    When every connection is lent, callers wait in one queue per tenant (an
    org), and a connection coming back goes to the tenants in turn, by
    deficit round robin weighted by what each caller's statement costs: a
    tenant with many heavy statements waiting gets no more of the database
    than one with a few light ones. A caller whose turn would come later
    than it can wait (estimated from how long connections are held) is
    refused at once, or, when another tenant has more work waiting, that
    tenant's newest caller is refused in its place (PoolShed).
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        max_size: int,
        *,
        keep_idle: int = 1,
        max_idle: float = MAX_IDLE_SECONDS,
    ) -> None:
        if max_size < 1:
            raise ValueError("a pool needs room for at least one connection")
        self.max_size = max_size
        self._connect = connect
        self._keep_idle = keep_idle
        self._max_idle = max_idle
        # (connection, idle since), most recently returned last: the busiest connections stay warm
        # and the one idle longest comes first.
        self._idle: list[tuple[asyncpg.Connection, float]] = []
        self._lent: set[asyncpg.Connection] = set()
        self._opening = 0
        # Callers waiting, per tenant. Each is handed a connection, or None: "a place is free, open one".
        self._turns: Turns[asyncpg.Connection | None] = Turns()
        # Seconds a connection is held, smoothed (Lease reports each hold).
        self.hold_seconds = 0.0
        self._closing = False
        self._returned = asyncio.Event()
        self._retiring: set[asyncio.Task[None]] = set()
        # The sweep that refuses callers past their acquire timeout: when it runs next (inf: not armed).
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._sweep_at = math.inf
        self._sweep_loop: asyncio.AbstractEventLoop | None = None

    @property
    def size(self) -> int:
        """Connections open or being opened (an idle one the server has closed counts until it is next met)."""
        return len(self._idle) + len(self._lent) + self._opening

    @property
    def in_use(self) -> int:
        return len(self._lent)

    def lend_idle(self) -> asyncpg.Connection | None:
        """An idle open connection at once, or None."""
        idle = self._idle
        while idle:
            connection, _ = idle.pop()
            if not connection.is_closed():
                self._lent.add(connection)
                return connection
            connection.terminate()  # closed by the server while idle: finish the client's side
        return None

    async def acquire(self, within: float, tenant: Hashable = None, cost: int = 1) -> asyncpg.Connection:
        """A connection within `within` seconds: an idle one, a new one, or one returned, in the tenant's turn.

        Raises TimeoutError (PoolShed when the turn would come too late), asyncpg.InterfaceError once the
        pool is closing, or whatever opening a connection raised.
        """
        connection = None if self._closing else self.lend_idle()
        if connection is not None:
            return connection
        return await self.wait(within, tenant, cost)

    async def wait(self, within: float, tenant: Hashable = None, cost: int = 1) -> asyncpg.Connection:
        """acquire() for a caller that found no idle connection (lend_idle): a new one, or one returned."""
        if self._closing:
            raise asyncpg.InterfaceError("the connection pool is closing")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            if len(self._idle) + len(self._lent) + self._opening < self.max_size:  # self.size, inline
                async with asyncio.timeout_at(deadline):
                    return await self._open()
            waiter = self._queue(loop, deadline, tenant, cost)
            try:
                handed = await waiter
            except BaseException:
                # Handed something just as this caller gave up (timeout, cancellation): pass it on.
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._pass_on(waiter.result())
                raise
            finally:
                self._turns.left()
            if handed is not None:
                return handed

    def charge(self, tenant: Hashable, units: int) -> None:
        """The tenant's caller just handed a connection used `units` more than its queued cost: its next turns
        come that much later (see Turns.charge)."""
        self._turns.charge(tenant, units)

    def note_hold(self, seconds: float) -> None:
        """How long a connection was just held: the estimate of each caller's wait follows it."""
        self.hold_seconds += _SMOOTHING * (seconds - self.hold_seconds)

    def release(self, connection: asyncpg.Connection, *, reusable: bool = True, held: float | None = None) -> None:
        """Take a lent connection back; one that is not reusable is terminated and its place freed. `held`: how
        long it was held, if known (noted as note_hold does)."""
        if held is not None:
            self.note_hold(held)
        if connection not in self._lent:
            return
        if reusable and not connection.is_closed():
            # (Callers that gave up but have not run since still count as waiting: next() skips them.)
            if not self._closing and self._turns.waiting:
                waiter = self._turns.next()
                if waiter is not None:
                    waiter.set_result(connection)  # it stays lent, now to the waiter
                    return
            self._lent.discard(connection)
            now = time.monotonic()
            idle = self._idle
            idle.append((connection, now))
            if len(idle) > self._keep_idle and now - idle[0][1] > self._max_idle and not self._closing:
                self._retire(idle.pop(0)[0])
        else:
            self._lent.discard(connection)
            connection.terminate()
            self._free_place()
        if self._closing:
            self._returned.set()

    async def close(self, grace: float = 10.0) -> bool:
        """Stop lending, wait up to grace seconds for lent connections, close all; False if some had to be
        terminated."""
        self._closing = True
        self._turns.fail_all(asyncpg.InterfaceError("the connection pool is closing"))
        try:
            async with asyncio.timeout(grace):
                while self._lent:
                    self._returned.clear()
                    await self._returned.wait()
                idle, self._idle = self._idle, []
                closing = [connection.close() for connection, _ in idle]
                await asyncio.gather(*closing, *self._retiring, return_exceptions=True)
        except TimeoutError:
            self.terminate()
            return False
        return True

    def terminate(self) -> None:
        """Close every connection at once, lent or not."""
        self._closing = True
        for connection in [*(connection for connection, _ in self._idle), *self._lent]:
            connection.terminate()
        self._idle.clear()
        self._lent.clear()

    def _retire(self, connection: asyncpg.Connection) -> None:
        """Close an idle connection in the background, politely."""
        task = asyncio.get_running_loop().create_task(_close_quietly(connection))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _open(self) -> asyncpg.Connection:
        self._opening += 1
        try:
            connection = await self._connect()
        except BaseException:
            self._opening -= 1
            self._free_place()
            raise
        self._opening -= 1
        if self._closing:
            connection.terminate()
            raise asyncpg.InterfaceError("the connection pool is closing")
        self._lent.add(connection)
        return connection

    def _queue(
        self, loop: asyncio.AbstractEventLoop, deadline: float, tenant: Hashable, cost: int
    ) -> asyncio.Future[asyncpg.Connection | None]:
        """The caller's place in its tenant's queue (or PoolShed at once), refused by the sweep at `deadline`."""
        turns = self._turns
        expected = (turns.waiting + 1) * self.hold_seconds / self.max_size
        if expected > deadline - loop.time():
            turns.make_room(tenant, cost, PoolShed(expected))
        waiter: asyncio.Future[asyncpg.Connection | None] = loop.create_future()
        turns.join(waiter, tenant, cost, deadline)
        if deadline < self._sweep_at or self._sweep_loop is not loop:
            self._arm_sweep(loop, deadline)
        return waiter

    def _arm_sweep(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        # (A sweep armed on another loop, one since closed, is dropped: it would never run.)
        if self._sweep_handle is not None and self._sweep_loop is loop:
            self._sweep_handle.cancel()
        self._sweep_handle = loop.call_at(when, self._sweep)
        self._sweep_at = when
        self._sweep_loop = loop

    def _sweep(self) -> None:
        """Refuse the callers whose acquire timeout has passed; again at the next deadline while any waits."""
        loop = self._sweep_loop
        assert loop is not None
        now = loop.time()
        # A timer may fire a fraction of a millisecond before its time (the loop's clock is coarse).
        earliest = self._turns.expire(now + _SWEEP_SLACK)
        self._sweep_handle, self._sweep_at = None, math.inf
        if earliest != math.inf:
            self._arm_sweep(loop, max(earliest, now + _SWEEP_TICK))

    def _pass_on(self, handed: asyncpg.Connection | None) -> None:
        if handed is None:
            self._free_place()
        else:
            self.release(handed)

    def _free_place(self) -> None:
        """A connection is gone: the caller whose turn it is may open a new one."""
        waiter = self._turns.next()
        if waiter is not None:
            waiter.set_result(None)


async def _close_quietly(connection: asyncpg.Connection) -> None:
    try:
        await connection.close(timeout=_CLOSE_TIMEOUT)
    except asyncio.CancelledError:
        connection.terminate()
        raise
    except Exception:
        connection.terminate()
