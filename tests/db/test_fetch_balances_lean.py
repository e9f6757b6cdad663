"""fetch_customer_balance.sql answers a single lookup exactly like fetch_balances.sql.

A differential test: hypothesis builds small worlds (orgs with and without
dual eligibility, programs, customers sharing identifiers under several
sources and accounts, fleets, balances) and lookups against them (a missing
org, an end user's customer restriction, a program given, the default or all
programs, ID identifiers), and each lookup's Matches from the lean statement
must equal the general statement's; sent together in one batch, the lookups
of an org must each get what they got alone, and so must its single customer
lookups sent in one fetch_customer_balances.sql (as lookups waiting for a
connection together are). The test owns its event loop
(hypothesis tests are synchronous); each example seeds in a transaction
rolled back after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

import asyncpg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.db.balances import (
    balances_arguments,
    customer_balance_arguments,
    customer_balances_arguments,
    fetch_balances,
    group_rows,
    is_single_identifier_customer_lookup,
)
from gateway.db.database import Database
from gateway.db.sql import FETCH_BALANCES, FETCH_CUSTOMER_BALANCE, FETCH_CUSTOMER_BALANCES
from gateway.domain.lookup import Lookup, Matches, build_lookup
from gateway.domain.vocabulary import (
    CUSTOMER_IDENTIFIER_TYPES,
    ENTITY_ID_TYPES,
    FLEET_IDENTIFIER_TYPES,
    REGISTERED_IDENTIFIER_TYPES,
    EntityType,
    IdentifierType,
    Source,
)

ORGS = (1, 2)
MISSING_ORG = 3
SOURCES = (Source.INSTORE, Source.WEBSITE)
ACCOUNTS = ("", "acc")
CUSTOMER_IDS = (11, 12, 13, 14)
FLEET_IDS = (11, 21)  # 11 is also a customer id: balances must keep them apart
PROGRAM_IDS = (31, 32, 33)
# Few values, so identifiers are often shared by customers (and by orgs, sources and accounts);
# "12" is also a customer id, for identifiers registered with type ID.
VALUES = ("v1", "v2", "12")
# A customer identifier registered with type ID: nothing should, but both statements must agree on it.
TYPES = [*sorted(t.value for t in REGISTERED_IDENTIFIER_TYPES), "ID"]


@dataclass(frozen=True)
class World:
    orgs: list[tuple[int, bool, str | None]]  # (org id, dual eligibility, primary identifier type)
    programs: list[tuple[int, int, bool]]  # (org id, program id, is default)
    customers: list[tuple[int, int]]  # (org id, customer id)
    identifiers: list[tuple[int, str, str, str, str, int]]  # (org, source, account, type, value, customer)
    fleets: list[tuple[int, int, str, int]]  # (org, fleet id, external id, primary user id)
    balances: list[tuple[int, str, int, int, Decimal, Decimal, Decimal]]


@dataclass(frozen=True)
class Case:
    org_id: int
    lookup: Lookup
    customer_id: int | None


@st.composite
def worlds(draw: st.DrawFn) -> World:
    orgs = []
    for org_id in ORGS:
        dual = draw(st.booleans())
        orgs.append((org_id, dual, draw(st.sampled_from(TYPES[:-1])) if dual else None))
    programs = []
    for org_id in ORGS:
        ids = draw(st.lists(st.sampled_from(PROGRAM_IDS), unique=True, max_size=3))
        default = draw(st.sampled_from([None, *ids]))
        programs += [(org_id, program_id, program_id == default) for program_id in ids]
    customers = [
        (org_id, c) for org_id in ORGS for c in draw(st.lists(st.sampled_from(CUSTOMER_IDS), unique=True, min_size=1))
    ]
    identifiers = draw(
        st.lists(
            st.tuples(
                st.sampled_from(customers),
                st.sampled_from([s.value for s in SOURCES]),
                st.sampled_from(ACCOUNTS),
                st.sampled_from(TYPES),
                st.sampled_from(VALUES),
            ).map(lambda t: (t[0][0], t[1], t[2], t[3], t[4], t[0][1])),
            unique_by=lambda row: row,
            max_size=12,
        )
    )
    # The same identifier registered for another customer of the org: shared, or a conflict.
    for org_id, source, account_id, type_, value, _ in (
        draw(st.lists(st.sampled_from(identifiers), max_size=4)) if identifiers else []
    ):
        other = draw(st.sampled_from([c for o, c in customers if o == org_id]))
        if (org_id, source, account_id, type_, value, other) not in identifiers:
            identifiers.append((org_id, source, account_id, type_, value, other))
    fleets = []
    for org_id in ORGS:
        members = [c for o, c in customers if o == org_id]
        for fleet_id in draw(st.lists(st.sampled_from(FLEET_IDS), unique=True, max_size=min(2, len(members)))):
            taken = {(f[2], f[3]) for f in fleets if f[0] == org_id}
            external = f"F{fleet_id}"
            head = draw(st.sampled_from([c for c in members if all(c != t[1] for t in taken)] or [None]))
            if head is not None:
                fleets.append((org_id, fleet_id, external, head))
    entities = [(o, "CUSTOMER", c) for o, c in customers] + [(o, "FLEET", f) for o, f, _, _ in fleets]
    balances = []
    points = st.decimals(min_value=0, max_value=1000, places=3)
    for org_id, entity_type, entity_id in entities:
        for _, program_id, _ in (p for p in programs if p[0] == org_id):
            if draw(st.booleans()):
                balances.append((org_id, entity_type, entity_id, program_id, draw(points), draw(points), draw(points)))
    return World(orgs, programs, customers, identifiers, fleets, balances)


@st.composite
def cases(draw: st.DrawFn, world: World) -> Case:
    entity_type = draw(st.sampled_from(EntityType)) if draw(st.integers(0, 4)) == 0 else EntityType.CUSTOMER
    org_id = draw(st.sampled_from((*ORGS, *ORGS, MISSING_ORG)))
    source = draw(st.sampled_from(SOURCES))
    account_id = draw(st.sampled_from(ACCOUNTS))
    allowed = sorted(FLEET_IDENTIFIER_TYPES if entity_type is EntityType.FLEET else CUSTOMER_IDENTIFIER_TYPES,
                     key=lambda t: t.value)  # fmt: skip
    # Mostly one identifier: the case the lean statement answers.
    count = 1 if draw(st.integers(0, 3)) else draw(st.integers(2, 3))
    customers = list(CUSTOMER_IDS)  # an end user's restriction, the owner of a registered identifier more often
    identifiers: list[tuple[IdentifierType, str]] = []
    if entity_type is EntityType.CUSTOMER and world.identifiers and draw(st.integers(0, 2)):
        # Most often a registered identifier, under its own org, source and account: something matches.
        org_id, source_value, account_id, type_value, value, owner = draw(st.sampled_from(world.identifiers))
        source = Source(source_value)
        customers.append(owner)
        identifiers.append((IdentifierType(type_value), value))
    while len(identifiers) < count:
        # ID (and PRIMARY_USER_ID) thrice as often: they match through other tables.
        weighted = [*allowed, *[t for t in allowed if t in ENTITY_ID_TYPES] * 2]
        type_ = draw(st.sampled_from([t for t in weighted if t not in {i[0] for i in identifiers}]))
        if type_ in (IdentifierType.ID, IdentifierType.PRIMARY_USER_ID):
            value = str(draw(st.sampled_from((*CUSTOMER_IDS, *FLEET_IDS, 99))))
        elif type_ is IdentifierType.EXTERNAL_ID and entity_type is EntityType.FLEET:
            value = draw(st.sampled_from([f"F{f}" for f in FLEET_IDS] + ["v1"]))
        else:
            value = draw(st.sampled_from(VALUES))
        identifiers.append((type_, value))
    identifiers = draw(st.permutations(identifiers))
    program_ids = [p[1] for p in world.programs]
    lookup = build_lookup(
        identifiers=identifiers,
        source=source,
        account_id=account_id or draw(st.sampled_from([None, ""])),
        program_id=draw(st.sampled_from([None, None, *program_ids, 99])),
        entity_type=entity_type,
        fetch_data_for_all_programs=draw(st.booleans()),
    )
    customer_id = draw(st.sampled_from([None] * 4 + customers[-1:] * 2 + customers))
    return Case(org_id, lookup, customer_id)


class _OneConnection:
    """The part of Database fetch_balances uses, over the test's connection: its reads (gateway.db.database.Reads)
    are this connection's."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.reads = self

    async def fetch(
        self, statement: str, arguments: Sequence[object], *, tenant: int, cost: int
    ) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._connection.fetch(statement, *arguments)
        return rows


