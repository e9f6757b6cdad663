"""Rows for tests, written straight to the database (the importer has its own tests)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from gateway.db.api_keys import insert_api_key
from gateway.domain.api_keys import generate_key
from gateway.domain.identifiers import normalise
from gateway.domain.lookup import Lookup, build_lookup
from gateway.domain.vocabulary import EntityType, IdentifierType, Source


def customer_lookup(identifier_type: IdentifierType, value: str, program_id: int | None = None) -> Lookup:
    """A customer lookup by one identifier, sent by the in-store till, in its default program (or `program_id`)."""
    return build_lookup(
        identifiers=[(identifier_type, value)],
        source=Source.INSTORE,
        account_id=None,
        program_id=program_id,
        entity_type=EntityType.CUSTOMER,
        fetch_data_for_all_programs=False,
    )


class FailingConnection(asyncpg.Connection):
    """A connection whose fetches are counted (all connections of the class together), and whose next fetch
    raises `failure` when one is set."""

    failure: BaseException | None = None
    fetches = 0

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[asyncpg.Record]:
        FailingConnection.fetches += 1
        failure, self.failure = self.failure, None
        if failure is not None:
            raise failure
        return await super().fetch(query, *args, **kwargs)


@dataclass
class Seed:
    connection: asyncpg.Connection

    async def org(self, org_id: int, *, dual_eligibility: bool = False, primary: str | None = None) -> int:
        await self.connection.execute(
            "INSERT INTO orgs (org_id, name, dual_eligibility, primary_identifier) VALUES ($1, $2, $3, $4)",
            org_id,
            f"Org {org_id}",
            dual_eligibility,
            primary,
        )
        return org_id

    async def program(self, org_id: int, program_id: int, *, default: bool = False, name: str | None = None) -> None:
        await self.connection.execute(
            "INSERT INTO programs (org_id, program_id, name, is_default) VALUES ($1, $2, $3, $4)",
            org_id,
            program_id,
            name or f"Program {program_id}",
            default,
        )

    async def customer(self, org_id: int, customer_id: int, *identifiers: tuple[str, str | None, str, str]) -> int:
        """identifiers: (source, account id or None, type, value as a client would write it)."""
        await self.connection.execute(
            "INSERT INTO customers (org_id, customer_id) VALUES ($1, $2)", org_id, customer_id
        )
        for source, account_id, type_, value in identifiers:
            await self.connection.execute(
                "INSERT INTO customer_identifiers (org_id, source, account_id, type, value, customer_id)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                org_id,
                source,
                account_id or "",
                type_,
                normalise(IdentifierType(type_), value),
                customer_id,
            )
        return customer_id

    async def fleet(self, org_id: int, fleet_id: int, external_id: str, primary_user_id: int) -> int:
        await self.connection.execute(
            "INSERT INTO fleets (org_id, fleet_id, external_id, primary_user_id) VALUES ($1, $2, $3, $4)",
            org_id,
            fleet_id,
            external_id,
            primary_user_id,
        )
        return fleet_id

    async def balance(
        self,
        org_id: int,
        entity_id: int,
        program_id: int,
        main: str,
        delayed: str = "0",
        external: str = "0",
        *,
        entity_type: str = "CUSTOMER",
    ) -> None:
        await self.connection.execute(
            "INSERT INTO balances (org_id, entity_type, entity_id, program_id, main_points,"
            " delayed_accrual_points, external_trigger_points) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            org_id,
            entity_type,
            entity_id,
            program_id,
            Decimal(main),
            Decimal(delayed),
            Decimal(external),
        )

    async def api_key(self, org_id: int, name: str = "test") -> str:
        new = generate_key()
        await insert_api_key(self.connection, org_id, new.prefix, new.key_hash, name)
        return new.key


# The Accept header current GraphQL clients send (graphql-request, urql, Apollo Client 4): request errors
# (parse, validation, variables, limits) are then 4xx. tests/edge/test_negotiation.py covers application/json.
GRAPHQL_CLIENT_HEADERS = {"accept": "application/graphql-response+json, application/json;q=0.9"}
JSON_MEDIA_TYPES = ("application/json", "application/graphql-response+json")


def is_json(response: object) -> bool:
    """Whether an httpx response is JSON, in either of the media types GraphQL over HTTP answers in."""
    return str(response.headers["content-type"]).split(";")[0] in JSON_MEDIA_TYPES  # type: ignore[attr-defined]
