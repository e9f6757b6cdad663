"""Live balances through a real server and the protocols' own clients (npm graphql-ws and graphql-sse): every
write path reaches every subscriber; a database restart is followed by a fresh balance; a revoked key's
subscriptions end."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.importer import import_file
from tests.factories import Seed
from tests.importer import balance, write_jsonl
from tests.importer.feeds import Feed
from tests.operations.test_shutdown import Serve
from tests.serving import serving

NODE_CLIENTS = Path(__file__).resolve().parents[1] / "clients" / "node"
ORG, PROGRAM, TOM, ANNA = 300001, 31, 71, 72
SUBSCRIPTION = """
subscription Live($value: String!) {
  pointsBalance(identifiers: [{type: EXTERNAL_ID, value: $value}], source: INSTORE) { entityId mainPoints }
}
"""
# A message must arrive within this of the commit it reports (it takes milliseconds; the machine is shared).
WITHIN = 10.0


class Subscriber:
    """`node live.mjs`: one subscription through a stock client, its events read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, transport: str, url: str, key: str, customer: int) -> Subscriber:
        payload = json.dumps({"query": SUBSCRIPTION, "variables": {"value": f"ext-{customer}"}})
        process = await asyncio.create_subprocess_exec(
            "node", "live.mjs", transport, url, key, payload, cwd=NODE_CLIENTS, stdout=subprocess.PIPE
        )
        return cls(process)

    async def event(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), WITHIN)
        assert line, "the client ended without a word"
        event: dict[str, Any] = json.loads(line)
        return event

    async def main_points(self) -> Decimal:
        event = await self.event()
        assert "next" in event, event
        return Decimal(event["next"]["data"]["pointsBalance"]["mainPoints"])

    def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


@pytest.fixture
async def world(own_database: str) -> AsyncIterator[tuple[str, str, asyncpg.Connection]]:
    connection = await asyncpg.connect(own_database)
    seed = Seed(connection)
    await seed.org(ORG)
    await seed.program(ORG, PROGRAM, default=True)
    for customer in (TOM, ANNA):
        await seed.customer(ORG, customer, ("INSTORE", None, "EXTERNAL_ID", f"ext-{customer}"))
        await seed.balance(ORG, customer, PROGRAM, "100")
    key = await seed.api_key(ORG)
    try:
        with serving(own_database) as port:
            yield f"http://127.0.0.1:{port}/graphql", key, connection
    finally:
        await connection.close()


async def both(transports: list[Subscriber]) -> list[Decimal]:
    return list(await asyncio.gather(*(subscriber.main_points() for subscriber in transports)))


async def test_every_write_path_reaches_subscribers_of_both_transports(world, own_database, tmp_path):
    url, key, connection = world
    subscribers = [await Subscriber.start(transport, url, key, TOM) for transport in ("ws", "sse")]
    try:
        assert await both(subscribers) == [Decimal("100.000")] * 2  # the balance now, first
        # The loyalty engine writing SQL itself.
        await connection.execute("UPDATE balances SET main_points = 101 WHERE entity_id = $1", TOM)
        assert await both(subscribers) == [Decimal("101.000")] * 2
        # An import.
        changed = write_jsonl(tmp_path / "delta.jsonl", [balance(ORG, TOM, PROGRAM, main="102")])
        await import_file(connection, changed, progress=False)
        assert await both(subscribers) == [Decimal("102.000")] * 2
        # The continuous path.
        feed = Feed(own_database)
        try:
            feed.write(balance(ORG, TOM, PROGRAM, main="103"))
            assert await both(subscribers) == [Decimal("103.000")] * 2
        finally:
            feed.close()
        # Another customer's change is not theirs to hear: the next message is Tom's.
        await connection.execute("UPDATE balances SET main_points = 1 WHERE entity_id = $1", ANNA)
        await connection.execute("UPDATE balances SET main_points = 104 WHERE entity_id = $1", TOM)
        assert await both(subscribers) == [Decimal("104.000")] * 2
    finally:
        for subscriber in subscribers:
            subscriber.stop()


async def test_after_a_database_restart_every_subscriber_gets_the_balance_again(world, own_server):
    url, key, connection = world
    subscribers = [await Subscriber.start(transport, url, key, TOM) for transport in ("ws", "sse")]
    try:
        assert await both(subscribers) == [Decimal("100.000")] * 2
        own_server.stop()
        await asyncio.sleep(0.5)
        own_server.start()
        # Nothing changed, but a change may have been missed while the gateway could not listen: sent again.
        assert await both(subscribers) == [Decimal("100.000")] * 2
        # And listened to again.
        fresh = await asyncpg.connect(own_server.database_url(connection._params.database))
        try:
            await fresh.execute("UPDATE balances SET main_points = 5 WHERE entity_id = $1", TOM)
        finally:
            await fresh.close()
        assert await both(subscribers) == [Decimal("5.000")] * 2
    finally:
        for subscriber in subscribers:
            subscriber.stop()


async def test_a_revoked_keys_subscriptions_end(world, own_database):
    url, key, connection = world
    subscribers = [await Subscriber.start(transport, url, key, TOM) for transport in ("ws", "sse")]
    try:
        assert await both(subscribers) == [Decimal("100.000")] * 2
        revoked_at = time.monotonic()
        prefix = key.split("_")[1]
        await connection.execute("UPDATE api_keys SET revoked_at = now() WHERE key_prefix = $1", prefix)
        for subscriber in subscribers:
            event = await subscriber.event()  # within the key cache's 5 s and a second
            assert event["next"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", event
            assert "complete" in await subscriber.event()
        assert time.monotonic() - revoked_at < 5 + 1 + 2  # the cache, the check's period, some slack
    finally:
        for subscriber in subscribers:
            subscriber.stop()


async def test_sse_streams_end_at_once_when_the_server_stops(world, own_database, tmp_path):
    """SIGTERM ends an SSE stream without `complete` (its client subscribes again, elsewhere) rather than
    holding it until the shutdown grace."""
    _, key, _ = world
    server = Serve(own_database, tmp_path / "serve.log", "--shutdown-grace", "20")
    try:
        await server.ready()
        headers = {"authorization": f"Bearer {key}", "accept": "text/event-stream"}
        payload = {"query": SUBSCRIPTION, "variables": {"value": f"ext-{TOM}"}}
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=WITHIN) as client,
            client.stream("POST", "/graphql", json=payload, headers=headers) as stream,
        ):
            lines = stream.aiter_lines()
            assert await anext(lines) == "event: next"
            assert '"mainPoints":"100.000"' in await anext(lines)
            stopping = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            rest = [line async for line in lines]
            assert time.monotonic() - stopping < 5  # not the 20 s grace
        assert "event: complete" not in rest
        assert await server.exit_status() == 0
    finally:
        server.kill()
