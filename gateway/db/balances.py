"""Balance lookups: a batch of lookups of one org in one statement."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from gateway.db.database import Database
from gateway.db.sql import FETCH_BALANCES, FETCH_CUSTOMER_BALANCE
from gateway.domain.lookup import ZERO, Lookup, Matches, ProgramPoints
from gateway.domain.vocabulary import EntityType, IdentifierType


async def fetch_balances(
    database: Database, org_id: int, lookups: Sequence[Lookup], *, customer_id: int | None = None
) -> list[Matches]:
    """What the database matches for each lookup, in the order given.

    With a customer_id (an end user's request) identifiers match only that
    customer and the fleets it heads: anyone else is as absent as a stranger.
    One customer lookup by one identifier, nearly every request, runs a
    leaner statement that returns the same rows.
    """
    if len(lookups) == 1 and is_single_identifier_customer_lookup(lookups[0]):
        statement, arguments = FETCH_CUSTOMER_BALANCE, customer_balance_arguments(org_id, lookups[0], customer_id)
        cost = 1
    else:
        statement, arguments = FETCH_BALANCES, balances_arguments(org_id, lookups, customer_id)
        cost = sum(lookup.cost for lookup in lookups)
    reads = database.reads
    if reads is None:
        # When connections are scarce the org waits its turn, weighted by what the statement costs.
        async with database.connection(tenant=org_id, cost=cost) as connection:
            rows = await connection.fetch(statement, *arguments)
    else:
        # Read replicas configured: a healthy one answers, or the primary (gateway.db.replicas).
        rows = await reads.fetch(statement, arguments, tenant=org_id, cost=cost)
    return group_rows(rows, len(lookups))


def is_single_identifier_customer_lookup(lookup: Lookup) -> bool:
    """Whether fetch_customer_balance.sql can answer this lookup alone."""
    return lookup.entity_type is EntityType.CUSTOMER and len(lookup.identifiers) == 1


def customer_balance_arguments(org_id: int, lookup: Lookup, customer_id: int | None) -> list[object]:
    """fetch_customer_balance.sql's arguments for a customer lookup with one identifier."""
    (identifier,) = lookup.identifiers
    return [
        org_id,
        lookup.source.value,
        lookup.account_id,
        lookup.program_id,
        lookup.all_programs,
        identifier.type.value,
        identifier.value,
        identifier.entity_id,
        customer_id,
    ]


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


def group_rows(rows: Sequence[asyncpg.Record], count: int) -> list[Matches]:
    programs: list[list[ProgramPoints]] = [[] for _ in range(count)]
    heads: list[asyncpg.Record | None] = [None] * count
    for row in rows:
        index = row["lookup"] - 1
        heads[index] = row
        if row["program_id"] is not None:
            main, delayed, external = row["main_points"], row["delayed_accrual_points"], row["external_trigger_points"]
            programs[index].append(
                ProgramPoints(
                    row["program_id"],
                    row["program_name"],
                    row["is_default"],
                    ZERO if main is None else main,
                    ZERO if delayed is None else delayed,
                    ZERO if external is None else external,
                )
            )
    matches = []
    for head, found in zip(heads, programs, strict=True):
        if head is None:
            # The org itself is gone (an end-user token may outlive it): nothing matches.
            matches.append(Matches(False, None, None, (), (), ()))
            continue
        primary = head["primary_identifier"]
        matches.append(
            Matches(
                dual_eligibility=head["dual_eligibility"],
                primary_identifier=_IDENTIFIER_TYPES[primary] if primary else None,
                entity_id=head["entity_id"],
                belongs=tuple(head["belongs"] or ()),
                other=tuple(head["other"] or ()),
                programs=tuple(found),
            )
        )
    return matches
