"""What changed in the database, as PostgreSQL announces it: one LISTEN connection per worker, fanned out.

Triggers on balances, customer_identifiers and fleets (migration 006) NOTIFY `loyalty_gateway_changes` at
each commit that changes them, whoever writes: "<org> C:<customer id> F:<fleet id> …", or "<org> *" for a
statement of more than 1000 rows. The worker's ChangeFeed keeps one connection listening and pokes every
watcher of a named entity (or of the whole org). When that connection is lost (a database restart), it is
opened again, and every watcher is poked with `resend`: a change may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import asyncpg

from gateway.db.pool import CONNECTION_ERRORS

CHANNEL = "loyalty_gateway_changes"
# Reconnecting the listener: the first pause, and the longest.
_RETRY_FIRST, _RETRY_LONGEST = 0.1, 2.0
# How often an idle listening connection is checked to be alive (a lost socket may stay silent).
_CHECK_EVERY = 5.0

logger = logging.getLogger("gateway.live.changes")

# An entity as the announcements name it: "C:<customer id>" or "F:<fleet id>".
EntityKey = str


def entity_key(entity_type: str, entity_id: int) -> EntityKey:
    """The key of a CUSTOMER or FLEET entity, as announced."""
    return f"{entity_type[0]}:{entity_id}"


class Watcher(Protocol):
    def poke(self, *, resend: bool) -> None:
        """Something the watcher shows may have changed; `resend`: send it again even if it did not."""


class ChangeFeed:
    """The worker's one listening connection, and who watches what."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]]) -> None:
        self._connect = connect
        self._entities: dict[tuple[int, EntityKey], set[Watcher]] = {}
        self._orgs: dict[int, set[Watcher]] = {}
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.announcements = 0  # received, for the metrics

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="change-feed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def watch(self, org_id: int, key: EntityKey, watcher: Watcher) -> None:
        self._entities.setdefault((org_id, key), set()).add(watcher)
        self._orgs.setdefault(org_id, set()).add(watcher)

    def unwatch(self, org_id: int, key: EntityKey, watcher: Watcher) -> None:
        _discard(self._entities, (org_id, key), watcher)
        _discard(self._orgs, org_id, watcher)

    @property
    def watchers(self) -> int:
        return sum(len(watchers) for watchers in self._orgs.values())

    def announced(self, payload: str) -> None:
        """One announcement: poke those who watch what it names."""
        self.announcements += 1
        org, _, entities = payload.partition(" ")
        try:
            org_id = int(org)
        except ValueError:
            logger.warning("ignored an announcement that names no org: %.80r", payload)
            return
        if entities == "*":
            for watcher in tuple(self._orgs.get(org_id, ())):
                watcher.poke(resend=False)
            return
        entity_watchers = self._entities
        for key in entities.split():
            for watcher in tuple(entity_watchers.get((org_id, key), ())):
                watcher.poke(resend=False)

    def _resend_all(self) -> None:
        for watchers in tuple(self._orgs.values()):
            for watcher in tuple(watchers):
                watcher.poke(resend=True)

    async def _listen(self) -> None:
        pause = _RETRY_FIRST
        first = True
        while True:
            try:
                connection = await self._connect()
            except CONNECTION_ERRORS:
                await asyncio.sleep(pause)
                pause = min(_RETRY_LONGEST, pause * 2)
                continue
            pause = _RETRY_FIRST
            try:
                await self._serve(connection, resend=not first)
            except CONNECTION_ERRORS:
                pass
            finally:
                self.connected.clear()
                connection.terminate()
            first = False
            logger.warning("lost the connection that listens to database changes; reconnecting")

    async def _serve(self, connection: asyncpg.Connection, *, resend: bool) -> None:
        """Listen on one connection until it is lost."""
        lost = asyncio.get_running_loop().create_future()
        connection.add_termination_listener(lambda _: lost.done() or lost.set_result(None))
        await connection.add_listener(CHANNEL, lambda *args: self.announced(args[-1]))
        self.connected.set()
        if resend:
            logger.info("listening to database changes again; every subscription is sent anew")
            self._resend_all()
        while not lost.done():
            await asyncio.wait([lost], timeout=_CHECK_EVERY)
            if not lost.done():
                await connection.execute("SELECT 1")  # raises once the server is gone


_Name = TypeVar("_Name")


def _discard(index: dict[_Name, set[Watcher]], name: _Name, watcher: Watcher) -> None:
    watchers = index.get(name)
    if watchers is not None:
        watchers.discard(watcher)
        if not watchers:
            del index[name]
