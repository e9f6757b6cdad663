"""Fixtures for the read replica tests: a primary with a streaming replica, migrated and seeded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from gateway.db.migrations import migrate
from tests.operations import seed_tom
from tests.replicas.cluster import Pair


@pytest.fixture
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """A primary and its streaming replica (fresh for each test: tests pause, stop and promote them)."""
    pair = Pair(tmp_path_factory.mktemp("replication"))
    try:
        pair.create()
        yield pair
    finally:
        pair.destroy()


@pytest.fixture
def tom_key(pair: Pair) -> str:
    """The gateway's schema on the primary, org 100737 with Tom (8500 points), replayed on the replica;
    returns an API key of the org."""

    async def prepare() -> str:
        connection = await asyncpg.connect(pair.primary.url)
        try:
            await migrate(connection)
        finally:
            await connection.close()
        key = await seed_tom(pair.primary.url)
        await pair.wait_until_replayed()
        return key

    return asyncio.run(prepare())
