"""GraphQL over HTTP: methods, bodies, error codes, request ids, and a database that goes away."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.config import Settings
from tests.factories import GRAPHQL_CLIENT_HEADERS, Seed, is_json
from tests.relay import Relay

ORG = 100737
TOM = 565039505
LOOKUP = """
query ($identifiers: [IdentifierInput!]!, $source: Source!) {
  pointsBalance(identifiers: $identifiers, source: $source) { entityId mainPoints }
}
"""
TOM_VARIABLES = {"identifiers": [{"type": "ID", "value": str(TOM)}], "source": "INSTORE"}
# What must never reach a client: driver, SQL and Python internals.
INTERNALS = re.compile(r"asyncpg|Traceback|\bSELECT\b|\bunnest\b|(?i:postgres)|\.py\b|File \"|0x[0-9a-f]{6,}")


@pytest.fixture
async def key(gateway: Any) -> str:
    seed = gateway.seed
    await seed.org(ORG)
    await seed.program(ORG, 973, default=True)
    await seed.customer(ORG, TOM, ("INSTORE", None, "EMAIL", "tom@example.com"))
    await seed.balance(ORG, TOM, 973, "8500")
    return await seed.api_key(ORG)


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def error_code(response: httpx.Response) -> str:
    """The code of a response's first error; also checks the response is JSON and leaks nothing."""
    assert is_json(response), response.headers
    assert not INTERNALS.search(response.text), response.text
    body = response.json()
    assert isinstance(body, dict)
    code = body["errors"][0]["extensions"]["code"]
    assert isinstance(body["errors"][0]["message"], str)
    return code


# --- GET and POST -------------------------------------------------------------------------------------------------


async def test_post_with_a_json_body_answers(gateway, key):
    response = await gateway.query(LOOKUP, TOM_VARIABLES, key=key)
    assert response.status_code == 200
    assert is_json(response)
    assert response.json() == {"data": {"pointsBalance": {"entityId": str(TOM), "mainPoints": "8500.000"}}}


async def test_get_with_query_and_variables_in_the_query_string_answers(gateway, key):
    params = {"query": LOOKUP, "variables": json.dumps(TOM_VARIABLES)}
    response = await gateway.client.get("/graphql", params=params, headers=auth(key))
    assert response.status_code == 200
    assert response.json() == {"data": {"pointsBalance": {"entityId": str(TOM), "mainPoints": "8500.000"}}}


async def test_get_with_a_literal_query_answers(gateway, key):
    query = '{ pointsBalance(identifiers: [{type: EMAIL, value: "TOM@example.com"}], source: INSTORE) { entityId } }'
    response = await gateway.client.get("/graphql", params={"query": query}, headers=auth(key))
    assert response.json() == {"data": {"pointsBalance": {"entityId": str(TOM)}}}


@pytest.mark.parametrize("variables", ["{", "[1]", '"x"', "{'a': 1}"])
async def test_get_with_variables_that_are_not_a_json_object_is_a_bad_request(gateway, key, variables):
    response = await gateway.client.get("/graphql", params={"query": LOOKUP, "variables": variables}, headers=auth(key))
    assert 400 <= response.status_code < 500
    assert error_code(response) == "BAD_REQUEST"


async def test_get_without_a_query_from_a_program_is_a_bad_request(gateway, key):
    response = await gateway.client.get("/graphql", headers={**auth(key), "accept": "application/json"})
    assert response.status_code == 400
    assert error_code(response) == "BAD_REQUEST"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405(gateway, key, method):
    response = await gateway.client.request(method, "/graphql", json={"query": "{ __typename }"}, headers=auth(key))
    assert response.status_code == 405
    assert error_code(response)
    assert response.headers["x-request-id"]


