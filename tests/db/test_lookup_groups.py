"""Single lookups that find every connection lent wait together, by org and end user, and share one statement:
each still gets its own answer, its own failure, its own wait and database time, and may give up alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from decimal import Decimal
from functools import partial
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from gateway.db.balances import fetch_balances
from gateway.db.database import Database
from gateway.db.lookup_groups import MAX_LOOKUPS
from gateway.db.pool import ConnectionPool
from gateway.domain.lookup import Lookup, Matches
from gateway.domain.vocabulary import IdentifierType
from gateway.errors import ServiceUnavailable
from gateway.observability.requests import _CURRENT, RequestRecord
from tests.factories import FailingConnection, Seed, customer_lookup

ORG, OTHER_ORG, PROGRAM, OTHER_PROGRAM = 7101, 7102, 81, 82
# (customer, its card, its points) in ORG; OTHER_CUSTOMER's card is ORG's first card's number too.
CUSTOMERS = [(601, "card-1", "10.5"), (602, "card-2", "20.25"), (603, "card-3", "0.125")]
OTHER_CUSTOMER = 701


def by_card(card: str, program_id: int | None = None) -> Lookup:
    return customer_lookup(IdentifierType.CARD_NUMBER, card, program_id)


@pytest.fixture
async def seeded(connection: asyncpg.Connection) -> None:
    seed = Seed(connection)
    await seed.org(ORG)
    await seed.program(ORG, PROGRAM, default=True)
    await seed.program(ORG, PROGRAM + 10)
    for customer, card, points in CUSTOMERS:
        await seed.customer(ORG, customer, ("INSTORE", None, "CARD_NUMBER", card))
        await seed.balance(ORG, customer, PROGRAM, points)
    await seed.org(OTHER_ORG)
    await seed.program(OTHER_ORG, OTHER_PROGRAM, default=True)
    await seed.customer(OTHER_ORG, OTHER_CUSTOMER, ("INSTORE", None, "CARD_NUMBER", "card-1"))
    await seed.balance(OTHER_ORG, OTHER_CUSTOMER, OTHER_PROGRAM, "99")


@pytest.fixture
async def database(database_url: str, seeded: None) -> Any:
    FailingConnection.fetches = 0
    held: list[float] = []
    pool = ConnectionPool(partial(asyncpg.connect, database_url, connection_class=FailingConnection), 1)
    database = Database(pool, 5, on_query=held.append)
    database.held = held  # type: ignore[attr-defined]
    yield database
    await database.close(5)


async def waiting_behind(database: Database, *lookups: Awaitable[Any]) -> tuple[asyncpg.Connection, list[Any]]:
    """The pool's only connection taken, then the lookups started: they find it lent and wait."""
    lent = await database.pool.acquire(5)
    tasks = [asyncio.ensure_future(lookup) for lookup in lookups]
    await asyncio.sleep(0.05)
    return lent, tasks


async def alone(database: Database, org_id: int, lookup: Lookup, customer_id: int | None = None) -> Matches:
    """What the lookup gets with the connection idle (its own statement)."""
    assert database.pool.in_use == 0
    (matches,) = await fetch_balances(database, org_id, [lookup], customer_id=customer_id)
    return matches


async def test_lookups_waiting_together_share_a_statement_per_org_and_end_user(database):
    lookups = [
        (ORG, by_card("card-1"), None),
        (ORG, by_card("card-2"), None),
        (ORG, by_card("card-9"), None),
        (ORG, by_card("card-3", PROGRAM + 10), None),  # a program without a balance: zero points
        (OTHER_ORG, by_card("card-1"), None),  # the same card in another org: another customer
        (ORG, by_card("card-1"), 602),  # an end user who is not card-1's customer: nobody
        (ORG, by_card("card-2"), 602),
    ]
    lent, tasks = await waiting_behind(
        database, *(fetch_balances(database, org, [lookup], customer_id=user) for org, lookup, user in lookups)
    )
    assert database.waiting == len(lookups)
    assert FailingConnection.fetches == 0
    database.pool.release(lent)
    answers = [matches for (matches,) in await asyncio.gather(*tasks)]
    # One statement per group: ORG's API-key lookups, OTHER_ORG's, the end user's.
    assert FailingConnection.fetches == 3 and len(database.held) == 3
    assert database.waiting == 0 and database.pool.in_use == 0
    entities = [matches.entity_id for matches in answers]
    assert entities == [601, 602, None, 603, OTHER_CUSTOMER, None, 602]
    assert [program.main for program in answers[0].programs] == [Decimal("10.5")]
    assert [(program.program_id, program.main) for program in answers[3].programs] == [(PROGRAM + 10, Decimal(0))]
    assert [program.main for program in answers[4].programs] == [Decimal("99")]
    for (org, lookup, user), together in zip(lookups, answers, strict=True):
        assert together == await alone(database, org, lookup, user)


