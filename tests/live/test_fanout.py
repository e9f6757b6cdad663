"""Live subscriptions at scale, through real uvicorn: a burst of changes reaches every subscriber of one
socket, subscribers of one entity share its messages, compiled subscriptions send what graphql-core would, and a
client that vanishes mid-send is a quiet event."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import websockets

from gateway.app import create_app
from gateway.config import Settings
from gateway.domain.lookup import Balance, ProgramPoints
from gateway.domain.vocabulary import EntityType
from gateway.execution.documents import DEFAULT_RULES, DocumentCache
from gateway.live.outboxes import compiled
from gateway.live.transport import live_compiler
from gateway.schema import schema
from tests.factories import Seed
from tests.serving import serve

ORG, PROGRAM, OTHER_PROGRAM = 500001, 51, 52
CUSTOMERS = range(1001, 1101)  # 100: one WebSocket's worth at the default limit
WITHIN = 10.0


def subscription(customer: int, selection: str = "entityId mainPoints") -> str:
    return (
        f'subscription {{ pointsBalance(identifiers: [{{type: EXTERNAL_ID, value: "ext-{customer}"}}], '
        f"source: INSTORE) {{ {selection} }} }}"
    )


class Socket:
    def __init__(self, websocket: Any) -> None:
        self.websocket = websocket

    @classmethod
    async def open(cls, base_url: str, key: str) -> Socket:
        url = base_url.replace("http", "ws") + "/graphql"
        websocket = await websockets.connect(url, subprotocols=["graphql-transport-ws"], open_timeout=WITHIN)
        await websocket.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}}))
        socket = cls(websocket)
        assert (await socket.receive())["type"] == "connection_ack"
        return socket

    async def subscribe(self, operation_id: str, query: str) -> None:
        await self.websocket.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": {"query": query}}))

    async def receive(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.websocket.recv(), WITHIN))
        return message

    async def points(self, count: int) -> dict[str, Decimal]:
        """The main points of the next `count` messages, by operation id (the last of each)."""
        seen: dict[str, Decimal] = {}
        for _ in range(count):
            message = await self.receive()
            assert message["type"] == "next", message
            seen[message["id"]] = Decimal(message["payload"]["data"]["pointsBalance"]["mainPoints"])
        return seen


async def write(writer: asyncpg.Connection, customers: range) -> None:
    for customer in customers:
        await writer.execute("UPDATE balances SET main_points = 7 WHERE entity_id = $1", customer)


@pytest.fixture
async def key(connection: asyncpg.Connection) -> str:
    seed = Seed(connection)
    await seed.org(ORG)
    await seed.program(ORG, PROGRAM, default=True)
    for customer in CUSTOMERS:
        await seed.customer(ORG, customer, ("INSTORE", None, "EXTERNAL_ID", f"ext-{customer}"))
        await seed.balance(ORG, customer, PROGRAM, "100")
    return await seed.api_key(ORG)


@pytest.fixture
async def base_url(database_url: str, key: str, tmp_path: Path) -> AsyncIterator[str]:
    with serve(create_app(Settings(database_url=database_url, live_message_interval=0.05))) as url:
        yield url


async def test_a_burst_of_changes_reaches_every_subscriber_of_a_socket(base_url, key, connection, database_url):
    socket = await Socket.open(base_url, key)
    for customer in CUSTOMERS:
        await socket.subscribe(str(customer), subscription(customer))
    assert await socket.points(len(CUSTOMERS)) == {str(customer): Decimal("100.000") for customer in CUSTOMERS}
    # One statement changes them all (one announcement), then each customer on its own, at once.
    await connection.execute("UPDATE balances SET main_points = entity_id WHERE org_id = $1", ORG)
    assert await socket.points(len(CUSTOMERS)) == {str(customer): Decimal(customer) for customer in CUSTOMERS}
    # Then one statement per customer, from several connections at once: each its own announcement.
    writers = [await asyncpg.connect(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(write(writer, CUSTOMERS[number::4]) for number, writer in enumerate(writers)))
    finally:
        for writer in writers:
            await writer.close()
    assert await socket.points(len(CUSTOMERS)) == {str(customer): Decimal("7.000") for customer in CUSTOMERS}
    await socket.websocket.close()


async def test_subscribers_of_one_entity_each_get_its_changes_in_their_own_shape(base_url, key, connection):
    tom = CUSTOMERS[0]
    sockets = [await Socket.open(base_url, key) for _ in range(3)]
    shapes = ["mainPoints", "mainPoints entityId", "points: mainPoints mainPoints"]
    for number, socket in enumerate(sockets):
        for shape in shapes:
            await socket.subscribe(f"{number}-{shape}", subscription(tom, shape))
    for socket in sockets:
        first = [await socket.receive() for _ in shapes]
        assert {message["id"].split("-", 1)[1]: message["payload"]["data"]["pointsBalance"] for message in first} == {
            "mainPoints": {"mainPoints": "100.000"},
            "mainPoints entityId": {"mainPoints": "100.000", "entityId": str(tom)},
            "points: mainPoints mainPoints": {"points": "100.000", "mainPoints": "100.000"},
        }
    await connection.execute("UPDATE balances SET main_points = 5 WHERE entity_id = $1", tom)
    for socket in sockets:
        changed = [await socket.receive() for _ in shapes]
        assert {message["payload"]["data"]["pointsBalance"]["mainPoints"] for message in changed} == {"5.000"}
        assert len({message["id"] for message in changed}) == len(shapes)
        await socket.websocket.close()


async def test_a_client_that_vanishes_while_it_is_sent_messages_is_no_error(base_url, key, connection, caplog):
    caplog.set_level(logging.DEBUG)
    for round_ in range(5):
        socket = await Socket.open(base_url, key)
        for customer in CUSTOMERS:
            await socket.subscribe(str(customer), subscription(customer))
        await socket.points(len(CUSTOMERS))
        await connection.execute("UPDATE balances SET main_points = $2 WHERE org_id = $1", ORG, 200 + round_)
        socket.websocket.transport.abort()  # gone without a word, while 100 messages are on their way
        await asyncio.sleep(0.3)
    errors = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert errors == [], [record.getMessage() for record in errors]
    # Every subscription of the vanished clients was released: a new one starts and hears a change.
    socket = await Socket.open(base_url, key)
    await socket.subscribe("again", subscription(CUSTOMERS[0]))
    assert await socket.points(1) == {"again": Decimal("204.000")}


SELECTIONS = [
    "mainPoints",
    "__typename entityId entityType mainPoints promisedPoints totalPoints warnings",
    "total: totalPoints promisedPointsBreakup { delayedAccrualPoints externalTriggerBasedPoints }",
    "programs { programId programName isDefault mainPoints totalPoints __typename } ...on PointsBalance { mainPoints }",
    "...parts",
]


@pytest.mark.parametrize("selection", SELECTIONS)
async def test_a_compiled_subscription_sends_what_graphql_core_sends(selection):
    """The same balance, written by the compiled plan and by strawberry's execution of the document."""
    balance = Balance(
        81,
        EntityType.CUSTOMER,
        (
            ProgramPoints(41, "Acme", True, Decimal("100.500"), Decimal("1.250"), Decimal("0.000")),
            ProgramPoints(42, "Fuel", False, Decimal("0.000"), Decimal("0.000"), Decimal("3.000")),
        ),
        ("an identifier was ignored",),
    )
    query = subscription(81, selection)
    if "...parts" in selection:
        query += " fragment parts on PointsBalance { entityId programs { programId } }"
    documents = DocumentCache(schema._schema, rules=DEFAULT_RULES)
    found = compiled(live_compiler(schema), documents, query, None, None)
    assert found is not None and not isinstance(found, Exception)
    plan, _ = found

    class Live:
        documents = None

        async def balances(self, lookup: Any) -> AsyncIterator[Balance]:
            yield balance

    results = await schema.subscribe(query, context_value=Live())
    result = await anext(results)  # type: ignore[arg-type]
    assert result.errors is None
    assert json.loads(plan.render(balance)) == {"data": result.data}
