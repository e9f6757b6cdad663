"""The Query root and the schema object."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gateway.context import Context, Info
from gateway.resolvers import balance
from gateway.schema.enums import EntityType, Source
from gateway.schema.inputs import IdentifierInput
from gateway.schema.scalars import POINTS_SCALAR, Points
from gateway.schema.types import PointsBalance


async def points_balance(
    context: Context,
    identifiers: list[IdentifierInput],
    source: Source,
    account_id: str | None = None,
    program_id: int | None = None,
    entity_type: EntityType = EntityType.CUSTOMER,
    fetch_data_for_all_programs: bool = False,
) -> PointsBalance:
    found = await balance.points_balance(
        context,
        identifiers=[(identifier.type, identifier.value) for identifier in identifiers],
        source=source,
        account_id=account_id,
        program_id=program_id,
        entity_type=entity_type,
        fetch_data_for_all_programs=fetch_data_for_all_programs,
    )
    return PointsBalance.from_domain(found)


@strawberry.type
class Query:
    @strawberry.field(
        description=(
            "A customer's or fleet's points balance, per program and category. "
            "Null, with an error carrying extensions.code, when the lookup fails."
        )
    )
    async def points_balance(
        self,
        info: Info,
        identifiers: list[IdentifierInput],
        source: Source,
        account_id: str | None = None,
        program_id: int | None = None,
        entity_type: EntityType = EntityType.CUSTOMER,
        fetch_data_for_all_programs: bool = False,
    ) -> PointsBalance | None:
        return await points_balance(
            info.context, identifiers, source, account_id, program_id, entity_type, fetch_data_for_all_programs
        )


class GatewaySchema(strawberry.Schema):
    """The HTTP view logs unexpected errors with the request id; coded ones are answers, not faults."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        return None


schema = GatewaySchema(query=Query, config=StrawberryConfig(scalar_map={Points: POINTS_SCALAR}))

# Root fields the compiled executor calls directly, by GraphQL name: each takes
# (context, **the field's Python arguments), like the field's own resolver.
ROOT_RESOLVERS = {"pointsBalance": points_balance}
