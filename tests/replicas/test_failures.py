"""Replicas and primaries that go away: a replica stopped under load costs clients nothing (its lookups are
tried once more elsewhere); after a promotion, the gateway pointed at the promoted server serves again."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx

from gateway.app import create_app
from gateway.config import Settings
from tests.factories import Seed
from tests.operations import ORG, SteadyLoad, code_of, errors, lookup
from tests.operations.conftest import running_app
from tests.replicas.cluster import Pair
from tests.replicas.test_read_replicas import main_points, replica_state, replicated, set_points, wait_for_replica
from tests.serving import serve


async def test_a_replica_stopped_under_load_costs_clients_no_error(pair: Pair, tom_key: str) -> None:
    """Concurrent lookups through a real server; the replica answering them is shut down at once (immediate:
    its connections cut mid-statement). Each lookup it loses is tried once more on the primary."""
    with serve(create_app(replicated(pair, pool_max_size=8, rate_limit=0.0))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await wait_for_replica(client, "healthy")
            # Proof that the load reads the replica: with its replay paused, a write on the primary is not seen.
            await pair.pause_replay()
            await set_points(pair, "9000")
            assert await main_points(client, tom_key) == "8500.000"

            load = SteadyLoad(client, tom_key, clients=8, pause=0.001)
            load.start()
            await asyncio.sleep(1.0)
            stopped_at = time.monotonic()
            await asyncio.to_thread(pair.replica.stop, "immediate")
            await asyncio.sleep(1.5)
            answers = await load.stop()

            assert await main_points(client, tom_key) == "9000.000"  # the primary answers now
            assert (await replica_state(client))["state"] == "unreachable"
    before = [answer for answer in answers if answer.finished < stopped_at]
    after = [answer for answer in answers if answer.started > stopped_at]
    assert len(before) > 50 and len(after) > 50, (len(before), len(after))
    assert errors(answers) == []


async def test_after_a_promotion_the_gateway_pointed_at_the_promoted_server_recovers(pair: Pair, tom_key: str) -> None:
    async with running_app(replicated(pair, acquire_timeout=1.0)) as client:
        await wait_for_replica(client, "healthy")
        assert await main_points(client, tom_key) == "8500.000"

        await asyncio.to_thread(pair.primary.stop, "fast")
        await pair.replica.execute("SELECT pg_promote(wait => true)")
        # The running gateway sees its replica is no replica any more, and its primary gone.
        await wait_for_replica(client, "promoted")
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["databases"][0] == {"name": "primary", "state": "unavailable", "lag_seconds": None}

    # Restarted with the promoted server as its database (DATABASE_URL), and no replica.
    async with running_app(Settings(database_url=pair.replica.url)) as client:
        assert (await client.get("/readyz")).status_code == 200
        assert await main_points(client, tom_key) == "8500.000"
        # It takes writes: a key created now works, and the balance changed there is what lookups read.
        connection = await asyncpg.connect(pair.replica.url)
        try:
            new_key = await Seed(connection).api_key(ORG, name="after the promotion")
            await connection.execute("UPDATE balances SET main_points = 9100 WHERE org_id = $1", ORG)
        finally:
            await connection.close()
        response = await lookup(client, new_key)
        assert (response.status_code, code_of(response)) == (200, "OK")
        assert response.json()["data"]["pointsBalance"]["mainPoints"] == "9100.000"
