"""Cached database reads: one read per key at a time, read again ahead of expiry, never served past it."""

from __future__ import annotations

import asyncio
from functools import partial

import asyncpg
import pytest

from gateway.access.api_keys import ApiKeyAuthenticator
from gateway.db.api_keys import revoke_api_key
from gateway.db.database import Database
from gateway.db.pool import ConnectionPool
from gateway.db.refreshing import RefreshingCache
from gateway.errors import ServiceUnavailable, Unauthenticated
from tests.factories import Seed


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Source:
    """Values that change with every read; each read waits for `release` when one is given."""

    def __init__(self) -> None:
        self.reads = 0
        self.release: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def __call__(self, key: str) -> str:
        self.reads += 1
        if self.release is not None:
            await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return f"{key}-{self.reads}"


async def test_requests_arriving_together_share_one_read():
    source = Source()
    source.release = asyncio.Event()
    cache = RefreshingCache(source, ttl=10)
    waiting = [asyncio.create_task(cache.get("k")) for _ in range(64)]
    await asyncio.sleep(0.01)
    source.release.set()
    assert set(await asyncio.gather(*waiting)) == {"k-1"}
    assert source.reads == 1


async def test_a_value_in_use_is_read_again_in_the_background_and_never_used_past_its_lifetime():
    clock, source = Clock(), Source()
    cache = RefreshingCache(source, ttl=4, clock=clock)
    assert await cache.get("k") == "k-1"
    clock.now += 2.9  # within the first three quarters: used as it is
    assert await cache.get("k") == "k-1"
    assert source.reads == 1
    clock.now += 0.2  # the last quarter: still answered at once, and read again meanwhile
    source.release = asyncio.Event()
    assert await cache.get("k") == "k-1"
    assert await cache.get("k") == "k-1"
    await asyncio.sleep(0)
    assert source.reads == 2  # one read, however many uses
    source.release.set()
    await asyncio.sleep(0.01)
    assert await cache.get("k") == "k-2"
    clock.now += 4.1  # past its lifetime: waited for
    source.release = asyncio.Event()
    waiter = asyncio.create_task(cache.get("k"))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    source.release.set()
    assert await waiter == "k-3"


async def test_a_failed_read_reaches_every_waiter_and_is_not_kept():
    source = Source()
    source.fail = ServiceUnavailable("down")
    cache = RefreshingCache(source, ttl=10)
    results = await asyncio.gather(cache.get("k"), cache.get("k"), return_exceptions=True)
    assert all(isinstance(result, ServiceUnavailable) for result in results)
    assert source.reads == 1
    source.fail = None
    assert await cache.get("k") == "k-2"


async def test_a_failed_read_ahead_keeps_the_value_until_its_lifetime_ends():
    clock, source = Clock(), Source()
    cache = RefreshingCache(source, ttl=4, clock=clock)
    assert await cache.get("k") == "k-1"
    clock.now += 3.5
    source.fail = ServiceUnavailable("down")
    assert await cache.get("k") == "k-1"
    await asyncio.sleep(0.01)
    assert await cache.get("k") == "k-1"  # a second try has started meanwhile
    clock.now += 1
    with pytest.raises(ServiceUnavailable):
        await cache.get("k")


async def test_a_waiter_giving_up_does_not_stop_the_read_for_the_others():
    source = Source()
    source.release = asyncio.Event()
    cache = RefreshingCache(source, ttl=10)
    impatient = asyncio.create_task(cache.get("k"))
    patient = asyncio.create_task(cache.get("k"))
    await asyncio.sleep(0.01)
    impatient.cancel()
    source.release.set()
    assert await patient == "k-1"
    assert impatient.cancelled()


# --- API keys against a real database -------------------------------------------------------------------------------


@pytest.fixture
async def seeded(connection: asyncpg.Connection) -> tuple[Seed, str]:
    seed = Seed(connection)
    await seed.org(1)
    return seed, await seed.api_key(1)


async def test_a_key_used_by_many_requests_at_once_is_read_once(database_url, seeded):
    _, key = seeded
    leases: list[float] = []
    database = Database(ConnectionPool(partial(asyncpg.connect, database_url), 4), 5, on_query=leases.append)
    authenticator = ApiKeyAuthenticator(database, ttl_seconds=0.4)
    try:
        found = await asyncio.gather(*(authenticator.org_for(f"Bearer {key}") for _ in range(64)))
        assert set(found) == {1}
        await asyncio.sleep(0.1)  # the use recorded in the background
        assert len(leases) == 2  # the key read once, its use recorded once
        # In the last quarter of its lifetime the key is read again behind the requests' backs.
        await asyncio.sleep(0.25)
        before = len(leases)
        assert await authenticator.org_for(f"Bearer {key}") == 1
        assert len(leases) == before  # answered without waiting for the database
        await asyncio.sleep(0.1)
        assert len(leases) >= before + 1
    finally:
        await database.close(5)


async def test_a_key_read_ahead_of_time_is_still_refused_within_its_lifetime_once_revoked(
    database_url, seeded, connection
):
    _, key = seeded
    database = Database(ConnectionPool(partial(asyncpg.connect, database_url), 2), 5)
    authenticator = ApiKeyAuthenticator(database, ttl_seconds=0.4)
    try:
        assert await authenticator.org_for(f"Bearer {key}") == 1
        await revoke_api_key(connection, key.split("_")[1])
        # Used all along: it keeps being read again, and the read after the revocation refuses it.
        deadline = asyncio.get_running_loop().time() + 0.4
        with pytest.raises(Unauthenticated):
            while True:
                await authenticator.org_for(f"Bearer {key}")
                assert asyncio.get_running_loop().time() < deadline, "still accepted after its lifetime"
                await asyncio.sleep(0.02)
    finally:
        await database.close(5)