async def test_a_group_takes_a_connection_that_came_back_before_its_wait_began(database):
    lent = await database.pool.acquire(5)
    lookup = asyncio.ensure_future(fetch_balances(database, ORG, [by_card("card-1")]))
    # One step: the lookup finds no idle connection and opens its group, whose wait starts a step later.
    await asyncio.sleep(0)
    assert database.waiting == 1
    database.pool.release(lent)  # nobody in the pool's queue yet: the connection goes back to the idle ones
    # The group takes it, rather than waiting in the queue for a connection that nobody will hand it.
    (matches,) = await asyncio.wait_for(lookup, 1)
    assert matches.entity_id == 601 and database.pool.in_use == 0 and database.waiting == 0


async def test_a_group_takes_at_most_max_lookups(database):
    count = MAX_LOOKUPS + 1
    lent, tasks = await waiting_behind(
        database, *(fetch_balances(database, ORG, [by_card(f"card-{n % 3 + 1}")]) for n in range(count))
    )
    database.pool.release(lent)
    answers = await asyncio.gather(*tasks)
    assert FailingConnection.fetches == 2
    assert [matches.entity_id for (matches,) in answers] == [CUSTOMERS[n % 3][0] for n in range(count)]


async def test_a_lookup_that_gives_up_leaves_the_others_their_answers(database):
    lent, tasks = await waiting_behind(
        database, *(fetch_balances(database, ORG, [by_card(card)]) for card in ("card-1", "card-2", "card-3"))
    )
    tasks[1].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    assert database.waiting == 2
    database.pool.release(lent)
    first, third = await tasks[0], await tasks[2]
    assert (first[0].entity_id, third[0].entity_id) == (601, 603)
    assert FailingConnection.fetches == 1 and database.waiting == 0


async def test_a_group_whose_lookups_all_give_up_leaves_the_pools_queue(database):
    lent, tasks = await waiting_behind(
        database, *(fetch_balances(database, ORG, [by_card(card)]) for card in ("card-1", "card-2"))
    )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0)
    assert database.waiting == 0
    database.pool.release(lent)
    # Nobody waits for it: the connection goes back to the idle ones, no statement runs.
    assert database.pool.in_use == 0 and FailingConnection.fetches == 0
    assert (await alone(database, ORG, by_card("card-2"))).entity_id == 602


async def test_a_statement_that_fails_fails_every_lookup_of_its_group(database):
    lent, tasks = await waiting_behind(
        database, *(fetch_balances(database, ORG, [by_card(card)]) for card in ("card-1", "card-2", "card-3"))
    )
    lent.failure = asyncpg.ConnectionDoesNotExistError("gone")
    database.pool.release(lent)
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(outcome, ServiceUnavailable) for outcome in outcomes), outcomes
    assert lent.is_closed() and database.pool.size == 0 and database.waiting == 0
    # The next lookups get a new connection.
    assert (await alone(database, ORG, by_card("card-1"))).entity_id == 601


async def test_no_connection_in_time_is_service_unavailable_for_every_lookup_of_the_group(database_url, seeded):
    pool = ConnectionPool(partial(asyncpg.connect, database_url), 1)
    database = Database(pool, 0.2)
    lent, tasks = await waiting_behind(
        database, *(fetch_balances(database, ORG, [by_card(card)]) for card in ("card-1", "card-2"))
    )
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(outcome, ServiceUnavailable) for outcome in outcomes), outcomes
    assert database.waiting == 0
    database.pool.release(lent)
    await database.close(5)


