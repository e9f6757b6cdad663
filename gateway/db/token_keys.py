"""Keys that verify one org's end-user tokens, stored with the org (migration 003)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.db.database import Database
from gateway.db.sql import ANY_TOKEN_KEYS, FIND_TOKEN_KEYS, INSERT_TOKEN_KEY, LIST_TOKEN_KEYS, REVOKE_TOKEN_KEY


@dataclass(frozen=True, slots=True)
class StoredTokenKey:
    key_id: str
    kid: str | None
    algorithm: str  # HS256, RS256 or ES256
    format: str  # secret, pem or jwk
    material: bytes
    issuer: str | None = None
    audience: str | None = None


@dataclass(frozen=True, slots=True)
class TokenKeyListing:
    org_id: int
    key_id: str
    kid: str | None
    algorithm: str
    format: str
    issuer: str | None
    audience: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None


async def find_token_keys(database: Database, org_id: int) -> list[StoredTokenKey]:
    """The org's live keys."""
    async with database.connection() as connection:
        return await live_token_keys(connection, org_id)


async def live_token_keys(connection: asyncpg.Connection, org_id: int) -> list[StoredTokenKey]:
    rows = await connection.fetch(FIND_TOKEN_KEYS, org_id)
    return [
        StoredTokenKey(
            key_id=row["key_id"],
            kid=row["kid"],
            algorithm=row["algorithm"],
            format=row["format"],
            material=bytes(row["material"]),
            issuer=row["issuer"],
            audience=row["audience"],
        )
        for row in rows
    ]


async def any_token_keys(database: Database) -> bool:
    """Whether some org has a live key."""
    async with database.connection() as connection:
        return bool(await connection.fetchval(ANY_TOKEN_KEYS))


async def insert_token_key(connection: asyncpg.Connection, org_id: int, key: StoredTokenKey, name: str) -> None:
    await connection.execute(
        INSERT_TOKEN_KEY,
        org_id,
        key.key_id,
        key.kid,
        key.algorithm,
        key.format,
        key.material,
        key.issuer,
        key.audience,
        name,
    )


async def list_token_keys(connection: asyncpg.Connection, org_id: int | None = None) -> list[TokenKeyListing]:
    rows = await connection.fetch(LIST_TOKEN_KEYS, org_id)
    return [
        TokenKeyListing(
            org_id=row["org_id"],
            key_id=row["key_id"],
            kid=row["kid"],
            algorithm=row["algorithm"],
            format=row["format"],
            issuer=row["issuer"],
            audience=row["audience"],
            name=row["name"],
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
        )
        for row in rows
    ]


async def revoke_token_key(connection: asyncpg.Connection, key_id: str) -> tuple[int, datetime] | None:
    """Revoke the key (idempotent): (its org, since when); None when there is no such key."""
    row = await connection.fetchrow(REVOKE_TOKEN_KEY, key_id)
    return (row["org_id"], row["revoked_at"]) if row else None
