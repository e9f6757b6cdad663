"""GraphiQL in a real headless Chromium, served over a real socket, with the internet cut off.

Every request the page makes that is not for this machine is aborted and
recorded, so a page that needs a CDN fails here instead of in an offline office.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import asyncpg
import httpx
import pytest
from graphql import build_schema, graphql_sync
from playwright.async_api import Browser, Page, Route, WebSocket, async_playwright, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route as StarletteRoute

from gateway.app import create_app
from gateway.config import Settings
from gateway.edge.graphiql import ASSETS_PATH, graphiql_assets, graphiql_page
from tests.factories import Seed
from tests.serving import serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
TIMEOUT_MS = 20_000

STUB_KEY = "test-key"
STUB_SCHEMA = build_schema("type Query { hello: String }")


# --- servers ---------------------------------------------------------------


@dataclass
class StubGateway:
    """The GraphiQL page and assets, in front of a one-field schema that wants the test key."""

    authorizations: list[str | None] = field(default_factory=list)

    def app(self, page: str) -> Starlette:
        async def graphiql(request: Request) -> Response:
            return HTMLResponse(page)

        async def graphql(request: Request) -> Response:
            authorization = request.headers.get("authorization")
            self.authorizations.append(authorization)
            if authorization != f"Bearer {STUB_KEY}":
                return JSONResponse({"errors": [{"message": "missing or wrong API key"}]}, status_code=401)
            body = await request.json()
            result = graphql_sync(
                STUB_SCHEMA,
                body["query"],
                root_value={"hello": "world"},
                variable_values=body.get("variables"),
                operation_name=body.get("operationName"),
            )
            return JSONResponse(result.formatted)

        routes = [
            StarletteRoute("/graphql", graphiql, methods=["GET"]),
            StarletteRoute("/graphql", graphql, methods=["POST"]),
            graphiql_assets(),
        ]
        return Starlette(routes=routes)


# --- browser ---------------------------------------------------------------


@dataclass
class OfflinePage:
    """A browser tab that may only talk to this machine; it records what it tried otherwise."""

    page: Page
    offsite: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def guard(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            await route.continue_()
        else:
            self.offsite.append(route.request.url)
            await route.abort("internetdisconnected")

    def note_websocket(self, websocket: WebSocket) -> None:
        if urlsplit(websocket.url).hostname not in LOCAL_HOSTS:
            self.offsite.append(websocket.url)

    async def open(self, url: str) -> None:
        await self.page.goto(url)
        await expect(self.page.locator(".graphiql-container")).to_be_visible(timeout=TIMEOUT_MS)

    async def editor_value(self, selector: str) -> str:
        editor = self.page.locator(f"{selector} .CodeMirror").first
        value: str = await editor.evaluate("node => node.CodeMirror.getValue()")
        return value

    async def set_editor_value(self, selector: str, value: str) -> None:
        editor = self.page.locator(f"{selector} .CodeMirror").first
        await editor.evaluate("(node, value) => node.CodeMirror.setValue(value)", value)

    async def run_query(self) -> None:
        await self.page.locator(".graphiql-execute-button").click()

    def assert_stayed_local(self) -> None:
        assert self.offsite == [], f"the page reached for the internet: {self.offsite}"
        assert self.errors == [], f"the page raised: {self.errors}"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[OfflinePage]:
    context = await browser.new_context()
    offline = OfflinePage(await context.new_page())
    await context.route("**/*", offline.guard)
    offline.page.on("websocket", offline.note_websocket)
    offline.page.on("pageerror", lambda error: offline.errors.append(str(error)))
    try:
        yield offline
    finally:
        await context.close()


# --- the page against a stub -------------------------------------------------


async def test_graphiql_runs_the_example_query_offline_with_the_prefilled_key(tab: OfflinePage) -> None:
    stub = StubGateway()
    with serve(stub.app(graphiql_page(api_key=STUB_KEY, example_query="{ hello }"))) as base_url:
        await tab.open(f"{base_url}/graphql")
        assert await tab.page.title() == "Loyalty gateway — GraphiQL"
        assert await tab.editor_value(".graphiql-query-editor") == "{ hello }"
        await expect(tab.page.locator(".graphiql-editor-tool")).to_contain_text(f"Bearer {STUB_KEY}")

        await tab.run_query()

        await expect(tab.page.locator(".result-window")).to_contain_text('"world"', timeout=TIMEOUT_MS)
    assert stub.authorizations, "GraphiQL never called the endpoint"
    assert set(stub.authorizations) == {f"Bearer {STUB_KEY}"}
    tab.assert_stayed_local()


async def test_graphiql_without_a_key_explains_where_it_goes_and_is_refused(tab: OfflinePage) -> None:
    stub = StubGateway()
    with serve(stub.app(graphiql_page())) as base_url:
        await tab.open(f"{base_url}/graphql")
        assert '{"Authorization": "Bearer <key>"}' in await tab.editor_value(".graphiql-query-editor")
        await tab.set_editor_value(".graphiql-query-editor", "{ hello }")

        await tab.run_query()

        await expect(tab.page.locator(".result-window")).to_contain_text("missing or wrong API key", timeout=TIMEOUT_MS)
    assert None in stub.authorizations
    tab.assert_stayed_local()


async def test_graphiql_url_parameters_win_over_the_example_query(tab: OfflinePage) -> None:
    stub = StubGateway()
    query = "query Greeting { hello }"
    variables = '{"x": 1}'
    with serve(stub.app(graphiql_page(api_key=STUB_KEY, example_query="{ ignored }"))) as base_url:
        await tab.open(f"{base_url}/graphql?q={quote(query)}&variables={quote(variables)}")
        assert await tab.editor_value(".graphiql-query-editor") == query
        assert await tab.editor_value(".graphiql-editor-tool .graphiql-editor") == variables
    tab.assert_stayed_local()


async def test_graphiql_page_keeps_injected_values_inert(tab: OfflinePage) -> None:
    hostile = "</script><script>window.pwned = true</script><!--"
    page = graphiql_page(api_key=hostile, example_query=hostile, endpoint="/graphql")
    assert hostile not in page
    stub = StubGateway()
    with serve(stub.app(page)) as base_url:
        await tab.open(f"{base_url}/graphql")
        assert await tab.editor_value(".graphiql-query-editor") == hostile
        await expect(tab.page.locator(".graphiql-editor-tool")).to_contain_text("window.pwned")
        assert await tab.page.evaluate("window.pwned") is None
    tab.assert_stayed_local()


async def test_graphiql_assets_are_served_from_the_gateway_and_cached() -> None:
    app = Starlette(routes=[graphiql_assets()])
    page = graphiql_page()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        for url in _asset_urls(page):
            response = await client.get(url)
            assert response.status_code == 200, url
            assert "immutable" in response.headers["cache-control"]
    assert len(_asset_urls(page)) == 7


def _asset_urls(page: str) -> list[str]:
    return re.findall(rf'"({re.escape(ASSETS_PATH)}/[^"]+)"', page)


# --- the page in the real gateway --------------------------------------------

BALANCE_QUERY = """query CustomerBalance {
  pointsBalance(identifiers: [{type: EMAIL, value: "tom@example.com"}], source: INSTORE) {
    entityId
    mainPoints
  }
}"""


async def test_graphiql_in_the_gateway_runs_the_demo_query_offline(
    tab: OfflinePage, database_url: str, connection: asyncpg.Connection
) -> None:
    seed = Seed(connection)
    await seed.org(100737)
    await seed.program(100737, 973, default=True)
    await seed.customer(100737, 565039505, ("INSTORE", None, "EMAIL", "tom@example.com"))
    await seed.balance(100737, 565039505, 973, "8500")
    key = await seed.api_key(100737)
    # Development mode: GraphiQL and the introspection it runs are off in production.
    settings = Settings(database_url=database_url, demo_api_key=key, env="development")
    app = create_app(settings, example_query=BALANCE_QUERY)

    with serve(app) as base_url:
        await tab.open(f"{base_url}/graphql")
        assert await tab.editor_value(".graphiql-query-editor") == BALANCE_QUERY

        await tab.run_query()

        result = tab.page.locator(".result-window")
        await expect(result).to_contain_text('"8500.000"', timeout=TIMEOUT_MS)
        await expect(result).to_contain_text('"565039505"')
        # The schema came through introspection with the key, so the explorer lists the API.
        await tab.page.get_by_role("button", name="Show GraphiQL Explorer").click()
        await expect(tab.page.locator(".graphiql-plugin")).to_contain_text("pointsBalance")
    tab.assert_stayed_local()


async def test_graphiql_in_the_gateway_runs_a_subscription_live(
    tab: OfflinePage, database_url: str, connection: asyncpg.Connection
) -> None:
    """A subscription typed in GraphiQL goes over the gateway's WebSocket with the Headers tab's key, and the
    result pane follows the balance as it changes."""
    seed = Seed(connection)
    await seed.org(100737)
    await seed.program(100737, 973, default=True)
    await seed.customer(100737, 565039505, ("INSTORE", None, "EMAIL", "tom@example.com"))
    await seed.balance(100737, 565039505, 973, "8500")
    key = await seed.api_key(100737)
    settings = Settings(database_url=database_url, demo_api_key=key, env="development")
    subscription = BALANCE_QUERY.replace("query", "subscription", 1)
    assert subscription.startswith("subscription")

    with serve(create_app(settings, example_query=subscription)) as base_url:
        await tab.open(f"{base_url}/graphql")
        await tab.run_query()
        result = tab.page.locator(".result-window")
        await expect(result).to_contain_text('"8500.000"', timeout=TIMEOUT_MS)
        await connection.execute("UPDATE balances SET main_points = 8501 WHERE entity_id = 565039505")
        await expect(result).to_contain_text('"8501.000"', timeout=TIMEOUT_MS)
    tab.assert_stayed_local()
