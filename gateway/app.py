"""create_app(settings): the gateway as an ASGI app; its lifespan owns the pool.

/graphql, the one path under load, goes straight to its endpoint; everything
else (probes, metrics, GraphiQL's assets, the lifespan) goes through Starlette's
routing and middleware.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.access.api_keys import ApiKeyAuthenticator
from gateway.access.fair_share import sample_fair_share
from gateway.access.token_keys import OrgTokenKeys
from gateway.config import Settings, settings_from_json, settings_to_json
from gateway.db.database import Database
from gateway.db.pool import connect_listener, create_pool
from gateway.db.replicas import open_replicas
from gateway.edge.cors import allowed_origins, cors_middleware, cors_options
from gateway.edge.fallbacks import http_error, refuse_websocket, server_error
from gateway.edge.graphiql import graphiql_assets
from gateway.edge.graphql import GraphQLEndpoint
from gateway.edge.health import healthz, kept_ready, readyz, sample_pool
from gateway.edge.openapi import OPENAPI_PATH, openapi_json
from gateway.edge.rest import REST_PATH, RestEndpoint
from gateway.edge.state import AppState
from gateway.execution.persisted import PersistedDocuments
from gateway.live.service import LiveService
from gateway.live.transport import WebSocketEndpoint
from gateway.observability.logs import configure_logging, log_format
from gateway.observability.metrics import MetricsOption, metrics_endpoint
from gateway.observability.requests import ObservedEndpoint, RequestObserver
from gateway.observability.tenants import publish_waits
from gateway.observability.tracing import Tracing
from gateway.schema import ROOT_RESOLVERS, schema

GRAPHQL_PATH = "/graphql"
GC_YOUNG_THRESHOLD = 10_000

logger = logging.getLogger("gateway.app")


class Gateway:
    """The ASGI app: GraphQL requests straight to their endpoint, the rest to Starlette.

    Starlette's router and its exception middlewares would cost every lookup a
    few nested calls and wrapped `send`s; the endpoint answers its own errors.
    """

    def __init__(self, graphql: ASGIApp, endpoint: GraphQLEndpoint, live: ASGIApp, rest: Starlette) -> None:
        self.graphql = graphql
        self.endpoint = endpoint
        self.live = live
        self.rest = rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and _route_path(scope) == GRAPHQL_PATH:
            await self.graphql(scope, receive, send)
        elif kind == "websocket":
            if _route_path(scope) == GRAPHQL_PATH:
                await self.live(scope, receive, send)
            else:
                await refuse_websocket(scope, receive, send)
        else:
            await self.rest(scope, receive, send)


async def openapi(request: Request) -> Response:
    """The REST endpoint's OpenAPI document."""
    return Response(openapi_json(), media_type="application/json")


