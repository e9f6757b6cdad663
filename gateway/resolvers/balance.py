"""pointsBalance: validate the arguments, look up (batched per request), decide."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.context import Context
from gateway.domain.lookup import Balance, build_lookup, decide
from gateway.domain.vocabulary import EntityType, IdentifierType, Source


async def points_balance(
    context: Context,
    *,
    identifiers: Sequence[tuple[IdentifierType, str]],
    source: Source,
    account_id: str | None,
    program_id: int | None,
    entity_type: EntityType,
    fetch_data_for_all_programs: bool,
) -> Balance:
    lookup = build_lookup(
        identifiers=identifiers,
        source=source,
        account_id=account_id,
        program_id=program_id,
        entity_type=entity_type,
        fetch_data_for_all_programs=fetch_data_for_all_programs,
    )
    matches = await context.balance_loader.load(lookup)
    return decide(lookup, matches)
