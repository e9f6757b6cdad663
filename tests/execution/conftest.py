"""One seeded database, a real pool, and both ways of executing a request.

The hypothesis tests are synchronous: they run the async work on an event
loop this fixture owns (the pool is created on it), so one database serves
every example of a test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
import pytest

from gateway.config import Settings
from gateway.db.database import Database
from gateway.db.pool import ConnectionPool, create_pool
from gateway.edge.graphql import GraphQLEndpoint
from gateway.execution.operations import GraphQLRequest, Prepared
from gateway.execution.plans import Plan
from gateway.execution.results import format_error
from gateway.resolvers.context import Context
from gateway.schema import ROOT_RESOLVERS, schema
from tests.execution.queries import ORG_DUAL, ORG_PLAIN
from tests.factories import Seed

REQUEST_ID = "test"


async def seed(connection: asyncpg.Connection) -> None:
    seed = Seed(connection)
    # Dual eligibility off: the first matching identifier decides.
    await seed.org(ORG_PLAIN)
    await seed.program(ORG_PLAIN, 10, default=True, name="Gold")
    await seed.program(ORG_PLAIN, 11, name="Silver")
    await seed.program(ORG_PLAIN, 12, name="Bronze")
    await seed.customer(
        ORG_PLAIN,
        1001,
        ("INSTORE", None, "EMAIL", "ann@example.com"),
        ("INSTORE", None, "MOBILE", "447700900001"),
        ("INSTORE", None, "EXTERNAL_ID", "ext-ann"),
        ("WECHAT", "wx-1", "CUID", "cuid-ann"),
    )
    await seed.customer(
        ORG_PLAIN,
        1002,
        ("INSTORE", None, "EMAIL", "bob@example.com"),
        ("INSTORE", None, "MOBILE", "447700900002"),
        ("WECHAT", "wx-1", "CUID", "cuid-bob"),
        ("FACEBOOK", None, "CARD_NUMBER", "card-bob"),
    )
    await seed.customer(ORG_PLAIN, 1003, ("INSTORE", None, "EMAIL", "shared@example.com"))
    await seed.fleet(ORG_PLAIN, 5001, "FLEET-A", 1001)
    await seed.balance(ORG_PLAIN, 1001, 10, "8500.125", "12.5", "0.375")
    await seed.balance(ORG_PLAIN, 1001, 11, "0.001")
    await seed.balance(ORG_PLAIN, 1002, 10, "42.5", "0", "7.25")
    await seed.balance(ORG_PLAIN, 1002, 12, "3.333", "1.111", "2.222")
    await seed.balance(ORG_PLAIN, 5001, 10, "100.05", "0.5", "0.25", entity_type="FLEET")
    await seed.balance(ORG_PLAIN, 5001, 12, "0.999", entity_type="FLEET")
    # Dual eligibility on: MOBILE decides, the others are only checked.
    await seed.org(ORG_DUAL, dual_eligibility=True, primary="MOBILE")
    await seed.program(ORG_DUAL, 20, default=True, name="Club")
    await seed.program(ORG_DUAL, 21, name="Partner")
    await seed.customer(
        ORG_DUAL,
        2001,
        ("INSTORE", None, "MOBILE", "447700900001"),
        ("INSTORE", None, "EMAIL", "shared@example.com"),
        ("WECHAT", "wx-1", "CUID", "cuid-ann"),
    )
    await seed.customer(
        ORG_DUAL,
        2002,
        ("INSTORE", None, "MOBILE", "447700900002"),
        ("INSTORE", None, "EMAIL", "shared@example.com"),
    )
    await seed.balance(ORG_DUAL, 2001, 20, "1.5", "0.25", "0.125")
    await seed.balance(ORG_DUAL, 2002, 21, "99.999")


@dataclass
class Outcome:
    data: Any
    errors: list[dict[str, Any]]

    @classmethod
    def of(cls, data: Any, errors: list[dict[str, Any]]) -> Outcome:
        return cls(data, sorted(errors, key=lambda e: (json.dumps(e.get("path")), e["message"], json.dumps(e))))


@dataclass
class World:
    loop: asyncio.AbstractEventLoop
    settings: Settings
    database: Database
    endpoint: GraphQLEndpoint

    def context(self, org_id: int) -> Context:
        # A fresh one per execution: each Context has its own DataLoader.
        return Context(settings=self.settings, database=self.database, org_id=org_id, request_id=REQUEST_ID)

    def reference(
        self, query: str, variables: dict[str, Any] | None, operation_name: str | None, org_id: int
    ) -> Outcome:
        """strawberry's stock execution (graphql-core), shaped like the gateway's response."""
        result = self.loop.run_until_complete(
            schema.execute(
                query, variable_values=variables, context_value=self.context(org_id), operation_name=operation_name
            )
        )
        return Outcome.of(result.data, [format_error(error, REQUEST_ID) for error in result.errors or ()])

    def candidate(
        self, query: str, variables: dict[str, Any] | None, operation_name: str | None, org_id: int
    ) -> tuple[Outcome, list[Plan | None]]:
        """The gateway's endpoint, and the plan it chose (none: it answered before planning; None: graphql-core ran)."""
        executor = self.endpoint.executor
        context = self.context(org_id)
        prepared = executor.prepare(GraphQLRequest(query, variables, operation_name), context, is_get=False)
        if isinstance(prepared, Prepared):
            _, body = self.loop.run_until_complete(executor.run(prepared, context))
            plans = [prepared.plan]
        else:
            _, body = prepared
            plans = []
        return Outcome.of(body.get("data"), body.get("errors", [])), plans

    def compare(
        self, query: str, variables: dict[str, Any] | None, operation_name: str | None, org_id: int
    ) -> tuple[Outcome, list[Plan | None]]:
        expected = self.reference(query, variables, operation_name, org_id)
        actual, plans = self.candidate(query, variables, operation_name, org_id)
        assert actual.data == expected.data
        # Same keys in the same order, too: clients see the serialised text.
        assert orjson.dumps(actual.data) == orjson.dumps(expected.data)
        assert actual.errors == expected.errors
        return actual, plans


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    loop = asyncio.new_event_loop()
    # Development mode: the reference (strawberry) introspects and suggests, so must the endpoint.
    # It has no request limits either: these tests compare execution; tests/access/test_limits.py the limits.
    settings = Settings(
        database_url=database_url,
        env="development",
        max_tokens=1_000_000,
        max_depth=1_000,
        max_aliases=1_000_000,
        max_root_fields=1_000_000,
        max_string_length=1_000_000,
        max_directives=1_000_000,
        max_cost=1_000_000,
    )

    async def open_pool() -> ConnectionPool:
        connection = await asyncpg.connect(database_url)
        try:
            await seed(connection)
        finally:
            await connection.close()
        return await create_pool(database_url, settings)

    try:
        pool = loop.run_until_complete(open_pool())
        endpoint = GraphQLEndpoint(schema=schema, root_resolvers=ROOT_RESOLVERS, settings=settings)
        try:
            yield World(loop, settings, Database(pool, 2.0), endpoint)
        finally:
            loop.run_until_complete(pool.close())
    finally:
        loop.close()