def _route_path(scope: Scope) -> str:
    """The path below the app's root path (uvicorn's --root-path), as Starlette's routing sees it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def create_app(settings: Settings, *, example_query: str | None = None) -> Gateway:
    """The gateway for settings.database_url, which must be set (the CLI resolves the embedded one)."""
    database_url = settings.database_url
    if database_url is None:
        raise ValueError("create_app needs settings.database_url")

    metrics = MetricsOption.parse(settings.metrics_where)
    # GraphiQL sends whatever a developer types: trusted-documents-only holds in production mode.
    trusted_only = settings.trusted_documents_only and not settings.development
    if settings.trusted_documents_only and not trusted_only:
        logger.warning("--trusted-documents-only is not enforced in development mode")
    observer = RequestObserver(metrics_enabled=metrics.enabled)
    # OpenTelemetry's own variables (OTEL_*) turn traces on; None, and nothing on any request's path, when off.
    tracing = Tracing.from_environment(os.environ)
    # Gauges sampled rather than counted per request: refreshed at each scrape and every second.
    samplers = [observer.sample]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        # The pool opens connections on demand: the gateway starts even while the database is down.
        pool = await create_pool(database_url, settings)
        on_query = observer.query_hook()
        database = Database(pool, settings.acquire_timeout, ready=False, on_query=on_query)
        samplers.append(pool_sampler := partial(sample_pool, database))
        # Read replicas, when configured, answer balance lookups; everything else stays on this database.
        database.reads = replicas = await open_replicas(database, database_url, settings)
        try:
            # Migrations run on their own connection (now, or in the background until the database is there).
            async with kept_ready(database_url, database, settings, [observer.sample], replicas=replicas) as readiness:
                # Lifespan state is copied into every request's `request.state`.
                authenticator = ApiKeyAuthenticator(database, settings.api_key_cache_ttl)
                # Each org's own end-user token keys, cached like API keys.
                endpoint.gatekeeper.tokens.use_org_keys(OrgTokenKeys(database, settings.api_key_cache_ttl))
                documents = PersistedDocuments(
                    database,
                    trusted_only=trusted_only,
                    max_per_org=settings.max_persisted_queries,
                    trusted_ttl=settings.api_key_cache_ttl,
                )
                # Live subscriptions: one connection per worker listens to the database's changes, and their
                # lookups read the primary too (a change's notification may come before a replica replays it).
                live = LiveService(database.on_primary(), partial(connect_listener, database_url), settings)
                live.start()
                samplers.append(live.sample)
                # What is alive now (modules, the schema, compiled rules) lives as long as the process:
                # out of the collector's generations, full collections stay short (and so do pauses).
                gc.freeze()
                # A request allocates a few hundred objects; with the default threshold (700) the youngest
                # generation is collected every few requests, while tens of requests are in flight, so their
                # objects are walked and promoted again and again. Collected every 10,000 allocations instead.
                gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
                try:
                    state = AppState(database, authenticator, documents, live)
                    yield {"gateway": state, "readiness": readiness}
                finally:
                    samplers.remove(live.sample)
                    await live.close()
        finally:
            samplers.remove(pool_sampler)
            closing = [database.close(grace=settings.shutdown_grace)]
            if replicas is not None:
                closing.append(replicas.close(grace=settings.shutdown_grace))
            await asyncio.gather(*closing)
            observer.flush()
            if tracing is not None:
                # Spans still queued are exported before the worker exits.
                await asyncio.to_thread(tracing.shutdown)

    endpoint = GraphQLEndpoint(
        schema=schema, root_resolvers=ROOT_RESOLVERS, settings=settings, example_query=example_query
    )
    samplers += [partial(sample_fair_share, endpoint.fair_share), publish_waits]
    rest_endpoint = RestEndpoint(settings, endpoint.gatekeeper, endpoint.fair_share, endpoint.deadlines)
    graphql: ASGIApp = ObservedEndpoint(endpoint, observer, tracing)
    if cors := cors_options(settings):
        graphql = CORSMiddleware(graphql, **cors)
    routes = [
        # Reached only by paths that merely resemble it (Starlette redirects "/graphql/" here).
        Route(GRAPHQL_PATH, graphql),
        # The reference API's own endpoint, on the GraphQL field's path (edge/rest.py).
        Route(REST_PATH, ObservedEndpoint(rest_endpoint, observer, tracing)),
        Route(OPENAPI_PATH, openapi, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if metrics.on_main_port:
        routes.append(Route("/metrics", metrics_endpoint(samplers)))
    if endpoint.graphiql:
        routes.append(graphiql_assets())
    rest = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=cors_middleware(settings),
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    # Pages of the origins CORS lets call may open a WebSocket here too (the server's own pages always may).
    live_endpoint = WebSocketEndpoint(schema, endpoint.gatekeeper, endpoint.documents, allowed_origins(settings))
    return Gateway(graphql, endpoint, live_endpoint, rest)


# Worker processes (serve --workers N) rebuild the app from this variable.
SETTINGS_VARIABLE = "LOYALTY_GATEWAY_WORKER_SETTINGS"


def settings_to_environment(settings: Settings, example_query: str | None) -> str:
    return json.dumps({"settings": settings_to_json(settings), "example_query": example_query})


def create_app_from_environment() -> Gateway:
    handed_over = json.loads(os.environ[SETTINGS_VARIABLE])
    settings = settings_from_json(handed_over["settings"])
    # A worker is a fresh process: it sets up its own logging, as `serve` did.
    configure_logging(settings.log_level, log_format(settings))
    return create_app(settings, example_query=handed_over["example_query"])
