"""Who is calling: API keys from the Authorization header, cached briefly.

The cache keeps the database out of the path of every request; its short
lifetime bounds how long a revoked key keeps working, in every worker.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from dataclasses import dataclass

from gateway.db.api_keys import StoredKey, find_api_key, touch_api_key
from gateway.db.pool import Database
from gateway.domain.api_keys import hash_key, hashes_match, key_prefix
from gateway.errors import GatewayError, Unauthenticated

logger = logging.getLogger("gateway.access.api_keys")

_CACHE_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class _Cached:
    stored: StoredKey | None
    expires_at: float


class ApiKeyAuthenticator:
    def __init__(self, database: Database, ttl_seconds: float) -> None:
        self._database = database
        self._ttl = ttl_seconds
        self._cache: dict[str, _Cached] = {}
        # Authorization headers already checked against their stored hash -> (org, until when): a repeated
        # header costs a dict lookup instead of a SHA-256. Each expires with its prefix's cache entry.
        self._accepted: dict[str, tuple[int, float]] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def org_for(self, authorization: str | None) -> int:
        """The org of a valid `Bearer <key>` header; raises Unauthenticated."""
        accepted = self._accepted.get(authorization) if authorization else None
        if accepted is not None and accepted[1] > time.monotonic():
            return accepted[0]
        if not authorization:
            raise Unauthenticated("send an API key as `Authorization: Bearer <key>`")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        prefix = key_prefix(key) if scheme.lower() == "bearer" else None
        if prefix is None:
            raise Unauthenticated("the Authorization header is not `Bearer <API key>`")
        stored, expires_at, fresh = await self._stored(prefix)
        if stored is None or not hashes_match(stored.key_hash, hash_key(key)):
            raise Unauthenticated("the API key is not valid")
        if len(self._accepted) >= _CACHE_LIMIT:
            self._accepted.clear()
        self._accepted[authorization] = (stored.org_id, expires_at)
        if fresh:
            # last_used_at is kept to within one cache lifetime, off the request's path.
            # In a context of its own: its database time is not the request's (see the request log).
            task = asyncio.create_task(self._touch(prefix), context=contextvars.Context())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return stored.org_id

    async def _stored(self, prefix: str) -> tuple[StoredKey | None, float, bool]:
        """(the stored key or None, until when that answer holds, whether it was just read)."""
        now = time.monotonic()
        cached = self._cache.get(prefix)
        if cached is not None and cached.expires_at > now:
            return cached.stored, cached.expires_at, False
        stored = await find_api_key(self._database, prefix)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[prefix] = cached = _Cached(stored, now + self._ttl)
        return stored, cached.expires_at, True

    async def _touch(self, prefix: str) -> None:
        try:
            await touch_api_key(self._database, prefix)
        except GatewayError:
            logger.debug("could not record the use of key %s", prefix)