# Deeper than orjson parses (1024 levels), small enough for the 64 KiB body limit.
DEEP = 5_000


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{", "application/json"),
        (b'{"query": "{ __typename }"', "application/json"),
        (b"", "application/json"),
        (b"null", "application/json"),
        (b"1", "application/json"),
        (b'"x"', "application/json"),
        (b"[]", "application/json"),
        (b"[{}]", "application/json"),
        (b'[{"query": "{ __typename }"}]', "application/json"),
        (b'{"query": "\xff\xfe"}', "application/json"),
        (b'{"query": "{ __typename }", "variables": {"a": "\xc3\x28"}}', "application/json"),
        (b"[" * DEEP + b"]" * DEEP, "application/json"),
        (b'{"v": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}", "application/json"),
        (b'{"query": "{ __typename }"}', "text/plain"),
        (b'{"query": "{ __typename }"}', "application/x-www-form-urlencoded"),
        (b'{"query": "{ __typename }"}', None),
        (b"query=%7B__typename%7D", "application/x-www-form-urlencoded"),
        (b"{}", "application/json"),
        (b'{"query": null}', "application/json"),
        (b'{"query": ""}', "application/json"),
        (b'{"query": 1}', "application/json"),
        (b'{"query": ["{ __typename }"]}', "application/json"),
        (b'{"query": "{ __typename }", "variables": [1]}', "application/json"),
        (b'{"query": "{ __typename }", "variables": "{}"}', "application/json"),
        (b'{"query": "{ __typename }", "operationName": 1}', "application/json"),
    ],
    ids=[
        "truncated JSON",
        "unclosed object",
        "empty body",
        "null",
        "number",
        "string",
        "empty list",
        "list of an empty object",
        "batch",
        "invalid UTF-8 in the query",
        "invalid UTF-8 in variables",
        "deeply nested list",
        "deeply nested object",
        "text/plain",
        "form content type",
        "no content type",
        "form body",
        "no query",
        "null query",
        "empty query",
        "query is a number",
        "query is a list",
        "variables is a list",
        "variables is a string",
        "operationName is a number",
    ],
)
async def test_a_body_that_is_not_a_graphql_request_is_a_json_4xx(gateway, key, content, content_type):
    headers = auth(key)
    if content_type is not None:
        headers["content-type"] = content_type
    response = await gateway.client.post("/graphql", content=content, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert error_code(response) == "BAD_REQUEST"
    assert "data" not in response.json()


@pytest.mark.parametrize("name", ["upper-cost", "nope"])
async def test_an_operation_name_the_document_lacks_is_a_bad_request_whatever_ran_before(gateway, key, name):
    # A null directive variable: graphql-core runs the document, and the gateway keeps what it learnt about it.
    query = "query ($x: Boolean = true) { __typename @include(if: $x) }"
    first = await gateway.query(query, {"x": None}, key=key)
    assert first.status_code == 200, first.text
    for _ in range(2):
        response = await gateway.query(query, {"x": None}, key=key, operationName=name)
        assert response.status_code == 400, response.text
        assert error_code(response) == "BAD_REQUEST"
        assert response.json()["errors"][0]["message"] == f"the document has no operation named {name!r}"


# --- GraphQL's own errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["{ pointsBalance(", "{ pointsBalance(identifiers: [}", "query {", "}", "{ a: }", "x" * 10, "{ " * 10_000 + "}"],
)
async def test_a_syntax_error_is_graphql_parse_failed(gateway, key, query):
    response = await gateway.query(query, key=key)
    assert error_code(response) == "GRAPHQL_PARSE_FAILED"
    assert "data" not in response.json()


async def test_a_deeply_nested_argument_is_graphql_parse_failed(gateway, key):
    depth = 10_000
    query = "{ pointsBalance(identifiers: " + "[" * depth + "]" * depth + ", source: INSTORE) { entityId } }"
    response = await gateway.query(query, key=key)
    assert error_code(response) == "GRAPHQL_PARSE_FAILED"


