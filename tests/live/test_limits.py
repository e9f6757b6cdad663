"""Live subscriptions' rules, spoken in graphql-transport-ws and graphql-sse to the app under real uvicorn:
authentication and its lapse, the limits and their codes, only subscriptions, and the latest balance only."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets

from gateway.access.end_user_tokens import mint
from gateway.app import create_app
from gateway.config import Settings
from tests.factories import Seed
from tests.serving import serve

ORG, PROGRAM, TOM = 400001, 41, 81
SECRET = b"s" * 32
SUBSCRIPTION = (
    'subscription { pointsBalance(identifiers: [{type: EXTERNAL_ID, value: "ext-81"}], source: INSTORE) '
    "{ mainPoints } }"
)
WITHIN = 10.0


class Socket:
    """A graphql-transport-ws connection, spoken by hand to see the protocol's codes."""

    def __init__(self, websocket: Any) -> None:
        self.websocket = websocket

    @classmethod
    async def open(cls, base_url: str, credential: str | None) -> Socket:
        url = base_url.replace("http", "ws") + "/graphql"
        websocket = await websockets.connect(url, subprotocols=["graphql-transport-ws"], open_timeout=WITHIN)
        socket = cls(websocket)
        payload = {"authorization": credential} if credential is not None else {}
        await socket.send({"type": "connection_init", "payload": payload})
        return socket

    async def send(self, message: dict[str, Any]) -> None:
        await self.websocket.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.websocket.recv(), WITHIN))
        return message

    async def subscribe(self, operation_id: str, query: str = SUBSCRIPTION) -> None:
        await self.send({"id": operation_id, "type": "subscribe", "payload": {"query": query}})

    async def main_points(self) -> Decimal:
        message = await self.receive()
        assert message["type"] == "next", message
        return Decimal(message["payload"]["data"]["pointsBalance"]["mainPoints"])


@pytest.fixture
async def world(connection: asyncpg.Connection) -> str:
    seed = Seed(connection)
    await seed.org(ORG)
    await seed.program(ORG, PROGRAM, default=True)
    await seed.customer(ORG, TOM, ("INSTORE", None, "EXTERNAL_ID", "ext-81"))
    await seed.balance(ORG, TOM, PROGRAM, "100")
    return await seed.api_key(ORG)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    return Settings(
        database_url=database_url,
        jwt_secret_file=str(secret),
        jwt_leeway=0,
        max_subscriptions_per_connection=2,
        max_subscriptions_per_key=3,
        max_live_connections=3,
        live_message_interval=0.5,
    )


@pytest.fixture
def base_url(settings: Settings, world: str) -> AsyncIterator[str]:
    with serve(create_app(settings)) as url:
        yield url


async def test_connection_init_must_carry_a_valid_credential(base_url):
    for credential in (None, "Bearer lgw_000000000000_nope", "Basic x"):
        socket = await Socket.open(base_url, credential)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.receive()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403
        assert closed.value.rcvd.reason.startswith("UNAUTHENTICATED: ")