async def test_each_request_notes_its_own_wait_and_the_statement_it_shared(database):
    records = [RequestRecord(0.0) for _ in range(3)]

    async def observed(record: RequestRecord, card: str) -> list[Matches]:
        _CURRENT.set(record)  # (each task has its own copy of the context)
        return await fetch_balances(database, ORG, [by_card(card)])

    lent = await database.pool.acquire(5)
    first = asyncio.ensure_future(observed(records[0], "card-1"))
    await asyncio.sleep(0.1)
    later = [asyncio.ensure_future(observed(record, "card-2")) for record in records[1:]]
    await asyncio.sleep(0.02)
    database.pool.release(lent)
    await asyncio.gather(first, *later)
    assert FailingConnection.fetches == 1
    (statement,) = database.held
    # The first waited about 0.1 s longer than the others; none was charged another's wait.
    assert records[0].wait_seconds >= 0.1
    assert all(0.02 <= record.wait_seconds < 0.1 for record in records[1:]), [r.wait_seconds for r in records]
    # Each spent the shared statement's time in the database.
    assert all(statement <= record.db_seconds < statement + 0.05 for record in records), [
        record.db_seconds for record in records
    ]


async def test_a_lookup_arriving_as_a_given_up_group_leaves_gets_a_group_of_its_own(database):
    lent = await database.pool.acquire(5)
    gone = asyncio.ensure_future(fetch_balances(database, ORG, [by_card("card-1")]))
    await asyncio.sleep(0.05)
    # The group's only lookup gives up, and the same org's next lookup runs right after it, before the group's
    # cancelled wait has ended.
    gone.cancel()
    later = asyncio.ensure_future(fetch_balances(database, ORG, [by_card("card-2")]))
    await asyncio.sleep(0.05)
    assert gone.cancelled()
    database.pool.release(lent)
    (matches,) = await asyncio.wait_for(later, 2)
    assert matches.entity_id == 602 and database.waiting == 0


async def test_a_group_that_has_waited_half_the_acquire_timeout_takes_no_one_else(database_url, seeded):
    FailingConnection.fetches = 0
    pool = ConnectionPool(partial(asyncpg.connect, database_url, connection_class=FailingConnection), 1)
    database = Database(pool, 0.6)
    lent = await database.pool.acquire(5)
    early = asyncio.ensure_future(fetch_balances(database, ORG, [by_card("card-1")]))
    await asyncio.sleep(0.4)
    late = asyncio.ensure_future(fetch_balances(database, ORG, [by_card("card-2")]))
    await asyncio.sleep(0.05)
    database.pool.release(lent)
    ((first,), (second,)) = await asyncio.gather(early, late)
    assert (first.entity_id, second.entity_id) == (601, 602)
    assert FailingConnection.fetches == 2  # one group each
    await database.close(5)


async def test_a_refused_group_counts_and_answers_each_of_its_lookups(database_url, seeded):
    refused = {"reason": "acquire_timeout"}
    before = REGISTRY.get_sample_value("loyalty_gateway_db_unavailable_total", refused) or 0
    pool = ConnectionPool(partial(asyncpg.connect, database_url), 1)
    database = Database(pool, 0.2)
    lent, tasks = await waiting_behind(
        database, *(fetch_balances(database, ORG, [by_card(card)]) for card in ("card-1", "card-2", "card-3"))
    )
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(outcome, ServiceUnavailable) for outcome in outcomes), outcomes
    # Each request its own error (one exception raised in several requests would collect all their tracebacks).
    assert len({id(outcome) for outcome in outcomes}) == 3
    assert {(outcome.message, outcome.retry_after) for outcome in outcomes} == {  # type: ignore[union-attr]
        (outcomes[0].message, outcomes[0].retry_after)  # type: ignore[union-attr]
    }
    assert (REGISTRY.get_sample_value("loyalty_gateway_db_unavailable_total", refused) or 0) - before == 3
    database.pool.release(lent)
    await database.close(5)


async def test_a_group_that_waited_its_turn_is_charged_for_each_lookup_it_answered(database):
    lent, tasks = await waiting_behind(
        database, *(fetch_balances(database, ORG, [by_card(card)]) for card in ("card-1", "card-2", "card-3"))
    )
    database.pool.release(lent)
    await asyncio.gather(*tasks)
    # One turn for three lookups: two more units from the org's credit (gateway.db.turns), paid off in later turns.
    assert database.pool._turns._credit[ORG] == -2
