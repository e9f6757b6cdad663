"""Read replicas against two real PostgreSQL servers in streaming replication: lookups read a healthy replica,
leave it while it lags and come back once it caught up; everything else stays on the primary."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from gateway.config import Settings
from tests.operations import BY_ID, ORG, TOM, code_of, lookup
from tests.operations.conftest import running_app
from tests.replicas.cluster import Pair

REST = "/v2/customers/lookup/points/balance"


def replicated(pair: Pair, **changes: Any) -> Settings:
    return Settings(database_url=pair.primary.url, replica_urls=(pair.replica.url,), **changes)


async def main_points(client: httpx.AsyncClient, key: str) -> str:
    response = await lookup(client, key)
    assert (response.status_code, code_of(response)) == (200, "OK"), response.text
    points: str = response.json()["data"]["pointsBalance"]["mainPoints"]
    return points


async def rest_main_points(client: httpx.AsyncClient, key: str) -> str:
    response = await client.get(
        REST,
        params={"source": "INSTORE", "identifierName": "id", "identifierValue": str(TOM)},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    points: str = response.json()["mainPoints"]
    return points


async def replica_state(client: httpx.AsyncClient) -> dict[str, Any]:
    databases = (await client.get("/readyz")).json()["databases"]
    assert [database["name"] for database in databases] == ["primary", "replica-1"]
    state: dict[str, Any] = databases[1]
    return state


async def wait_for_replica(client: httpx.AsyncClient, state: str, within: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while (found := await replica_state(client))["state"] != state:
        assert time.monotonic() < deadline, f"the replica stayed {found}"
        await asyncio.sleep(0.1)
    return found


async def set_points(pair: Pair, points: str) -> None:
    await pair.primary.execute(
        "UPDATE balances SET main_points = $1::numeric WHERE org_id = $2 AND entity_id = $3", points, ORG, TOM
    )


async def test_lookups_over_graphql_and_rest_are_read_from_the_replica(pair: Pair, tom_key: str) -> None:
    async with running_app(replicated(pair, max_replica_lag=60.0)) as client:
        await wait_for_replica(client, "healthy")
        assert await main_points(client, tom_key) == "8500.000"
        await pair.pause_replay()
        await set_points(pair, "9000")
        # The primary has 9000; the replica, its replay paused, still 8500: the answers come from the replica.
        for _ in range(5):
            assert await main_points(client, tom_key) == "8500.000"
            assert await rest_main_points(client, tom_key) == "8500.000"
        await pair.resume_replay()
        await pair.wait_until_replayed()
        assert await main_points(client, tom_key) == "9000.000"


async def test_a_lagging_replica_is_left_for_the_primary_until_it_catches_up(pair: Pair, tom_key: str) -> None:
    async with running_app(replicated(pair, max_replica_lag=1.0)) as client:
        await wait_for_replica(client, "healthy")
        await pair.pause_replay()
        await set_points(pair, "9000")
        assert await main_points(client, tom_key) == "8500.000"  # the replica, not yet past the limit

        lagging = await wait_for_replica(client, "lagging", within=5.0)
        assert lagging["lag_seconds"] > 1.0
        assert (await client.get("/readyz")).status_code == 200  # the primary serves: still ready
        assert await main_points(client, tom_key) == "9000.000"  # from the primary now
        assert await rest_main_points(client, tom_key) == "9000.000"

        await pair.resume_replay()
        caught_up = await wait_for_replica(client, "healthy", within=5.0)
        assert caught_up["lag_seconds"] <= 1.0
        # Back on the replica: with its replay paused again, a new write on the primary is not seen.
        await pair.pause_replay()
        await set_points(pair, "9500")
        assert await main_points(client, tom_key) == "9000.000"


async def test_readyz_reports_each_database_and_stays_ready_while_the_primary_serves(pair: Pair, tom_key: str) -> None:
    async with running_app(replicated(pair)) as client:
        healthy = await wait_for_replica(client, "healthy")
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "databases": [
                {"name": "primary", "state": "ready", "lag_seconds": None},
                {"name": "replica-1", "state": "healthy", "lag_seconds": healthy["lag_seconds"]},
            ],
        }
        assert healthy["lag_seconds"] < 1.0
        assert pair.replica.url not in ready.text and "127.0.0.1" not in ready.text

        await asyncio.to_thread(pair.replica.stop, "fast")
        gone = await wait_for_replica(client, "unreachable")
        assert gone["lag_seconds"] is None
        assert (await client.get("/readyz")).status_code == 200
        assert await main_points(client, tom_key) == "8500.000"  # the primary answers

        await asyncio.to_thread(pair.replica.start)
        await wait_for_replica(client, "healthy")


async def test_a_new_or_revoked_api_key_takes_effect_at_once_while_replication_is_paused(
    pair: Pair, tom_key: str
) -> None:
    """API keys are read from the primary: a replica that lags (here: not replaying at all) cannot keep a
    revoked key working beyond the key cache's time, nor hide a new key."""
    ttl = 1.0
    async with running_app(replicated(pair, api_key_cache_ttl=ttl, max_replica_lag=60.0)) as client:
        await wait_for_replica(client, "healthy")
        await pair.pause_replay()
        new_key = await _new_key(pair)
        assert await main_points(client, new_key) == "8500.000"

        assert await main_points(client, tom_key) == "8500.000"
        await pair.primary.execute("UPDATE api_keys SET revoked_at = now() WHERE org_id = $1", ORG)
        revoked = time.monotonic()
        while (response := await lookup(client, tom_key, BY_ID)).status_code == 200:
            assert time.monotonic() - revoked < ttl + 0.5, "the revoked key still works"
            await asyncio.sleep(0.05)
        assert code_of(response) == "UNAUTHENTICATED"
        assert (await replica_state(client))["state"] == "healthy"  # the lookups' replica is still in use


async def _new_key(pair: Pair) -> str:
    import asyncpg

    from tests.factories import Seed

    connection = await asyncpg.connect(pair.primary.url)
    try:
        return await Seed(connection).api_key(ORG, name="made while replay is paused")
    finally:
        await connection.close()


async def test_an_idle_primary_does_not_make_an_up_to_date_replica_lag(pair: Pair, tom_key: str) -> None:
    """Lag is measured against the primary's WAL position, not the age of the last replayed transaction:
    nothing written for longer than the limit leaves the replica at lag 0 and in use."""
    async with running_app(replicated(pair, max_replica_lag=0.5)) as client:
        await wait_for_replica(client, "healthy")
        await asyncio.sleep(2.0)
        idle = await replica_state(client)
        assert (idle["state"], idle["lag_seconds"]) == ("healthy", 0.0)
        assert float(await pair.replica.fetchval(_REPLAY_AGE)) > 0.5  # the naive measure would have taken it out


_REPLAY_AGE = "SELECT extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())"
