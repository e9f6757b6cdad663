"""API keys: stored as SHA-256 hashes, found by their public prefix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.db.database import Database
from gateway.db.sql import FIND_API_KEY, INSERT_API_KEY, LIST_API_KEYS, REVOKE_API_KEY, TOUCH_API_KEY


@dataclass(frozen=True, slots=True)
class StoredKey:
    org_id: int
    key_hash: bytes


@dataclass(frozen=True, slots=True)
class KeyListing:
    org_id: int
    prefix: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


async def find_api_key(database: Database, key_prefix: str) -> StoredKey | None:
    """The live (unrevoked) key with this prefix."""
    async with database.connection() as connection:
        row = await connection.fetchrow(FIND_API_KEY, key_prefix)
    return StoredKey(row["org_id"], bytes(row["key_hash"])) if row else None


async def touch_api_key(database: Database, key_prefix: str) -> None:
    async with database.connection() as connection:
        await connection.execute(TOUCH_API_KEY, key_prefix)


async def insert_api_key(
    connection: asyncpg.Connection, org_id: int, key_prefix: str, key_hash: bytes, name: str
) -> None:
    await connection.execute(INSERT_API_KEY, org_id, key_prefix, key_hash, name)


async def list_api_keys(connection: asyncpg.Connection, org_id: int | None = None) -> list[KeyListing]:
    rows = await connection.fetch(LIST_API_KEYS, org_id)
    return [
        KeyListing(
            org_id=row["org_id"],
            prefix=row["key_prefix"],
            name=row["name"],
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
            revoked_at=row["revoked_at"],
        )
        for row in rows
    ]


async def revoke_api_key(connection: asyncpg.Connection, key_prefix: str) -> datetime | None:
    """Revoke the key (idempotent); None when there is no such key."""
    row = await connection.fetchrow(REVOKE_API_KEY, key_prefix)
    return row["revoked_at"] if row else None
