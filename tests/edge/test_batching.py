"""Batched requests (a JSON array of operations, Apollo's BatchHttpLink): off unless --max-batch-size is set."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from gateway.config import Settings
from gateway.db.sql import FETCH_BALANCES, FETCH_CUSTOMER_BALANCE

ORG = 100737
TOM, BECKY = 565039505, 565039512


LOOKUP = "query L($id: String!) { pointsBalance(identifiers: [{type: ID, value: $id}], source: JD) { totalPoints } }"


def lookup(customer: int) -> dict[str, Any]:
    return {"query": LOOKUP, "variables": {"id": str(customer)}}


@pytest.fixture
async def key(gateway) -> str:
    seed = gateway.seed
    await seed.org(ORG)
    await seed.program(ORG, 973, default=True)
    for customer, points in ((TOM, "8500"), (BECKY, "1200")):
        await seed.customer(ORG, customer, ("INSTORE", None, "EMAIL", f"{customer}@example.com"))
        await seed.balance(ORG, customer, 973, points)
    return await seed.api_key(ORG)


async def post(gateway, key: str, body: Any) -> Any:
    return await gateway.client.post("/graphql", json=body, headers={"authorization": f"Bearer {key}"})


async def test_batches_are_refused_by_default(gateway, key) -> None:
    response = await post(gateway, key, [lookup(TOM)])
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


class TestOn:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, max_batch_size=3, rate_limit=1, rate_limit_burst=5)

    async def test_a_batch_is_answered_in_order_each_operation_on_its_own(self, gateway, key) -> None:
        batch = [lookup(TOM), {"query": "{ nope }"}, lookup(BECKY)]
        response = await post(gateway, key, batch)
        assert response.status_code == 200
        first, second, third = response.json()
        assert first == {"data": {"pointsBalance": {"totalPoints": "8500.000"}}}
        assert second["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and "data" not in second
        assert third == {"data": {"pointsBalance": {"totalPoints": "1200.000"}}}

    async def test_too_large_or_empty_batches_are_bad_requests(self, gateway, key) -> None:
        for batch in ([lookup(TOM)] * 4, [], [lookup(TOM), 5]):
            response = await post(gateway, key, batch)
            assert response.status_code == 400, batch
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"

    async def test_each_operation_counts_against_the_rate_limit(self, gateway, key) -> None:
        assert (await post(gateway, key, [lookup(TOM)] * 3)).status_code == 200
        refused = await post(gateway, key, [lookup(TOM)] * 3)  # 3 more than the 2 left of the burst
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"

    async def test_the_lookups_of_a_batch_share_one_statement(self, gateway, key, database_url) -> None:
        watcher = await asyncpg.connect(database_url)
        locker = gateway.seed.connection
        try:
            async with locker.transaction():
                await locker.execute("LOCK TABLE balances IN ACCESS EXCLUSIVE MODE")
                request = asyncio.create_task(post(gateway, key, [lookup(TOM), lookup(BECKY)]))
                waiting = await _statements_waiting(watcher, request)
            response = await request
        finally:
            await watcher.close()
        assert len(waiting) == 1, waiting
        assert FETCH_BALANCES.startswith(waiting[0]) and not FETCH_CUSTOMER_BALANCE.startswith(waiting[0])
        assert [answer["data"]["pointsBalance"]["totalPoints"] for answer in response.json()] == [
            "8500.000",
            "1200.000",
        ]


async def _statements_waiting(watcher: asyncpg.Connection, request: asyncio.Task[Any]) -> list[str]:
    statement = """
        SELECT query FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'loyalty-gateway' AND wait_event_type = 'Lock'
    """
    for _ in range(200):
        rows = await watcher.fetch(statement)
        if rows:
            await asyncio.sleep(0.2)  # time for any second statement to queue up too
            return [row["query"] for row in await watcher.fetch(statement)]
        assert not request.done(), "the request finished without waiting for the lock"
        await asyncio.sleep(0.05)
    raise AssertionError("no statement waited for the lock")
