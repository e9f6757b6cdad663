"""Who is calling: API keys from the Authorization header, cached briefly.

The cache keeps the database out of the path of every request; its short
lifetime bounds how long a revoked key keeps working, in every worker.
"""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.db.api_keys import StoredKey, find_api_key, touch_api_key
from gateway.db.database import Database
from gateway.db.refreshing import RefreshingCache
from gateway.domain.api_keys import hash_key, hashes_match, key_prefix
from gateway.errors import GatewayError, Unauthenticated

logger = logging.getLogger("gateway.access.api_keys")

_ACCEPTED_LIMIT = 10_000


class ApiKeyAuthenticator:
    def __init__(self, database: Database, ttl_seconds: float) -> None:
        self._database = database
        # Each key prefix's stored key (or None: no such live key), read once per lifetime.
        self._stored = RefreshingCache(self._read, ttl_seconds)
        # Authorization headers already checked against their stored hash -> (org, until when): a repeated
        # header costs a dict lookup instead of a SHA-256. Each holds until its stored key is due to be read again.
        self._accepted: dict[str, tuple[int, float]] = {}
        self._background: set[asyncio.Task[None]] = set()

    def accepted(self, authorization: str | None) -> int | None:
        """The org of a header already checked against its stored key and not yet due to be read again;
        None: org_for must check it."""
        accepted = self._accepted.get(authorization) if authorization else None
        if accepted is not None and accepted[1] > time.monotonic():
            return accepted[0]
        return None

    async def org_for(self, authorization: str | None) -> int:
        """The org of a valid `Bearer <key>` header; raises Unauthenticated."""
        org_id = self.accepted(authorization)
        if org_id is not None:
            return org_id
        if not authorization:
            raise Unauthenticated("send an API key as `Authorization: Bearer <key>`")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        prefix = key_prefix(key) if scheme.lower() == "bearer" else None
        if prefix is None:
            raise Unauthenticated("the Authorization header is not `Bearer <API key>`")
        entry = await self._stored.entry(prefix)
        stored = entry.value
        if stored is None or not hashes_match(stored.key_hash, hash_key(key)):
            raise Unauthenticated("the API key is not valid")
        if len(self._accepted) >= _ACCEPTED_LIMIT:
            self._accepted.clear()
        # Until the entry is due to be read again: the first use after that starts the read.
        self._accepted[authorization] = (stored.org_id, entry.refresh_at)
        return stored.org_id

    async def _read(self, prefix: str) -> StoredKey | None:
        stored = await find_api_key(self._database, prefix)
        if stored is not None:
            # last_used_at is kept to within one cache lifetime, off the request's path.
            task = asyncio.create_task(self._touch(prefix))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return stored

    async def _touch(self, prefix: str) -> None:
        try:
            await touch_api_key(self._database, prefix)
        except GatewayError:
            logger.debug("could not record the use of key %s", prefix)
