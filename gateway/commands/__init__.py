"""What each subcommand does, given Settings: one module per group of commands. The CLI parses; these run.

Here: what they share (the database to use, a connection to it, how they print tables and times).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg

from gateway.config import Settings


def database_url(settings: Settings) -> str:
    """The configured database, or the embedded one (started, or joined, now)."""
    if settings.database_url:
        return settings.database_url
    from gateway.db.embedded import embedded_database_url

    return embedded_database_url(settings.data_dir)


async def connect(settings: Settings) -> asyncpg.Connection:
    from gateway.db.pool import SERVER_SETTINGS

    return await asyncpg.connect(database_url(settings), server_settings=SERVER_SETTINGS)


@asynccontextmanager
async def migrated(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the database, its schema brought up to date first; closed afterwards."""
    from gateway.db.migrations import migrate as apply_migrations

    connection = await connect(settings)
    try:
        await apply_migrations(connection)
        yield connection
    finally:
        await connection.close()


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"
