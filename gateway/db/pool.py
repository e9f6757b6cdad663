"""The asyncpg connection pool."""

from __future__ import annotations

import asyncpg

from gateway.config import Settings

SERVER_SETTINGS = {
    "application_name": "loyalty-gateway",
    # Lookups are tiny OLTP statements; JIT compilation only adds latency.
    "jit": "off",
}


async def create_pool(database_url: str, settings: Settings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        server_settings=SERVER_SETTINGS,
    )
    assert pool is not None
    return pool