async def test_subscriptions_per_connection_and_per_key_are_limited_with_a_code(base_url, world):
    first = await Socket.open(base_url, f"Bearer {world}")
    assert (await first.receive())["type"] == "connection_ack"
    for operation_id in ("a", "b"):
        await first.subscribe(operation_id)
        assert await first.main_points() == Decimal("100.000")
    await first.subscribe("c")  # the connection's third
    refused = await first.receive()
    assert refused["id"] == "c" and refused["payload"]["errors"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
    assert (await first.receive()) == {"id": "c", "type": "complete"}

    second = await Socket.open(base_url, f"Bearer {world}")
    assert (await second.receive())["type"] == "connection_ack"
    await second.subscribe("d")  # the key's third
    assert await second.main_points() == Decimal("100.000")
    await second.subscribe("e")  # the key's fourth
    refused = await second.receive()
    assert refused["payload"]["errors"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
    assert (await second.receive()) == {"id": "e", "type": "complete"}
    # Ending one makes room again.
    await first.send({"id": "a", "type": "complete"})
    await asyncio.sleep(0.2)
    await second.subscribe("f")
    assert await second.main_points() == Decimal("100.000")


async def test_live_connections_are_limited_with_a_code(base_url, world):
    sockets = [await Socket.open(base_url, f"Bearer {world}") for _ in range(3)]
    for socket in sockets:
        assert (await socket.receive())["type"] == "connection_ack"
    extra = await Socket.open(base_url, f"Bearer {world}")
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await extra.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4503
    assert closed.value.rcvd.reason.startswith("TOO_MANY_CONNECTIONS")
    headers = {"authorization": f"Bearer {world}", "accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=base_url) as client:
        answer = await client.post("/graphql", json={"query": SUBSCRIPTION}, headers=headers)
    assert answer.status_code == 503
    assert answer.json()["errors"][0]["extensions"]["code"] == "TOO_MANY_CONNECTIONS"


async def test_only_subscriptions_are_served_live_and_plain_http_refuses_them(base_url, world):
    socket = await Socket.open(base_url, f"Bearer {world}")
    assert (await socket.receive())["type"] == "connection_ack"
    await socket.subscribe("q", SUBSCRIPTION.replace("subscription", "query", 1))
    refused = await socket.receive()
    assert refused["type"] == "error" and refused["payload"][0]["extensions"]["code"] == "BAD_REQUEST"
    await socket.subscribe("v", "subscription { nothing }")
    refused = await socket.receive()
    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    query = SUBSCRIPTION.replace("subscription", "query", 1)
    async with httpx.AsyncClient(base_url=base_url) as client:
        answer = await client.post(
            "/graphql", json={"query": SUBSCRIPTION}, headers={"authorization": f"Bearer {world}"}
        )
        assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        # A client that reads nothing but events is told in one, as graphql-sse has it.
        events_only = {"authorization": f"Bearer {world}", "accept": "text/event-stream"}
        answer = await client.post("/graphql", json={"query": query}, headers=events_only)
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert '"code":"BAD_REQUEST"' in answer.text and "event: complete" in answer.text
        # urql lists text/event-stream among the types it accepts for every request: a query is answered as usual.
        urql = {"authorization": f"Bearer {world}", "accept": "application/graphql-response+json, "
                "application/graphql+json, application/json, text/event-stream, multipart/mixed"}  # fmt: skip
        answer = await client.post("/graphql", json={"query": query}, headers=urql)
        assert answer.json() == {"data": {"pointsBalance": {"mainPoints": "100.000"}}}


async def test_an_end_user_tokens_subscription_ends_when_it_expires(base_url, world):
    token = mint(SECRET, org_id=ORG, customer_id=TOM, ttl_seconds=2)
    socket = await Socket.open(base_url, f"Bearer {token}")
    assert (await socket.receive())["type"] == "connection_ack"
    await socket.subscribe("mine")
    assert await socket.main_points() == Decimal("100.000")
    ended = await socket.receive()
    assert ended["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await socket.receive())["type"] == "complete"


async def test_a_slow_subscriber_gets_the_latest_balance_not_every_change(base_url, world, connection):
    socket = await Socket.open(base_url, f"Bearer {world}")
    assert (await socket.receive())["type"] == "connection_ack"
    await socket.subscribe("s")
    assert await socket.main_points() == Decimal("100.000")
    started = time.monotonic()
    for points in range(101, 121):  # 20 commits, well within one interval (0.5 s)
        await connection.execute("UPDATE balances SET main_points = $1 WHERE entity_id = $2", points, TOM)
    seen = [await socket.main_points()]
    while seen[-1] != Decimal("120.000"):
        seen.append(await socket.main_points())
    assert len(seen) <= 2, f"every change was sent: {seen}"
    assert time.monotonic() - started >= 0.4  # one message per interval


async def test_a_subscription_is_charged_to_the_callers_rate_limit(settings, world):
    limited = replace(settings, rate_limit=0.1, rate_limit_burst=1)
    with serve(create_app(limited)) as base_url:
        socket = await Socket.open(base_url, f"Bearer {world}")
        assert (await socket.receive())["type"] == "connection_ack"
        await socket.subscribe("first")
        assert await socket.main_points() == Decimal("100.000")
        await socket.subscribe("second")
        refused = await socket.receive()
        assert refused["payload"]["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