@dataclass
class Runner:
    loop: asyncio.AbstractEventLoop
    connection: asyncpg.Connection

    def run(self, world: World, cases: list[Case]) -> None:
        self.loop.run_until_complete(self._run(world, cases))

    async def _run(self, world: World, cases: list[Case]) -> None:
        connection = self.connection
        transaction = connection.transaction()
        await transaction.start()
        try:
            await _seed(connection, world)
            database = cast(Database, _OneConnection(connection))
            alone: dict[tuple[int, int | None], list[tuple[Lookup, Matches]]] = {}
            for case in cases:
                lookups = [case.lookup]
                general = group_rows(
                    await connection.fetch(FETCH_BALANCES, *balances_arguments(case.org_id, lookups, case.customer_id)),
                    1,
                )
                answered = await fetch_balances(database, case.org_id, lookups, customer_id=case.customer_id)
                assert answered == general, case
                if is_single_identifier_customer_lookup(case.lookup):
                    arguments = customer_balance_arguments(case.org_id, case.lookup, case.customer_id)
                    lean = group_rows(await connection.fetch(FETCH_CUSTOMER_BALANCE, *arguments), 1)
                    assert lean == general, case
                    _note(general[0])
                alone.setdefault((case.org_id, case.customer_id), []).append((case.lookup, general[0]))
            # The same lookups of an org in one batch: each gets what it got alone. Its single customer lookups
            # in one statement as lookups waiting together share it (gateway.db.lookup_groups): the same.
            for (org_id, customer_id), answers in alone.items():
                lookups = [lookup for lookup, _ in answers]
                together = await fetch_balances(database, org_id, lookups, customer_id=customer_id)
                assert together == [matches for _, matches in answers], (org_id, customer_id, lookups)
                grouped = [answer for answer in answers if is_single_identifier_customer_lookup(answer[0])]
                arguments = customer_balances_arguments(org_id, [lookup for lookup, _ in grouped], customer_id)
                shared = group_rows(await connection.fetch(FETCH_CUSTOMER_BALANCES, *arguments), len(grouped))
                assert shared == [matches for _, matches in grouped], (org_id, customer_id, grouped)
        finally:
            await transaction.rollback()