@pytest.mark.parametrize(
    "query",
    [
        "{ nope }",
        "{ pointsBalance(identifiers: [], source: INSTORE) { nope } }",
        "{ pointsBalance(identifiers: [], source: INSTORE, nope: 1) { entityId } }",
        "{ pointsBalance(source: INSTORE) { entityId } }",
        "{ pointsBalance(identifiers: [], source: INSTORE) }",
        "{ pointsBalance(identifiers: [], source: NOWHERE) { entityId } }",
        '{ pointsBalance(identifiers: [{type: FAX, value: "1"}], source: INSTORE) { entityId } }',
        "{ pointsBalance(identifiers: [], source: INSTORE, programId: 99999999999) { entityId } }",
        "query ($t: String!) { pointsBalance(identifiers: [], source: INSTORE, entityType: $t) { entityId } }",
        "query ($unused: Int) { __typename }",
        "{ pointsBalance(identifiers: [], source: $undefined) { entityId } }",
        "mutation { anything }",
        "subscription { anything }",
    ],
    ids=[
        "unknown root field",
        "unknown sub-field",
        "unknown argument",
        "missing argument",
        "missing selection",
        "unknown source",
        "unknown identifier type",
        "program id beyond Int",
        "variable of the wrong type",
        "unused variable",
        "undefined variable",
        "mutation",
        "subscription",
    ],
)
async def test_an_invalid_document_is_graphql_validation_failed(gateway, key, query):
    response = await gateway.query(query, key=key)
    assert error_code(response) == "GRAPHQL_VALIDATION_FAILED"
    assert "data" not in response.json()


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"identifiers": None, "source": "INSTORE"},
        {"identifiers": "x", "source": "INSTORE"},
        {"identifiers": [{"type": "ID"}], "source": "INSTORE"},
        {"identifiers": [{"type": "ID", "value": "1", "extra": 1}], "source": "INSTORE"},
        {"identifiers": [{"type": "FAX", "value": "1"}], "source": "INSTORE"},
        {"identifiers": [{"type": "ID", "value": 1}], "source": "INSTORE"},
        {"identifiers": [], "source": "NOWHERE"},
        {"identifiers": [], "source": 5},
        {"identifiers": json.loads("[" * 500 + "]" * 500), "source": "INSTORE"},
    ],
    ids=[
        "missing",
        "null",
        "not a list",
        "missing value",
        "unknown field",
        "unknown identifier type",
        "number value",
        "unknown source",
        "number source",
        "deeply nested",
    ],
)
async def test_an_invalid_variable_value_is_bad_user_input(gateway, key, variables):
    response = await gateway.query(LOOKUP, variables, key=key)
    assert error_code(response) == "BAD_USER_INPUT"
    assert "data" not in response.json()


# --- request ids --------------------------------------------------------------------------------------------------


async def _error_responses(gateway: Any, key: str, headers: dict[str, str]) -> dict[str, httpx.Response]:
    client = gateway.client
    return {
        "no key": await client.post("/graphql", json={"query": "{ __typename }"}, headers=headers),
        "bad JSON": await client.post(
            "/graphql", content=b"{", headers={**auth(key), **headers, "content-type": "application/json"}
        ),
        "PUT": await client.put("/graphql", json={"query": "{ __typename }"}, headers={**auth(key), **headers}),
        "syntax error": await client.post("/graphql", json={"query": "{"}, headers={**auth(key), **headers}),
        "lookup error": await client.post(
            "/graphql",
            json={"query": LOOKUP, "variables": {**TOM_VARIABLES, "identifiers": []}},
            headers={**auth(key), **headers},
        ),
    }


async def test_every_error_response_carries_a_request_id(gateway, key):
    for name, response in (await _error_responses(gateway, key, {})).items():
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers.get("x-request-id", "")), name
        assert error_code(response), name


async def test_an_incoming_request_id_is_echoed(gateway, key):
    headers = {"x-request-id": "req-2024-06-01T12:00:00Z/abc"}
    for name, response in (await _error_responses(gateway, key, headers)).items():
        assert response.headers.get("x-request-id") == headers["x-request-id"], name
    answered = await gateway.client.post(
        "/graphql", json={"query": LOOKUP, "variables": TOM_VARIABLES}, headers={**auth(key), **headers}
    )
    assert answered.status_code == 200
    assert answered.headers["x-request-id"] == headers["x-request-id"]


@pytest.mark.parametrize("incoming", [b"x" * 129, b"tab\there", "caf\u00e9".encode()])
async def test_an_unusable_incoming_request_id_is_replaced(gateway, key, incoming):
    response = await gateway.client.post(
        "/graphql", json={"query": "{"}, headers={**auth(key), "x-request-id": incoming}
    )
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_request_ids_differ_between_requests(gateway, key):
    first = await gateway.query("{", key=key)
    second = await gateway.query("{", key=key)
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


# --- a database that cannot be reached ----------------------------------------------------------------------------

