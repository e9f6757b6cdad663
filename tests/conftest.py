"""A real PostgreSQL for the tests: the embedded one, or TEST_DATABASE_URL.

The schema is migrated once into a template database; each test that needs a
database gets a fresh copy of it (CREATE DATABASE ... TEMPLATE), so tests can
commit freely and never see each other's rows. The `gateway` fixture is the
real app in process, over httpx's ASGI transport, on such a database.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import Gateway as GatewayApp
from gateway.app import create_app
from gateway.config import Settings
from gateway.db.migrations import migrate
from tests.factories import GRAPHQL_CLIENT_HEADERS, Seed

TEMPLATE = "loyalty_test_template"


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the PostgreSQL server the tests use (its maintenance database)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    from gateway.db.embedded import embedded_database_url

    data_dir = Path(tmp_path_factory.mktemp("embedded"))
    yield embedded_database_url(data_dir)


@pytest.fixture(scope="session")
def template_url(server_url: str) -> str:
    async def build() -> None:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
            await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
        finally:
            await admin.close()
        connection = await asyncpg.connect(_with_database(server_url, TEMPLATE))
        try:
            await migrate(connection)
        finally:
            await connection.close()

    asyncio.run(build())
    return _with_database(server_url, TEMPLATE)


@pytest.fixture
def database_url(server_url: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated, empty database for one test."""
    name = f"loyalty_test_{uuid.uuid4().hex[:12]}"

    async def run(statement: str) -> None:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(statement)
        finally:
            await admin.close()

    asyncio.run(run(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"'))
    yield _with_database(server_url, name)
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@dataclass
class Gateway:
    """The real app, in process, with a way to seed its database."""

    client: httpx.AsyncClient
    seed: Seed
    app: GatewayApp

    async def query(
        self, query: str, variables: dict[str, Any] | None = None, *, key: str | None, **extra: Any
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        body: dict[str, Any] = {"query": query, **extra}
        if variables is not None:
            body["variables"] = variables
        return await self.client.post("/graphql", json=body, headers=headers)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
async def gateway(settings: Settings, connection) -> AsyncIterator[Gateway]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        headers = GRAPHQL_CLIENT_HEADERS
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as client:
            yield Gateway(client=client, seed=Seed(connection), app=app)
