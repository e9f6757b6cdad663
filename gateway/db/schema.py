"""Which schema version the database is at (for the readiness probe)."""

from __future__ import annotations

import asyncpg

from gateway.db.database import Database
from gateway.db.migrations import available_migrations
from gateway.db.sql import SCHEMA_VERSION


def required_version() -> int:
    """The newest migration this gateway ships: the database must be at least there."""
    return max((migration.version for migration in available_migrations()), default=0)


async def schema_version(database: Database, within: float) -> int:
    """The newest applied migration (0 for none); one trivial statement, bounded by `within` seconds."""
    async with database.connection(acquire_timeout=within) as connection:
        try:
            version = await connection.fetchval(SCHEMA_VERSION, timeout=within)
        except asyncpg.UndefinedTableError:
            return 0
    return int(version)
