"""Database faults, on a real PostgreSQL that the tests stop, start and kill connections of.

Each test runs the real app in process against a server of the tests' own
(tests/operations/conftest.py) and states what a client sees.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from gateway.config import Settings
from tests.operations import ORG, SteadyLoad, between, code_of, errors, lookup, seed_tom
from tests.operations.conftest import running_app

ACQUIRE_TIMEOUT = 1.0
# "Fails fast": bounded by the acquire timeout, with room for a loaded test machine.
PROMPTLY = ACQUIRE_TIMEOUT + 2.0


def settings_for(database_url: str, **changes: object) -> Settings:
    # No rate limit: clients retrying fast during an outage must see the outage, not a rate limit.
    defaults = Settings(
        database_url=database_url, acquire_timeout=ACQUIRE_TIMEOUT, pool_max_size=4, rate_limit=0.0, metrics="on"
    )
    return defaults.with_overrides(**changes)


async def wait_until_ready(client: httpx.AsyncClient, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while True:
        response = await client.get("/readyz")
        if response.status_code == 200:
            return
        assert time.monotonic() < deadline, f"not ready after {within} s: {response.text}"
        await asyncio.sleep(0.1)


def assert_fails_fast(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert code_of(response) == "SERVICE_UNAVAILABLE"
    assert elapsed < PROMPTLY, elapsed


async def test_the_gateway_starts_while_the_database_is_down_and_recovers_by_itself(own_server, blank_own_database):
    """Down at start-up: the gateway serves anyway (503s, fast), migrates once the database is back, then answers."""
    await asyncio.to_thread(own_server.stop)
    started = time.monotonic()
    async with running_app(settings_for(blank_own_database)) as client:
        assert time.monotonic() - started < PROMPTLY, "start-up waited for the database"
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable" and ready.json()["reason"]

        sent = time.monotonic()
        response = await lookup(client, "lgw_0123456789ab_" + "x" * 43)
        assert_fails_fast(response, time.monotonic() - sent)

        await asyncio.to_thread(own_server.start)
        # No restart: the background migration finds the database, and the gateway is ready.
        await wait_until_ready(client)
        key = await seed_tom(blank_own_database)
        response = await lookup(client, key)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["pointsBalance"]["mainPoints"] == "8500.000"


async def test_a_database_restart_under_load_fails_only_the_requests_made_while_it_is_down(own_server, own_database):
    key = await seed_tom(own_database)
    async with running_app(settings_for(own_database)) as client:
        load = SteadyLoad(client, key)
        load.start()
        await asyncio.sleep(1.5)
        stopping = time.monotonic()
        await asyncio.to_thread(own_server.stop)
        stopped = time.monotonic()
        await asyncio.sleep(1.5)
        starting = time.monotonic()
        await asyncio.to_thread(own_server.start)
        back = time.monotonic()
        await asyncio.sleep(2.0)
        answers = await load.stop()
        ready = await client.get("/readyz")

    before = [answer for answer in answers if answer.finished < stopping]
    down = between(answers, stopped, starting)
    after = [answer for answer in answers if answer.started >= back]
    assert before and down and after, (len(before), len(down), len(after))
    assert not errors(before)
    # While it is down every request fails, fast and with the documented code; nothing else ever fails.
    assert len(errors(down)) == len(down)
    assert all(answer.finished - answer.started < PROMPTLY for answer in down)
    assert {(answer.status, answer.code) for answer in errors(answers)} == {(503, "SERVICE_UNAVAILABLE")}
    # Once it is back, not one error: no stale connection is handed out, no restart needed.
    assert not errors(after), errors(after)[:5]
    assert ready.status_code == 200


async def test_a_connection_killed_server_side_costs_at_most_the_requests_on_it(own_database):
    key = await seed_tom(own_database)
    async with running_app(settings_for(own_database)) as client:
        load = SteadyLoad(client, key, clients=4)
        load.start()
        await asyncio.sleep(1.0)
        admin = await asyncpg.connect(own_database)
        try:
            killed = await admin.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = 'loyalty-gateway'"
            )
        finally:
            await admin.close()
        killed_at = time.monotonic()
        await asyncio.sleep(1.5)
        answers = await load.stop()

    assert killed >= 1
    failed = errors(answers)
    # At most the request in flight on each killed connection (or the next one to use it).
    assert len(failed) <= killed, failed
    assert all((answer.status, answer.code) == (503, "SERVICE_UNAVAILABLE") for answer in failed)
    after = [answer for answer in answers if answer.started > killed_at]
    assert after and len(errors(after)) <= len(failed)


@pytest.mark.parametrize("waiting", [12])
async def test_an_exhausted_pool_makes_requests_wait_up_to_the_acquire_timeout_then_503(own_database, waiting):
    """Every connection is stuck behind a lock: the others wait the acquire timeout, then give up; none piles up."""
    key = await seed_tom(own_database)
    # The org's share of the worker as large as the pool: its requests beyond it wait their turn in its queue.
    settings = settings_for(
        own_database, pool_max_size=2, org_concurrency=2, statement_timeout=3.0, api_key_cache_ttl=600.0
    )
    shed = {"org": str(ORG), "where": "fair_share"}
    shed_before = REGISTRY.get_sample_value("loyalty_gateway_shed_requests_total", shed) or 0
    async with running_app(settings) as client:
        assert (await lookup(client, key)).status_code == 200  # the key is now trusted: lookups need one connection
        locker = await asyncpg.connect(own_database)
        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE balances IN ACCESS EXCLUSIVE MODE")
        try:

            async def timed() -> tuple[httpx.Response, float]:
                sent = time.monotonic()
                response = await lookup(client, key)
                return response, time.monotonic() - sent

            requests = [asyncio.create_task(timed()) for _ in range(waiting)]
            await asyncio.sleep(ACQUIRE_TIMEOUT / 2)
            during = (await client.get("/metrics")).text
            answers = await asyncio.gather(*requests)
            after = (await client.get("/metrics")).text
        finally:
            await lock.rollback()
            await locker.close()
        recovered = await lookup(client, key)

    assert f"loyalty_gateway_db_pool_in_use {settings.pool_max_size}.0" in during
    # One org: beyond its share (here the pool's size) its requests wait for their turn, not in the pool's queue.
    assert f"loyalty_gateway_requests_waiting {waiting - settings.pool_max_size}.0" in during
    for response, elapsed in answers:
        assert response.status_code == 503, response.text
        assert code_of(response) == "SERVICE_UNAVAILABLE"
        # Nobody fails before waiting for a connection, nor waits unboundedly.
        assert elapsed >= ACQUIRE_TIMEOUT * 0.9
        assert elapsed < settings.statement_timeout + PROMPTLY
    gave_up_waiting = [elapsed for _, elapsed in answers if elapsed < ACQUIRE_TIMEOUT + 1.5]
    assert len(gave_up_waiting) >= waiting - settings.pool_max_size
    assert "loyalty_gateway_db_pool_waiting 0.0" in after
    assert "loyalty_gateway_requests_waiting 0.0" in after
    # Those that waited out their org's turn were counted, for their org.
    shed_after = REGISTRY.get_sample_value("loyalty_gateway_shed_requests_total", shed) or 0
    assert shed_after - shed_before == len(gave_up_waiting)
    assert recovered.status_code == 200
