"""create_app(settings): the Starlette application; its lifespan owns the pool."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.routing import Route

from gateway.auth import ApiKeyAuthenticator
from gateway.config import Settings, settings_from_json, settings_to_json
from gateway.context import AppState
from gateway.db.migrations import migrate
from gateway.db.pool import SERVER_SETTINGS, Database, create_pool
from gateway.graphiql import graphiql_assets
from gateway.http import GraphQLEndpoint
from gateway.schema import ROOT_RESOLVERS, schema


def create_app(settings: Settings, *, example_query: str | None = None) -> Starlette:
    """The gateway for settings.database_url, which must be set (the CLI resolves the embedded one)."""
    database_url = settings.database_url
    if database_url is None:
        raise ValueError("create_app needs settings.database_url")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AppState]]:
        # Migrations run on their own connection: they may take longer than any lookup may.
        connection = await asyncpg.connect(database_url, server_settings=SERVER_SETTINGS)
        try:
            await migrate(connection)
        finally:
            await connection.close()
        pool = await create_pool(database_url, settings)
        try:
            database = Database(pool, settings.acquire_timeout)
            # Lifespan state is copied into every request's `request.state`.
            yield {"gateway": AppState(database, ApiKeyAuthenticator(database, settings.api_key_cache_ttl))}
        finally:
            await pool.close()

    endpoint = GraphQLEndpoint(
        schema=schema, root_resolvers=ROOT_RESOLVERS, settings=settings, example_query=example_query
    )
    routes = [
        Route("/graphql", endpoint),
        graphiql_assets(),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


# Worker processes (serve --workers N) rebuild the app from this variable.
SETTINGS_VARIABLE = "LOYALTY_GATEWAY_WORKER_SETTINGS"


def settings_to_environment(settings: Settings, example_query: str | None) -> str:
    return json.dumps({"settings": settings_to_json(settings), "example_query": example_query})


def create_app_from_environment() -> Starlette:
    handed_over = json.loads(os.environ[SETTINGS_VARIABLE])
    return create_app(settings_from_json(handed_over["settings"]), example_query=handed_over["example_query"])
