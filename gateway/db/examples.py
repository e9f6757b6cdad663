"""Facts about the loaded data that demo mode shows to newcomers."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from gateway.db.sql import COUNT_ORGS, SAMPLE_CUSTOMER


@dataclass(frozen=True, slots=True)
class SampleCustomer:
    org_id: int
    org_name: str
    source: str
    account_id: str | None
    identifier_type: str
    identifier_value: str


async def count_orgs(connection: asyncpg.Connection) -> int:
    return int(await connection.fetchval(COUNT_ORGS))


async def sample_customer(connection: asyncpg.Connection) -> SampleCustomer | None:
    row = await connection.fetchrow(SAMPLE_CUSTOMER)
    if row is None:
        return None
    return SampleCustomer(
        org_id=row["org_id"],
        org_name=row["org_name"],
        source=row["source"],
        account_id=row["account_id"],
        identifier_type=row["type"],
        identifier_value=row["value"],
    )
