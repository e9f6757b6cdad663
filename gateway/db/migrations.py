"""Forward-only numbered SQL migrations, recorded in schema_migrations."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files

import asyncpg

# Any fixed number: concurrent `migrate`/`serve` processes take turns.
_MIGRATION_LOCK = 7_311_120_001
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    folder = files(__package__).joinpath("migrations")
    migrations = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            migrations.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(migrations, key=lambda m: m.version)


async def applied_versions(connection: asyncpg.Connection) -> set[int]:
    exists = await connection.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    return {row["version"] for row in await connection.fetch("SELECT version FROM schema_migrations")}


async def migrate(connection: asyncpg.Connection) -> list[Migration]:
    """Apply pending migrations in one transaction, under a lock; returns those applied."""
    applied: list[Migration] = []
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = await applied_versions(connection)
        for migration in available_migrations():
            if migration.version in done:
                continue
            await connection.execute(migration.sql)
            await connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            applied.append(migration)
    return applied
