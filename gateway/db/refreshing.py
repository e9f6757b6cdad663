"""Values read from the database and kept by each worker for a while: API keys, token keys, trusted documents.

When a value's lifetime ran out, every request needing it at that moment used to read it again at once: a
client with 64 requests in flight made 64 reads, queued for the pool ahead of everyone else's requests.
Here one read per key is under way at a time and everyone waiting shares it; and a value still used in the
last quarter of its lifetime is read again in the background, so a key in use is never waited for after
its first read. A value is never served past its lifetime, so that lifetime still bounds how long a revoked
key keeps working.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.errors import GatewayError

logger = logging.getLogger("gateway.db.refreshing")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Read again in the background once this share of a value's lifetime has passed.
REFRESH_AFTER = 0.75
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Entry(Generic[V]):
    value: V
    refresh_at: float  # time.monotonic() from which a use reads it again in the background
    expires_at: float  # ... after which it is not used


class RefreshingCache(Generic[K, V]):
    """`await cache.entry(key)`: the value `load(key)` gave, at most `ttl` seconds old."""

    def __init__(
        self,
        load: Callable[[K], Awaitable[V]],
        ttl: float,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, Entry[V]] = {}
        self._loading: dict[K, asyncio.Task[Entry[V]]] = {}

    async def entry(self, key: K) -> Entry[V]:
        """The key's entry; raises whatever loading it raised (nothing is kept then)."""
        entry = self._entries.get(key)
        if entry is not None:
            now = self._clock()
            if now < entry.expires_at:
                if now >= entry.refresh_at and key not in self._loading:
                    self._start(key).add_done_callback(_log_failure)
                return entry
        loading = self._loading.get(key)
        if loading is None:
            loading = self._start(key)
            # Its failure reaches whoever waits; this only keeps a failure nobody waited for out of the log.
            loading.add_done_callback(_retrieve)
        # A waiter giving up (its deadline) leaves the read to the others.
        return await asyncio.shield(loading)

    async def get(self, key: K) -> V:
        return (await self.entry(key)).value

    def _start(self, key: K) -> asyncio.Task[Entry[V]]:
        # In a context of its own: its database time is no single request's (see the request log).
        task = asyncio.get_running_loop().create_task(self._read(key), context=contextvars.Context())
        self._loading[key] = task
        return task

    async def _read(self, key: K) -> Entry[V]:
        try:
            started = self._clock()
            value = await self._load(key)
            # Its lifetime counts from before the read: the database may have changed since it began.
            entry = Entry(value, started + self._ttl * REFRESH_AFTER, started + self._ttl)
            if len(self._entries) >= self._max_entries and key not in self._entries:
                self._entries.clear()
            self._entries[key] = entry
            return entry
        finally:
            del self._loading[key]


def _retrieve(task: asyncio.Task[object]) -> None:
    if not task.cancelled():
        task.exception()


def _log_failure(task: asyncio.Task[object]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if isinstance(error, GatewayError):
        logger.debug("a cached value could not be read again ahead of time: %s", error.message)
    elif error is not None:
        logger.error("a cached value could not be read again ahead of time", exc_info=error)
