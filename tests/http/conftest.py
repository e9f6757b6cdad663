from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.config import Settings
from tests.factories import Seed


@dataclass
class Gateway:
    """The real app, in process, with a way to seed its database."""

    client: httpx.AsyncClient
    seed: Seed

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
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Gateway(client=client, seed=Seed(connection))
