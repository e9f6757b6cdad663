"""The Query root, and the schema class."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from gateway.domain.lookup import Lookup, Matches
from gateway.execution.plans import BatchRoot
from gateway.resolvers import balance
from gateway.resolvers.context import Info
from gateway.schema.enums import EntityType, Source
from gateway.schema.inputs import IdentifierInput
from gateway.schema.types import PointsBalance


def prepare_points_balance(
    identifiers: list[IdentifierInput],
    source: Source,
    account_id: str | None = None,
    program_id: int | None = None,
    entity_type: EntityType = EntityType.CUSTOMER,
    fetch_data_for_all_programs: bool = False,
) -> Lookup:
    return balance.prepare(
        identifiers=[(identifier.type, identifier.value) for identifier in identifiers],
        source=source,
        account_id=account_id,
        program_id=program_id,
        entity_type=entity_type,
        fetch_data_for_all_programs=fetch_data_for_all_programs,
    )


def prepare_points_balance_arguments(arguments: dict[str, Any]) -> Lookup:
    """prepare_points_balance from the field's coerced GraphQL arguments, as compiled plans read them: input
    objects as dicts, enums as their Python values, every argument with a default present."""
    return balance.prepare(
        identifiers=[(identifier["type"], identifier["value"]) for identifier in arguments["identifiers"]],
        source=arguments["source"],
        account_id=arguments.get("accountId"),
        program_id=arguments.get("programId"),
        entity_type=arguments["entityType"],
        fetch_data_for_all_programs=arguments["fetchDataForAllPrograms"],
    )


def finish_points_balance(lookup: Lookup, matches: Matches) -> PointsBalance:
    return PointsBalance.from_domain(balance.answer(lookup, matches))


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
        lookup = prepare_points_balance(
            identifiers, source, account_id, program_id, entity_type, fetch_data_for_all_programs
        )
        return finish_points_balance(lookup, await balance.loader(info.context).load(lookup))


class GatewaySchema(strawberry.Schema):
    """The HTTP view logs unexpected errors with the request id; coded ones are answers, not faults."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        return None


# Root fields compiled plans run without graphql-core, by GraphQL name: the same
# three steps as the resolver above, with every lookup of a request in one batch. Their
# `finish` gives the domain's Balance, which compiled plans serialize through the output
# types' DOMAIN_FIELDS (schema/types.py).
ROOT_RESOLVERS = {
    "pointsBalance": BatchRoot(
        prepare=prepare_points_balance,
        load=balance.load,
        finish=balance.answer,
        cost=balance.cost,
        prepare_arguments=prepare_points_balance_arguments,
    )
}
