"""The Subscription root: the Query's lookups, pushed again whenever what they answer changes."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from functools import partial

import strawberry

from gateway.live.service import LiveInfo
from gateway.schema.enums import EntityType, Source
from gateway.schema.inputs import IdentifierInput
from gateway.schema.query import prepare_points_balance
from gateway.schema.types import PointsBalance


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "pointsBalance, live: the balance now, then again after each committed change to it (at most one "
            "message per interval; changes meanwhile merge). Ends with an error carrying extensions.code when "
            "the lookup fails, when the identifiers stop matching the entity it started with "
            "(ENTITY_CHANGED), or when the caller's key is revoked or token expires (UNAUTHENTICATED). Served "
            "over WebSocket (graphql-transport-ws) and Server-Sent Events (graphql-sse), not plain HTTP."
        )
    )
    async def points_balance(
        self,
        info: LiveInfo,
        identifiers: list[IdentifierInput],
        source: Source,
        account_id: str | None = None,
        program_id: int | None = None,
        entity_type: EntityType = EntityType.CUSTOMER,
        fetch_data_for_all_programs: bool = False,
    ) -> AsyncGenerator[PointsBalance, None]:
        lookup = partial(
            prepare_points_balance,
            identifiers, source, account_id, program_id, entity_type, fetch_data_for_all_programs,
        )  # fmt: skip
        async for balance in info.context.balances(lookup):
            yield PointsBalance.from_domain(balance)
