"""/healthz and /readyz: cheap, cached, honest about the database."""

from __future__ import annotations

import asyncio
import math
import time

import asyncpg
from prometheus_client import REGISTRY

from gateway.config import Settings
from gateway.db.migrations import available_migrations
from gateway.edge.health import READINESS_TTL
from tests.operations import code_of, lookup, seed_tom
from tests.operations.conftest import running_app
from tests.operations.test_database_faults import PROMPTLY, wait_until_ready
from tests.relay import Relay


async def test_healthz_says_the_process_is_up_and_readyz_that_it_can_serve(database_url):
    async with running_app(Settings(database_url=database_url)) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert health.headers["cache-control"] == ready.headers["cache-control"] == "no-store"


def _queries() -> float:
    return REGISTRY.get_sample_value("loyalty_gateway_db_query_duration_seconds_count") or 0.0


async def test_readyz_asks_the_database_at_most_once_a_second_however_many_probes(database_url):
    # /metrics on the app's port: a scrape publishes what the worker has counted so far.
    async with running_app(Settings(database_url=database_url, metrics="on")) as client:
        await client.get("/metrics")
        before = _queries()
        started = time.monotonic()
        for _ in range(5):
            answers = await asyncio.gather(*(client.get("/readyz") for _ in range(20)))
            assert {answer.status_code for answer in answers} == {200}
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        await client.get("/metrics")
        queries = _queries() - before
    assert 1 <= queries <= math.ceil(elapsed / READINESS_TTL) + 1, (queries, elapsed)


async def test_readyz_is_503_when_the_schema_is_behind_this_gateway(database_url):
    async with running_app(Settings(database_url=database_url)) as client:
        assert (await client.get("/readyz")).status_code == 200
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute("DELETE FROM schema_migrations")
        finally:
            await connection.close()
        await asyncio.sleep(READINESS_TTL * 1.2)
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "reason": f"the database schema is at version 0; this gateway needs {available_migrations()[-1].version}",
    }


async def test_the_gateway_starts_while_the_database_hangs_and_is_ready_once_it_answers(database_url):
    """The database's address accepts connections but nothing answers: start-up, probes and lookups stay bounded."""
    key = await seed_tom(database_url)
    relay = Relay(database_url)
    await relay.start()
    await relay.hang()
    try:
        settings = Settings(database_url=relay.url, acquire_timeout=1.0)
        started = time.monotonic()
        async with running_app(settings) as client:
            assert time.monotonic() - started < PROMPTLY, "start-up waited for the database"
            sent = time.monotonic()
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["reason"], ready.text
            response = await lookup(client, key)
            assert (response.status_code, code_of(response)) == (503, "SERVICE_UNAVAILABLE")
            assert time.monotonic() - sent < PROMPTLY

            await relay.cut()
            await relay.start()
            await wait_until_ready(client)
            assert (await lookup(client, key)).status_code == 200
    finally:
        await relay.close()
