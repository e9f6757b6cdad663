"""API keys: stored as SHA-256 hashes, found by their public prefix."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from gateway.db.pool import Database
from gateway.db.sql import FIND_API_KEY, INSERT_API_KEY


@dataclass(frozen=True, slots=True)
class StoredKey:
    org_id: int
    key_hash: bytes


async def find_api_key(database: Database, key_prefix: str) -> StoredKey | None:
    async with database.connection() as connection:
        row = await connection.fetchrow(FIND_API_KEY, key_prefix)
    return StoredKey(row["org_id"], bytes(row["key_hash"])) if row else None


async def insert_api_key(
    connection: asyncpg.Connection, org_id: int, key_prefix: str, key_hash: bytes, name: str
) -> None:
    await connection.execute(INSERT_API_KEY, org_id, key_prefix, key_hash, name)
