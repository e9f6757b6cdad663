"""fetch_balances leases its connection by plain calls (Database.lend, wait, give_back) rather than `async with
database.connection()`: the same accounting, hand-over and failures as a Lease."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from functools import partial

import asyncpg
import pytest

from gateway.db.balances import fetch_balances
from gateway.db.database import Database
from gateway.db.pool import ConnectionPool
from gateway.domain.lookup import Lookup
from gateway.domain.vocabulary import IdentifierType
from gateway.errors import ServiceUnavailable
from tests.factories import FailingConnection, Seed, customer_lookup

ORG, PROGRAM, CUSTOMER = 7001, 71, 501


def lookup() -> Lookup:
    return customer_lookup(IdentifierType.ID, str(CUSTOMER))


@pytest.fixture
async def seeded(connection: asyncpg.Connection) -> None:
    seed = Seed(connection)
    await seed.org(ORG)
    await seed.program(ORG, PROGRAM, default=True)
    await seed.customer(ORG, CUSTOMER)
    await seed.balance(ORG, CUSTOMER, PROGRAM, "12.5")


def database_for(url: str, size: int, held: list[float]) -> Database:
    pool = ConnectionPool(partial(asyncpg.connect, url, connection_class=FailingConnection), size)
    return Database(pool, 5, on_query=held.append)


async def test_each_lookup_reports_its_hold_and_returns_its_connection_waiting_or_not(database_url, seeded):
    held: list[float] = []
    database = database_for(database_url, 1, held)
    # Batches of two lookups (single lookups that wait share a statement: tests/db/test_lookup_groups.py).
    answers = await asyncio.gather(*(fetch_balances(database, ORG, [lookup(), lookup()]) for _ in range(5)))
    for batch in answers:
        for matches in batch:
            assert matches.entity_id == CUSTOMER
            assert [program.main for program in matches.programs] == [Decimal("12.5")]
    # Four waited for the one connection, each handed it in turn.
    assert len(held) == 5 and all(seconds > 0 for seconds in held)
    assert (database.pool.size, database.pool.in_use, database.waiting) == (1, 0, 0)
    assert database.pool.hold_seconds > 0
    await database.close(5)


async def test_a_lost_connection_is_dropped_and_service_unavailable(database_url, seeded):
    held: list[float] = []
    database = database_for(database_url, 1, held)
    connection = await database.pool.acquire(5)
    database.pool.release(connection)
    connection.failure = asyncpg.ConnectionDoesNotExistError("gone")
    with pytest.raises(ServiceUnavailable) as refused:
        await fetch_balances(database, ORG, [lookup()])
    assert isinstance(refused.value.__cause__, asyncpg.ConnectionDoesNotExistError)
    assert connection.is_closed() and database.pool.size == 0 and len(held) == 1
    (matches,) = await fetch_balances(database, ORG, [lookup()])  # a new connection
    assert matches.entity_id == CUSTOMER
    await database.close(5)


async def test_a_cancelled_statement_is_service_unavailable_and_its_connection_kept(database_url, seeded):
    database = database_for(database_url, 1, [])
    connection = await database.pool.acquire(5)
    database.pool.release(connection)
    connection.failure = asyncpg.QueryCanceledError("canceling statement due to statement timeout")
    with pytest.raises(ServiceUnavailable):
        await fetch_balances(database, ORG, [lookup()])
    assert not connection.is_closed() and (database.pool.size, database.pool.in_use) == (1, 0)
    # Any other error is the caller's to see, as it is; the connection stays too.
    connection.failure = ValueError("not the database's")
    with pytest.raises(ValueError):
        await fetch_balances(database, ORG, [lookup()])
    assert (database.pool.size, database.pool.in_use) == (1, 0)
    await database.close(5)


async def test_a_lookup_cancelled_while_it_waits_gives_its_turn_up(database_url, seeded):
    database = database_for(database_url, 1, [])
    lent = await database.pool.acquire(5)
    waiting = asyncio.create_task(fetch_balances(database, ORG, [lookup()]))
    await asyncio.sleep(0.05)
    assert database.waiting == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert database.waiting == 0
    database.pool.release(lent)
    (matches,) = await fetch_balances(database, ORG, [lookup()])
    assert matches.entity_id == CUSTOMER and database.pool.in_use == 0
    await database.close(5)


async def test_no_lookup_before_the_database_is_ready(database_url):
    database = Database(ConnectionPool(partial(asyncpg.connect, database_url), 1), 5, ready=False)
    with pytest.raises(ServiceUnavailable):
        await fetch_balances(database, ORG, [lookup()])
    assert database.pool.size == 0
    await database.close(5)
