"""Balance lookups: a batch of lookups of one org in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter

import asyncpg

from gateway.db.database import Database
from gateway.db.lookup_groups import Lending
from gateway.db.sql import FETCH_BALANCES, FETCH_CUSTOMER_BALANCE, FETCH_CUSTOMER_BALANCES
from gateway.domain.lookup import ZERO, Lookup, Matches, ProgramPoints
from gateway.domain.vocabulary import EntityType, IdentifierType


async def fetch_balances(
    database: Database, org_id: int, lookups: Sequence[Lookup], *, customer_id: int | None = None
) -> list[Matches]:
    """What the database matches for each lookup, in the order given.

    With a customer_id (an end user's request) identifiers match only that
    customer and the fleets it heads: anyone else is as absent as a stranger.
    One customer lookup by one identifier, nearly every request, runs a
    leaner statement that returns the same rows; when every connection is
    lent it waits with the org's other such lookups, and one statement
    answers them all (gateway.db.lookup_groups).
    """
    reads = database.reads
    if len(lookups) == 1 and is_single_identifier_customer_lookup(lookups[0]):
        if reads is None:
            connection = database.lend()
            if connection is None:
                return [await database.lookup_groups.answer(org_id, customer_id, lookups[0], _fetch_customer_lookups)]
            return await _fetch_customer_lookups(database, connection, org_id, customer_id, lookups)
        statement, arguments = FETCH_CUSTOMER_BALANCE, customer_balance_arguments(org_id, lookups[0], customer_id)
        cost = 1
    else:
        statement, arguments = FETCH_BALANCES, balances_arguments(org_id, lookups, customer_id)
        cost = sum(lookup.cost for lookup in lookups)
    if reads is None:
        # When connections are scarce the org waits its turn, weighted by what the statement costs.
        connection = database.lend()
        if connection is None:
            connection = await database.wait(database.acquire_timeout, org_id, cost)
        rows = await fetch_rows(database, connection, statement, arguments)
    else:
        # Read replicas configured: a healthy one answers, or the primary (gateway.db.replicas).
        rows = await reads.fetch(statement, arguments, tenant=org_id, cost=cost)
    return group_rows(rows, len(lookups))


async def fetch_rows(
    database: Lending, connection: asyncpg.Connection, statement: str, arguments: Sequence[object]
) -> list[asyncpg.Record]:
    """The statement's rows, on a connection lent by the database and given back once they are in.

    (What `async with database.connection()` does, as plain calls: a lookup's hot path.)
    """
    started = perf_counter()
    try:
        rows: list[asyncpg.Record] = await connection.fetch(statement, *arguments)
    except BaseException as error:
        database.give_back(connection, started, error)
        raise
    database.give_back(connection, started, None)
    return rows


async def _fetch_customer_lookups(
    database: Lending,
    connection: asyncpg.Connection,
    org_id: int,
    customer_id: int | None,
    lookups: Sequence[Lookup],
) -> list[Matches]:
    """Customer lookups of one identifier each (one alone, or those that waited for a connection together:
    gateway.db.lookup_groups) in one statement, on a lent connection."""
    if len(lookups) == 1:
        arguments = customer_balance_arguments(org_id, lookups[0], customer_id)
        return [_matches(await fetch_rows(database, connection, FETCH_CUSTOMER_BALANCE, arguments))]
    arguments = customer_balances_arguments(org_id, lookups, customer_id)
    return group_rows(await fetch_rows(database, connection, FETCH_CUSTOMER_BALANCES, arguments), len(lookups))


def is_single_identifier_customer_lookup(lookup: Lookup) -> bool:
    """Whether fetch_customer_balance.sql can answer this lookup alone."""
    return lookup.entity_type is EntityType.CUSTOMER and len(lookup.identifiers) == 1


def customer_balance_arguments(org_id: int, lookup: Lookup, customer_id: int | None) -> list[object]:
    """fetch_customer_balance.sql's arguments for a customer lookup with one identifier."""
    (identifier,) = lookup.identifiers
    # (Enum members' _value_ is their value, read without the Python-level `value` property.)
    return [
        org_id,
        lookup.source._value_,
        lookup.account_id,
        lookup.program_id,
        lookup.all_programs,
        identifier.type._value_,
        identifier.value,
        identifier.entity_id,
        customer_id,
    ]


def customer_balances_arguments(org_id: int, lookups: Sequence[Lookup], customer_id: int | None) -> list[object]:
    """fetch_customer_balances.sql's arguments for customer lookups with one identifier each."""
    sources: list[str] = []
    accounts: list[str] = []
    programs: list[int | None] = []
    all_programs: list[bool] = []
    types: list[str] = []
    values: list[str] = []
    entity_ids: list[int | None] = []
    for lookup in lookups:
        (identifier,) = lookup.identifiers
        sources.append(lookup.source._value_)
        accounts.append(lookup.account_id)
        programs.append(lookup.program_id)
        all_programs.append(lookup.all_programs)
        types.append(identifier.type._value_)
        values.append(identifier.value)
        entity_ids.append(identifier.entity_id)
    return [org_id, sources, accounts, programs, all_programs, types, values, entity_ids, customer_id]


def balances_arguments(org_id: int, lookups: Sequence[Lookup], customer_id: int | None) -> list[object]:
    """fetch_balances.sql's arguments for any batch of lookups."""
    identifier_lookups: list[int] = []
    identifier_types: list[str] = []
    identifier_values: list[str] = []
    identifier_entity_ids: list[int | None] = []
    for number, lookup in enumerate(lookups, start=1):
        for identifier in lookup.identifiers:
            identifier_lookups.append(number)
            identifier_types.append(identifier.type.value)
            identifier_values.append(identifier.value)
            identifier_entity_ids.append(identifier.entity_id)
    return [
        org_id,
        [lookup.entity_type.value for lookup in lookups],
        [lookup.source.value for lookup in lookups],
        [lookup.account_id for lookup in lookups],
        [lookup.program_id for lookup in lookups],
        [lookup.all_programs for lookup in lookups],
        identifier_lookups,
        identifier_types,
        identifier_values,
        identifier_entity_ids,
        customer_id,
    ]


# An identifier type by its value: a dict lookup rather than the enum's call (which runs in Python).
_IDENTIFIER_TYPES = {member.value: member for member in IdentifierType}


# Matches and ProgramPoints are built with tuple.__new__, the same tuples their NamedTuple __new__ makes without
# a Python call each (a lookup builds one of each per program).
_tuple = tuple.__new__
# What a lookup of an org that is gone matches (an end-user token may outlive its org): nothing.
_NOTHING = Matches(False, None, None, (), (), ())


def group_rows(rows: Sequence[asyncpg.Record], count: int) -> list[Matches]:
    """Each lookup's Matches, from the rows of its statement (numbered by their `lookup`, from 1)."""
    if count == 1:
        # One lookup (nearly every request): all the rows are its own.
        return [_matches(rows)]
    grouped: list[list[asyncpg.Record]] = [[] for _ in range(count)]
    for row in rows:
        grouped[row["lookup"] - 1].append(row)
    return [_matches(found) for found in grouped]


def _matches(rows: Sequence[asyncpg.Record]) -> Matches:
    """One lookup's Matches from its rows: one row per program, or one without a program when none applies."""
    if not rows:
        return _NOTHING
    programs = []
    for row in rows:
        if row["program_id"] is not None:
            main, delayed, external = row["main_points"], row["delayed_accrual_points"], row["external_trigger_points"]
            points = (
                row["program_id"],
                row["program_name"],
                row["is_default"],
                ZERO if main is None else main,
                ZERO if delayed is None else delayed,
                ZERO if external is None else external,
            )
            programs.append(_tuple(ProgramPoints, points))
    head = rows[-1]
    primary = head["primary_identifier"]
    found = (
        head["dual_eligibility"],
        _IDENTIFIER_TYPES[primary] if primary else None,
        head["entity_id"],
        tuple(head["belongs"] or ()),
        tuple(head["other"] or ()),
        tuple(programs),
    )
    return _tuple(Matches, found)
