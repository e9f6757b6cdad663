"""The connection pool, and how its failures reach clients."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial

import asyncpg

from gateway.config import Settings
from gateway.errors import ServiceUnavailable
from gateway.observability.metrics import DB_UNAVAILABLE

logger = logging.getLogger("gateway.db")

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
_BROKEN: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.InternalClientError)

# How much longer than statement_timeout the client waits for an answer.
_CLIENT_GRACE = 0.5
# Idle connections beyond pool_min_size are closed after this long (asyncpg's pool does the same).
MAX_IDLE_SECONDS = 300.0
_CLOSE_TIMEOUT = 5.0

_NOT_READY = DB_UNAVAILABLE.labels(reason="not_ready")
_ACQUIRE_TIMEOUT = DB_UNAVAILABLE.labels(reason="acquire_timeout")
_UNREACHABLE = DB_UNAVAILABLE.labels(reason="unreachable")
_STATEMENT_TIMEOUT = DB_UNAVAILABLE.labels(reason="statement_timeout")


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
        # Each waiter is handed a connection, or None: "a place is free, open one".
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closing = False
        self._returned = asyncio.Event()
        self._retiring: set[asyncio.Task[None]] = set()

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

    async def acquire(self, within: float) -> asyncpg.Connection:
        """A connection within `within` seconds: an idle one, a new one, or the next one returned.

        Raises TimeoutError, asyncpg.InterfaceError once the pool is closing, or whatever opening a connection raised.
        """
        if self._closing:
            raise asyncpg.InterfaceError("the connection pool is closing")
        connection = self.lend_idle()
        if connection is not None:
            return connection
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            if self.size < self.max_size:
                async with asyncio.timeout_at(deadline):
                    return await self._open()
            handed = await self._wait(loop, deadline)
            if handed is not None:
                return handed

    def release(self, connection: asyncpg.Connection, *, reusable: bool = True) -> None:
        """Take a lent connection back; one that is not reusable is terminated and its place freed."""
        if connection not in self._lent:
            return
        if reusable and not connection.is_closed():
            if not self._closing:
                while self._waiters:
                    waiter = self._waiters.popleft()
                    if not waiter.done():
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
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the connection pool is closing"))
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

    async def _wait(self, loop: asyncio.AbstractEventLoop, deadline: float) -> asyncpg.Connection | None:
        # Under load most requests wait here: one timer handle is cheaper than an asyncio.timeout() block.
        waiter: asyncio.Future[asyncpg.Connection | None] = loop.create_future()
        timer = loop.call_at(deadline, _time_out, waiter)
        self._waiters.append(waiter)
        try:
            return await waiter
        except BaseException:
            # Handed something just as this caller gave up (timeout, cancellation): pass it on.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()
                if handed is None:
                    self._free_place()
                else:
                    self.release(handed)
            raise
        finally:
            timer.cancel()

    def _free_place(self) -> None:
        """A connection is gone: the first caller still waiting may open a new one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


async def _close_quietly(connection: asyncpg.Connection) -> None:
    try:
        await connection.close(timeout=_CLOSE_TIMEOUT)
    except asyncio.CancelledError:
        connection.terminate()
        raise
    except Exception:
        connection.terminate()


def _time_out(waiter: asyncio.Future[asyncpg.Connection | None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _ignore(seconds: float) -> None:
    pass


class Database:
    """The pool as the rest of the gateway sees it: connections that fail fast.

    `ready` is False until the schema is known to be migrated (the app's
    lifespan migrates in the background and sets it); until then every call
    is SERVICE_UNAVAILABLE at once. `on_query` is told how long each
    connection was held (for metrics and the request log).
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

    def connection(self, acquire_timeout: float | None = None) -> Lease:
        """`async with database.connection() as connection:` a pooled connection; an unreachable database
        becomes SERVICE_UNAVAILABLE within the timeout."""
        return Lease(self, acquire_timeout or self.acquire_timeout)

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

    __slots__ = ("_connection", "_database", "_started", "_timeout")

    def __init__(self, database: Database, timeout: float) -> None:
        self._database = database
        self._timeout = timeout

    async def __aenter__(self) -> asyncpg.Connection:
        database = self._database
        if not database.ready:
            _NOT_READY.inc()
            raise ServiceUnavailable("the database is not ready yet; try again shortly")
        connection = database.pool.lend_idle()
        if connection is None:
            database.waiting += 1
            try:
                connection = await database.pool.acquire(self._timeout)
            except TimeoutError as error:
                _ACQUIRE_TIMEOUT.inc()
                raise ServiceUnavailable("the database did not answer in time; try again shortly") from error
            except CONNECTION_ERRORS as error:
                _UNREACHABLE.inc()
                raise ServiceUnavailable("the database cannot be reached; try again shortly") from error
            finally:
                database.waiting -= 1
        self._connection = connection
        self._started = time.perf_counter()
        return connection

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, _: object) -> None:
        database = self._database
        database.on_query(time.perf_counter() - self._started)
        # A broken connection is dropped. One whose statement was cancelled (a deadline) stays: asyncpg has
        # asked the server to cancel it, and the connection's next statement first waits for that to end.
        reusable = not isinstance(error, _BROKEN)
        database.pool.release(self._connection, reusable=reusable)
        if error is None:
            return
        if isinstance(error, _BROKEN):
            # Also the client's command timeout (TimeoutError): the server stopped answering.
            _UNREACHABLE.inc()
            raise ServiceUnavailable("the database cannot be reached; try again shortly") from error
        if isinstance(error, asyncpg.QueryCanceledError):  # statement_timeout
            _STATEMENT_TIMEOUT.inc()
            raise ServiceUnavailable("the database did not answer in time; try again shortly") from error
