"""Live subscriptions at scale, through real uvicorn: a burst of changes reaches every subscriber of one
socket, subscribers of one entity share its messages, compiled subscriptions send what graphql-core would, and a
client that vanishes mid-send is a quiet event."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
import websockets
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.http.exceptions import WebSocketDisconnected
from uvicorn.protocols.utils import ClientDisconnected

from gateway.app import create_app
from gateway.config import Settings
from gateway.domain.lookup import Balance, ProgramPoints, balance_of
from gateway.domain.vocabulary import EntityType
from gateway.errors import BadRequest
from gateway.execution.documents import DEFAULT_RULES, DocumentCache
from gateway.live.outboxes import SocketOutbox, compiled
from gateway.live.transport import _TransportWSHandler, live_compiler
from gateway.schema import schema
from tests.factories import Seed
from tests.serving import serve

ORG, PROGRAM = 500001, 51
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
async def base_url(database_url: str, key: str) -> AsyncIterator[str]:
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
    for number, each in enumerate(sockets):
        for shape in shapes:
            await each.subscribe(f"{number}-{shape}", subscription(tom, shape))
    for each in sockets:
        first = [await each.receive() for _ in shapes]
        assert {message["id"].split("-", 1)[1]: message["payload"]["data"]["pointsBalance"] for message in first} == {
            "mainPoints": {"mainPoints": "100.000"},
            "mainPoints entityId": {"mainPoints": "100.000", "entityId": str(tom)},
            "points: mainPoints mainPoints": {"points": "100.000", "mainPoints": "100.000"},
        }
    await connection.execute("UPDATE balances SET main_points = 5 WHERE entity_id = $1", tom)
    for each in sockets:
        changed = [await each.receive() for _ in shapes]
        assert {message["payload"]["data"]["pointsBalance"]["mainPoints"] for message in changed} == {"5.000"}
        assert len({message["id"] for message in changed}) == len(shapes)
        await each.websocket.close()


async def test_a_client_that_vanishes_while_it_is_sent_messages_is_no_error(base_url, key, connection, caplog):
    caplog.set_level(logging.DEBUG)
    # A client that stops reading, behind a small receive buffer: the server's sends wait for room...
    port = int(base_url.rsplit(":", 1)[1])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    websocket = await websockets.connect(
        base_url.replace("http", "ws") + "/graphql", sock=sock, subprotocols=["graphql-transport-ws"], max_queue=1
    )
    await websocket.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}}))
    reader = Socket(websocket)
    assert (await reader.receive())["type"] == "connection_ack"
    for customer in CUSTOMERS:
        await reader.subscribe(str(customer), subscription(customer))
    await reader.points(len(CUSTOMERS))
    for points in range(60):
        await connection.execute("UPDATE balances SET main_points = $2 WHERE org_id = $1", ORG, 1000 + points)
        await asyncio.sleep(0.02)
    # ... when it vanishes without a word.
    websocket.transport.abort()
    await asyncio.sleep(0.5)
    errors = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert errors == [], [record.getMessage() for record in errors]
    # Its subscriptions were released: a new one starts and hears a change.
    again = await Socket.open(base_url, key)
    await again.subscribe("again", subscription(CUSTOMERS[0]))
    assert await again.points(1) == {"again": Decimal("1059.000")}


@pytest.mark.parametrize(
    "error",
    [WebSocketDisconnected(), WebSocketDisconnect(1006), ClientDisconnected(), RuntimeError("Cannot call send")],
)
async def test_a_send_to_a_client_that_left_is_a_debug_event_on_both_paths(error, caplog):
    """What sending raises once the client is gone: strawberry's operations (graphql-core's path) report it to
    the handler's handle_task_exception, compiled subscriptions to their socket's sender."""
    caplog.set_level(logging.DEBUG)
    handler = _TransportWSHandler.__new__(_TransportWSHandler)
    handler.websocket = SimpleNamespace(ws=SimpleNamespace(application_state=WebSocketState.DISCONNECTED))
    await handler.handle_task_exception(error)

    async def send_text(text: str) -> None:
        raise WebSocketDisconnect(1006) if isinstance(error, RuntimeError) else error

    outbox = SocketOutbox(send_text)
    outbox.refuse("1", BadRequest("refused"))
    await asyncio.sleep(0.05)  # the socket's sender runs, and stops
    await outbox.close()
    assert [record.levelno for record in caplog.records] == [logging.DEBUG, logging.DEBUG]
    # Anything else is still a fault.
    await handler.handle_task_exception(ValueError("a bug"))
    assert caplog.records[-1].levelno == logging.ERROR


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
    balance = balance_of(
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
