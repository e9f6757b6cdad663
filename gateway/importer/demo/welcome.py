"""`serve --demo`: data, a key and an example query, ready for a newcomer."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

import asyncpg

from gateway.config import Settings
from gateway.db.api_keys import insert_api_key
from gateway.db.examples import SampleCustomer, count_orgs, sample_customer
from gateway.db.migrations import migrate
from gateway.db.pool import SERVER_SETTINGS
from gateway.domain.api_keys import generate_key
from gateway.importer.demo import load_demo_data


@dataclass(frozen=True, slots=True)
class Demo:
    api_key: str
    org_id: int
    org_name: str
    example_query: str

    def banner(self, settings: Settings) -> str:
        url = f"http://{settings.host}:{settings.port}/graphql"
        return "\n".join(
            [
                "",
                f"Loyalty gateway demo: open {url} in a browser.",
                f"GraphiQL is pre-filled with this API key (org {self.org_id}, {self.org_name}) and an example query;",
                "press the run button. Clients send the key as `Authorization: Bearer <key>`:",
                "",
                f"    {self.api_key}",
                "",
                "Example query:",
                "",
                *("    " + line for line in self.example_query.splitlines()),
                "",
                "From a shell:",
                "",
                f"    curl -s {url} -H 'Authorization: Bearer {self.api_key}' \\",
                "      -H 'Content-Type: application/json' \\",
                f"      -d {shlex.quote(json.dumps({'query': ' '.join(self.example_query.split())}))}",
                "",
            ]
        )


async def prepare_demo(settings: Settings) -> Demo:
    """Load demo data into an empty database, then create a key for the sample's org."""
    assert settings.database_url is not None
    connection = await asyncpg.connect(settings.database_url, server_settings=SERVER_SETTINGS)
    try:
        await migrate(connection)
        if await count_orgs(connection) == 0:
            await load_demo_data(connection, customers=settings.demo_customers, progress=True)
        sample = await sample_customer(connection)
        if sample is None:
            raise SystemExit("the database has no customer with points to show; load data with `demo-data`")
        new = generate_key()
        await insert_api_key(connection, sample.org_id, new.prefix, new.key_hash, "demo")
    finally:
        await connection.close()
    return Demo(api_key=new.key, org_id=sample.org_id, org_name=sample.org_name, example_query=example_query(sample))


def example_query(sample: SampleCustomer) -> str:
    account = f"\n    accountId: {json.dumps(sample.account_id)}" if sample.account_id else ""
    return f"""query CustomerBalance {{
  pointsBalance(
    identifiers: [{{type: {sample.identifier_type}, value: {json.dumps(sample.identifier_value)}}}]
    source: {sample.source}{account}
    fetchDataForAllPrograms: true
  ) {{
    entityId
    entityType
    mainPoints
    promisedPoints
    totalPoints
    promisedPointsBreakup {{ delayedAccrualPoints externalTriggerBasedPoints }}
    programs {{ programId programName isDefault mainPoints promisedPoints totalPoints }}
    warnings
  }}
}}"""