def _note(matches: Matches) -> None:
    if matches.entity_id is None:
        event("lean: nothing decided")
    elif any(matches.other):
        event("lean: a conflict")
    else:
        event("lean: decided" + (" (dual eligibility)" if matches.dual_eligibility else ""))
    event("lean: programs" if matches.programs else "lean: no program")


async def _seed(connection: asyncpg.Connection, world: World) -> None:
    await connection.executemany(
        "INSERT INTO orgs (org_id, name, dual_eligibility, primary_identifier) VALUES ($1, 'org', $2, $3)", world.orgs
    )
    await connection.executemany(
        "INSERT INTO programs (org_id, program_id, name, is_default) VALUES ($1, $2, 'program ' || $2::int, $3)",
        world.programs,
    )
    await connection.executemany("INSERT INTO customers (org_id, customer_id) VALUES ($1, $2)", world.customers)
    await connection.executemany(
        "INSERT INTO customer_identifiers (org_id, source, account_id, type, value, customer_id)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        world.identifiers,
    )
    await connection.executemany(
        "INSERT INTO fleets (org_id, fleet_id, external_id, primary_user_id) VALUES ($1, $2, $3, $4)", world.fleets
    )
    await connection.executemany(
        "INSERT INTO balances (org_id, entity_type, entity_id, program_id, main_points, delayed_accrual_points,"
        " external_trigger_points) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        world.balances,
    )


@pytest.fixture
def runner(database_url: str) -> Iterator[Runner]:
    loop = asyncio.new_event_loop()
    try:
        connection = loop.run_until_complete(asyncpg.connect(database_url))
        try:
            yield Runner(loop, connection)
        finally:
            loop.run_until_complete(connection.close())
    finally:
        loop.close()


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_single_lookup_gets_the_same_matches_from_the_lean_statement(runner: Runner, data: st.DataObject) -> None:
    world = data.draw(worlds(), label="world")
    runner.run(world, data.draw(st.lists(cases(world), min_size=1, max_size=8), label="lookups"))
