"""Persisted documents: automatic persisted queries per org, and the deployment's trusted documents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.db.database import Database
from gateway.db.sql import (
    EVICT_PERSISTED_QUERIES,
    FIND_PERSISTED_QUERY,
    INSERT_PERSISTED_QUERY,
    INSERT_TRUSTED_DOCUMENT,
    LIST_TRUSTED_DOCUMENTS,
    LIVE_TRUSTED_DOCUMENTS,
    REVOKE_TRUSTED_DOCUMENT,
    TOUCH_PERSISTED_QUERY,
)


@dataclass(frozen=True, slots=True)
class TrustedDocument:
    document_id: str
    sha256: str
    document: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class TrustedListing:
    document_id: str
    name: str
    registered_at: datetime
    revoked_at: datetime | None


class DocumentIdTaken(Exception):
    """A manifest gives an id that is registered already for another document."""

    def __init__(self, document_id: str) -> None:
        super().__init__(document_id)
        self.document_id = document_id


async def find_persisted_query(database: Database, org_id: int, sha256: str) -> str | None:
    async with database.connection() as connection:
        document: str | None = await connection.fetchval(FIND_PERSISTED_QUERY, org_id, sha256)
    return document


async def register_persisted_query(database: Database, org_id: int, sha256: str, document: str, keep: int) -> None:
    """Store the document (or mark it used), then forget the org's least recently used beyond `keep`."""
    async with database.connection() as connection, connection.transaction():
        await connection.execute(INSERT_PERSISTED_QUERY, org_id, sha256, document)
        await connection.execute(EVICT_PERSISTED_QUERIES, org_id, keep)


async def touch_persisted_query(database: Database, org_id: int, sha256: str) -> None:
    async with database.connection() as connection:
        await connection.execute(TOUCH_PERSISTED_QUERY, org_id, sha256)


async def live_trusted_documents(database: Database) -> list[TrustedDocument]:
    async with database.connection() as connection:
        rows = await connection.fetch(LIVE_TRUSTED_DOCUMENTS)
    return [TrustedDocument(row["document_id"], row["sha256"], row["document"]) for row in rows]


async def insert_trusted_documents(connection: asyncpg.Connection, documents: Sequence[TrustedDocument]) -> None:
    """All of them in the caller's transaction; raises DocumentIdTaken for an id that names another text."""
    for document in documents:
        inserted = await connection.fetchval(
            INSERT_TRUSTED_DOCUMENT, document.document_id, document.sha256, document.document, document.name
        )
        if inserted is None:
            raise DocumentIdTaken(document.document_id)


async def list_trusted_documents(connection: asyncpg.Connection) -> list[TrustedListing]:
    rows = await connection.fetch(LIST_TRUSTED_DOCUMENTS)
    return [TrustedListing(row["document_id"], row["name"], row["registered_at"], row["revoked_at"]) for row in rows]


async def revoke_trusted_document(connection: asyncpg.Connection, document_id: str) -> datetime | None:
    """Revoke it (idempotent); None when there is no such document."""
    revoked: datetime | None = await connection.fetchval(REVOKE_TRUSTED_DOCUMENT, document_id)
    return revoked
