"""The asyncpg connection pool, and how its failures reach clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from gateway.config import Settings
from gateway.errors import ServiceUnavailable

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


# How much longer than statement_timeout the client waits for an answer.
_CLIENT_GRACE = 0.5


async def create_pool(database_url: str, settings: Settings) -> asyncpg.Pool:
    """The pool requests use: every statement bounded in time, on the server and in the client."""
    pool = await asyncpg.create_pool(
        database_url,
        min_size=settings.pool_min_size,
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


class Database:
    """The pool as the rest of the gateway sees it: connections that fail fast."""

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float) -> None:
        self.pool = pool
        self.acquire_timeout = acquire_timeout

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; an unreachable database becomes SERVICE_UNAVAILABLE within the timeout."""
        try:
            async with self.pool.acquire(timeout=self.acquire_timeout) as acquired:
                yield acquired
        except CONNECTION_ERRORS as error:
            raise ServiceUnavailable("the database cannot be reached; try again shortly") from error
        except asyncpg.QueryCanceledError as error:  # statement_timeout
            raise ServiceUnavailable("the database did not answer in time; try again shortly") from error
