"""The asyncpg connection pool, and how its failures reach clients."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg

from gateway.config import Settings
from gateway.errors import ServiceUnavailable
from gateway.observability.metrics import DB_UNAVAILABLE

logger = logging.getLogger("gateway.db")

SERVER_SETTINGS = {
    "application_name": "loyalty-gateway",
    # Lookups are tiny OLTP statements; JIT compilation only adds latency.
    "jit": "off",
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

_NOT_READY = DB_UNAVAILABLE.labels(reason="not_ready")
_ACQUIRE_TIMEOUT = DB_UNAVAILABLE.labels(reason="acquire_timeout")
_UNREACHABLE = DB_UNAVAILABLE.labels(reason="unreachable")
_STATEMENT_TIMEOUT = DB_UNAVAILABLE.labels(reason="statement_timeout")


async def create_pool(database_url: str, settings: Settings) -> asyncpg.Pool:
    """The pool requests use: every statement bounded in time, on the server and in the client.

    It opens no connection yet (min_size 0), so it is created even while the
    database is down; connections are opened on demand, and again after the
    database comes back. Database.warm_up opens settings.pool_min_size of
    them once the database is there.
    """
    pool = await asyncpg.create_pool(
        database_url,
        min_size=0,
        max_size=settings.pool_max_size,
        command_timeout=settings.statement_timeout + _CLIENT_GRACE,
        reset=_keep_session,
        server_settings={**SERVER_SETTINGS, "statement_timeout": str(int(settings.statement_timeout * 1000))},
    )
    assert pool is not None
    return pool


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Pool connections are only used for single read statements: no cursors,
    LISTEN, SET or advisory locks to undo, so asyncpg's reset query (a round
    trip on every release) is skipped. asyncpg still rolls back an open
    transaction by itself."""


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
        pool: asyncpg.Pool,
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

    @asynccontextmanager
    async def connection(self, acquire_timeout: float | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; an unreachable database becomes SERVICE_UNAVAILABLE within the timeout."""
        if not self.ready:
            _NOT_READY.inc()
            raise ServiceUnavailable("the database is not ready yet; try again shortly")
        self.waiting += 1
        try:
            acquired = await self.pool.acquire(timeout=acquire_timeout or self.acquire_timeout)
        except TimeoutError as error:
            _ACQUIRE_TIMEOUT.inc()
            raise ServiceUnavailable("the database did not answer in time; try again shortly") from error
        except CONNECTION_ERRORS as error:
            _UNREACHABLE.inc()
            raise ServiceUnavailable("the database cannot be reached; try again shortly") from error
        finally:
            self.waiting -= 1
        started = time.perf_counter()
        try:
            try:
                yield acquired
            except _BROKEN:
                # The connection failed mid-operation: its state is unknown (a shutting-down server may
                # still have to close it), so it is dropped rather than lent to the next request.
                acquired.terminate()
                raise
            finally:
                self.on_query(time.perf_counter() - started)
                # Releasing may fail too (waiting for a cancelled statement to end): mapped below.
                await self.pool.release(acquired)
        except CONNECTION_ERRORS as error:
            # Also the client's command timeout (TimeoutError): the server stopped answering.
            _UNREACHABLE.inc()
            raise ServiceUnavailable("the database cannot be reached; try again shortly") from error
        except asyncpg.InternalClientError as error:
            # A connection left mid-operation by a failure the client had not seen yet.
            _UNREACHABLE.inc()
            raise ServiceUnavailable("the database cannot be reached; try again shortly") from error
        except asyncpg.QueryCanceledError as error:  # statement_timeout
            _STATEMENT_TIMEOUT.inc()
            raise ServiceUnavailable("the database did not answer in time; try again shortly") from error

    @property
    def size(self) -> int:
        """Open connections."""
        return self.pool.get_size()

    @property
    def in_use(self) -> int:
        return self.pool.get_size() - self.pool.get_idle_size()

    async def warm_up(self, connections: int) -> None:
        """Open up to `connections` connections now rather than on the first requests."""
        count = min(connections, self.pool.get_max_size())
        if count <= 0:
            return
        opened = await asyncio.gather(
            *(self.pool.acquire(timeout=self.acquire_timeout) for _ in range(count)), return_exceptions=True
        )
        for connection in opened:
            if isinstance(connection, BaseException):
                logger.debug("could not open a connection ahead of time: %s", type(connection).__name__)
            else:
                await self.pool.release(connection)

    async def close(self, grace: float) -> None:
        """Close the pool: gracefully within grace seconds (connections still lent are waited for), then by force."""
        try:
            await asyncio.wait_for(self.pool.close(), grace)
        except TimeoutError:
            logger.warning("database connections were still in use after %.0f s; closing them", grace)
            self.pool.terminate()