ACQUIRE_TIMEOUT = 1.0
# Generous: the point is "bounded by the acquire timeout", not a benchmark of a loaded test machine.
PROMPTLY = ACQUIRE_TIMEOUT + 3.0


@dataclass
class Outage:
    client: httpx.AsyncClient
    relay: Relay
    seed: Seed

    async def lookup(self, key: str, identifiers: list[dict[str, str]] | None = None) -> tuple[httpx.Response, float]:
        variables = {**TOM_VARIABLES, **({"identifiers": identifiers} if identifiers is not None else {})}
        started = time.monotonic()
        request = self.client.post("/graphql", json={"query": LOOKUP, "variables": variables}, headers=auth(key))
        try:
            response = await asyncio.wait_for(request, timeout=PROMPTLY + 10)
        except TimeoutError:
            pytest.fail(
                f"no answer within {PROMPTLY + 10} s: nothing bounds how long the gateway waits for the database"
            )
        return response, time.monotonic() - started


@pytest.fixture
async def outage(database_url: str, connection: Any) -> AsyncIterator[Outage]:
    """The real app, whose database address is a Relay the test can take away."""
    relay = Relay(database_url)
    await relay.start()
    settings = Settings(
        database_url=relay.url, acquire_timeout=ACQUIRE_TIMEOUT, pool_min_size=1, pool_max_size=2, api_key_cache_ttl=600
    )
    try:
        async with LifespanManager(create_app(settings)) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://gateway", headers=GRAPHQL_CLIENT_HEADERS
            ) as client:
                seed = Seed(connection)
                await seed.org(ORG)
                await seed.program(ORG, 973, default=True)
                await seed.customer(ORG, TOM)
                yield Outage(client, relay, seed)
                # Free whatever still waits on the relay before the pool closes.
                await relay.cut()
    finally:
        await relay.close()


def assert_service_unavailable(response: httpx.Response, elapsed: float) -> dict[str, Any]:
    assert elapsed < PROMPTLY, elapsed
    assert response.status_code == 503, response.text
    assert error_code(response) == "SERVICE_UNAVAILABLE"
    assert not re.search(r"refused|No such file|errno|timeout", response.text, re.IGNORECASE), response.text
    assert response.headers["x-request-id"]
    return response.json()


async def test_an_unreachable_database_is_service_unavailable(outage):
    """Nobody listens at the database's address any more (the app started while it still could migrate).

    A key the gateway already trusts gets as far as the lookup; a key it has
    yet to check fails at authentication. Both answer 503 with
    SERVICE_UNAVAILABLE at once, and validation needs no database at all.
    """
    trusted = await outage.seed.api_key(ORG)
    unchecked = await outage.seed.api_key(ORG)
    response, _ = await outage.lookup(trusted)
    assert response.json() == {"data": {"pointsBalance": {"entityId": str(TOM), "mainPoints": "0.000"}}}

    await outage.relay.cut()

    body = assert_service_unavailable(*await outage.lookup(trusted))
    assert body["data"] == {"pointsBalance": None}
    assert body["errors"][0]["path"] == ["pointsBalance"]

    body = assert_service_unavailable(*await outage.lookup(unchecked))
    assert "data" not in body

    response, _ = await outage.lookup(trusted, identifiers=[])
    assert response.json()["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT"}


async def test_a_database_that_accepts_but_never_answers_is_service_unavailable_in_time(outage):
    """The address accepts connections again but nothing ever answers: the acquire timeout bounds the wait."""
    trusted = await outage.seed.api_key(ORG)
    assert (await outage.lookup(trusted))[0].status_code == 200
    await outage.relay.hang()
    response, elapsed = await outage.lookup(trusted)
    assert_service_unavailable(response, elapsed)
    assert elapsed >= ACQUIRE_TIMEOUT * 0.9


async def test_a_database_that_stops_answering_mid_connection_is_service_unavailable_in_time(outage):
    """The pooled connection stays open but nothing comes back (a network partition, a stuck server).

    Acquiring that connection succeeds at once, so only a timeout on the
    statement itself can bound the wait.
    """
    trusted = await outage.seed.api_key(ORG)
    assert (await outage.lookup(trusted))[0].status_code == 200
    outage.relay.stall()
    assert_service_unavailable(*await outage.lookup(trusted))
