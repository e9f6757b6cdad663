"""pointsBalance in three steps, so a request's lookups share one SQL statement:
validate the arguments (no I/O), look up a batch, decide each answer (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from strawberry.dataloader import DataLoader

from gateway.db.balances import fetch_balances
from gateway.domain.lookup import Balance, Lookup, Matches, build_lookup, decide
from gateway.domain.vocabulary import EntityType, IdentifierType, Source
from gateway.resolvers.context import Context


def prepare(
    *,
    identifiers: Sequence[tuple[IdentifierType, str]],
    source: Source,
    account_id: str | None,
    program_id: int | None,
    entity_type: EntityType,
    fetch_data_for_all_programs: bool,
) -> Lookup:
    """The validated lookup; raises BadUserInput or InvalidGroupIdentifier before any I/O."""
    return build_lookup(
        identifiers=identifiers,
        source=source,
        account_id=account_id,
        program_id=program_id,
        entity_type=entity_type,
        fetch_data_for_all_programs=fetch_data_for_all_programs,
    )


async def load(context: Context, lookups: Sequence[Lookup]) -> list[Matches]:
    """What the database matches for each lookup: one round trip for the whole batch."""
    return await fetch_balances(context.database, context.org_id, lookups, customer_id=context.customer_id)


def loader(context: Context) -> DataLoader[Lookup, Matches]:
    """Aliased pointsBalance fields of one request share one SQL statement (graphql-core path;
    compiled plans batch by themselves)."""
    if context.balance_loader is None:
        context.balance_loader = DataLoader(load_fn=partial(load, context))
    return context.balance_loader


def cost(lookup: Lookup) -> int:
    return lookup.cost


def answer(lookup: Lookup, matches: Matches) -> Balance:
    """The balance, or the coded error the rules give."""
    return decide(lookup, matches)
