"""Request limits: each refused with a 4xx and a clear code before any lookup runs.

Limits are small here where that makes the tests easy to read; the defaults
themselves are checked too.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from graphql import get_introspection_query

from gateway.access.deadlines import Deadlines, absorb_late_cancellation
from gateway.app import Gateway, create_app
from gateway.config import Settings
from gateway.edge.graphql import GraphQLEndpoint
from tests.factories import GRAPHQL_CLIENT_HEADERS, Seed, is_json

ORG = 100737
TOM = 565039505
INTERNALS = re.compile(r"asyncpg|Traceback|\bSELECT\b|balances|(?i:postgres)|\.py\b|relation")

LOOKUP = f'{{ pointsBalance(identifiers: [{{type: ID, value: "{TOM}"}}], source: INSTORE) {{ entityId mainPoints }} }}'
VARIABLE_LOOKUP = """
query ($identifiers: [IdentifierInput!]!, $source: Source!) {
  pointsBalance(identifiers: $identifiers, source: $source) { entityId mainPoints }
}
"""


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


class App:
    """The real app in process, with its endpoint at hand (to count validations)."""

    def __init__(self, client: httpx.AsyncClient, endpoint: GraphQLEndpoint, seed: Seed, key: str) -> None:
        self.client = client
        self.endpoint = endpoint
        self.seed = seed
        self.key = key

    async def post(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.client.post("/graphql", json=body, headers={"authorization": f"Bearer {self.key}", **headers})

    async def query(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.post(body)


@pytest.fixture
async def app(settings: Settings, connection: asyncpg.Connection) -> AsyncIterator[App]:
    seed = Seed(connection)
    await seed.org(ORG)
    await seed.program(ORG, 973, default=True)
    await seed.customer(ORG, TOM, ("INSTORE", None, "EMAIL", "tom@example.com"))
    await seed.balance(ORG, TOM, 973, "8500")
    key = await seed.api_key(ORG)
    application = create_app(settings)
    endpoint = graphql_endpoint(application)
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers=GRAPHQL_CLIENT_HEADERS
        ) as client:
            yield App(client, endpoint, seed, key)


def graphql_endpoint(application: Gateway) -> GraphQLEndpoint:
    return application.endpoint


def refusal(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert is_json(response)
    body = response.json()
    assert "data" not in body, body
    assert body["errors"][0]["extensions"]["code"] == code, body
    assert not INTERNALS.search(response.text), response.text
    return body


# pointsBalance > programs > promisedPointsBreakup > delayedAccrualPoints: 4 fields deep.
FOUR_DEEP = (
    f'{{ pointsBalance(identifiers: [{{type: ID, value: "{TOM}"}}], source: INSTORE) '
    "{ programs { promisedPointsBreakup { delayedAccrualPoints } } } }"
)


def aliased(count: int) -> str:
    fields = " ".join(
        f'a{n}: pointsBalance(identifiers: [{{type: ID, value: "{TOM}"}}], source: INSTORE) {{ mainPoints }}'
        for n in range(count)
    )
    return "{ " + fields + " }"


# --- defaults -----------------------------------------------------------------------------------------------------


def test_the_defaults_are_the_documented_ones():
    settings = Settings()
    assert settings.max_body_bytes == 64 * 1024
    assert settings.max_tokens == 4000
    assert settings.max_depth == 8
    assert settings.max_aliases == 60
    assert settings.max_root_fields == 60
    assert settings.max_string_length == 1024
    assert settings.request_timeout == 5.0
    assert not settings.development


# --- body size ----------------------------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_payload_too_large(app):
    query = "{ __typename }" + " " * (64 * 1024)
    response = await app.post({"query": query})
    refusal(response, 413, "PAYLOAD_TOO_LARGE")
    assert response.headers["connection"] == "close"


async def test_a_body_just_under_the_limit_is_read(app):
    padding = 64 * 1024 - 200
    response = await app.post({"query": LOOKUP + " " * padding})
    assert len(response.request.content) < 64 * 1024
    assert response.status_code == 200, response.text


async def test_a_declared_content_length_over_the_limit_is_refused_before_the_body_is_read(app):
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(100):
            sent.append(1)
            yield b" " * 65536

    response = await app.client.post(
        "/graphql",
        content=body(),
        headers={
            "authorization": f"Bearer {app.key}",
            "content-type": "application/json",
            "content-length": str(100 * 65536),
        },
    )
    refusal(response, 413, "PAYLOAD_TOO_LARGE")


async def test_a_chunked_body_is_cut_off_at_the_limit(app):
    """No Content-Length: the body is refused as soon as it passes the limit, not read whole."""
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"query": "{ __typename }", "padding": "'
        for _ in range(1000):
            sent += 16384
            yield b"x" * 16384

    response = await app.client.post(
        "/graphql",
        content=body(),
        headers={"authorization": f"Bearer {app.key}", "content-type": "application/json"},
    )
    refusal(response, 413, "PAYLOAD_TOO_LARGE")
    assert "content-length" not in response.request.headers


async def test_a_bad_content_length_is_a_bad_request(app):
    response = await app.client.post(
        "/graphql",
        content=b'{"query": "{ __typename }"}',
        headers={"authorization": f"Bearer {app.key}", "content-type": "application/json", "content-length": "-1"},
    )
    assert 400 <= response.status_code < 500


class TestSmallBodyLimit:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, max_body_bytes=300)

    async def test_the_body_limit_is_configurable(self, app):
        assert (await app.query("{ __typename }")).status_code == 200
        refusal(await app.query("{ __typename }" + " " * 300), 413, "PAYLOAD_TOO_LARGE")

    async def test_a_query_string_over_the_limit_is_uri_too_long(self, app):
        headers = {"authorization": f"Bearer {app.key}"}
        assert (await app.client.get("/graphql", params={"query": "{ __typename }"}, headers=headers)).is_success
        response = await app.client.get("/graphql", params={"query": "{ __typename }" + " " * 300}, headers=headers)
        refusal(response, 414, "PAYLOAD_TOO_LARGE")


# --- tokens, depth, aliases, root fields ---------------------------------------------------------------------------


async def test_a_document_over_the_token_limit_is_query_too_complex(app):
    query = "{ " + "__typename " * 4001 + "}"
    body = refusal(await app.query(query), 400, "QUERY_TOO_COMPLEX")
    assert "4000 tokens" in body["errors"][0]["message"]


async def test_comments_count_as_tokens(app):
    query = "{ __typename }\n" + "#\n" * 4001
    refusal(await app.query(query), 400, "QUERY_TOO_COMPLEX")


async def test_a_document_under_the_token_limit_is_answered(app):
    query = "{ __typename }\n" + "#\n" * 3990
    assert (await app.query(query)).json() == {"data": {"__typename": "Query"}}


async def test_a_syntax_error_stays_a_parse_error(app):
    refusal(await app.query("{ pointsBalance("), 400, "GRAPHQL_PARSE_FAILED")


class TestDepth:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, max_depth=3)

    async def test_a_query_deeper_than_the_limit_is_query_too_complex(self, app):
        body = refusal(await app.query(FOUR_DEEP), 400, "QUERY_TOO_COMPLEX")
        assert "4 fields deep" in body["errors"][0]["message"]
        assert body["errors"][0]["locations"]

    async def test_a_query_at_the_limit_is_answered(self, app):
        query = f'{{ pointsBalance(identifiers: [{{type: ID, value: "{TOM}"}}], source: INSTORE) {{ programs {{ programId }} }} }}'  # noqa: E501
        response = await app.query(query)
        assert response.status_code == 200, response.text

    async def test_fragments_do_not_hide_depth(self, app):
        query = """
        { pointsBalance(identifiers: [{type: ID, value: "1"}], source: INSTORE) { ...Programs } }
        fragment Programs on PointsBalance { programs { ... on ProgramBalance { ...Breakup } } }
        fragment Breakup on ProgramBalance { promisedPointsBreakup { delayedAccrualPoints } }
        """
        refusal(await app.query(query), 400, "QUERY_TOO_COMPLEX")

    async def test_a_fragment_cycle_is_a_validation_error_not_a_hang(self, app):
        query = """
        { pointsBalance(identifiers: [{type: ID, value: "1"}], source: INSTORE) { ...A } }
        fragment A on PointsBalance { programs { programId } ...B }
        fragment B on PointsBalance { ...A }
        """
        refusal(await app.query(query), 400, "GRAPHQL_VALIDATION_FAILED")


async def test_the_default_depth_refuses_nine_levels_of_introspection_outside_introspection_fields(app):
    # pointsBalance is 4 deep at most: nine levels can only be reached through introspection,
    # which production refuses altogether.
    query = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }"
    refusal(await app.query(query), 400, "GRAPHQL_VALIDATION_FAILED")


class TestDevelopmentIntrospection:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, env="development")

    async def test_the_standard_introspection_query_fits_the_limits(self, app):
        """GraphiQL's introspection query is 15 fields deep: introspection fields may go that deep."""
        response = await app.query(get_introspection_query(descriptions=True))
        assert response.status_code == 200, response.text[:500]
        assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"

    async def test_introspection_deeper_than_fifteen_is_query_too_complex(self, app):
        query = "{ __schema { types { " + "fields { type { " * 8 + "name" + " } }" * 8 + " } } }"
        refusal(await app.query(query), 400, "QUERY_TOO_COMPLEX")


async def test_fifty_aliased_lookups_are_answered_in_one_request(app):
    response = await app.query(aliased(50))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert len(data) == 50
    assert all(value == {"mainPoints": "8500.000"} for value in data.values())


async def test_fifty_fully_selected_lookups_with_their_own_variables_fit_every_limit(app):
    """The batching benchmark's request shape, with every field of the schema."""
    fields = (
        "entityId entityType mainPoints promisedPoints totalPoints warnings "
        "promisedPointsBreakup { delayedAccrualPoints externalTriggerBasedPoints } "
        "programs { programId programName isDefault mainPoints promisedPoints totalPoints "
        "promisedPointsBreakup { delayedAccrualPoints externalTriggerBasedPoints } }"
    )
    definitions = ", ".join(f"$ids{i}: [IdentifierInput!]!, $source{i}: Source!" for i in range(50))
    lookups = " ".join(
        f"b{i}: pointsBalance(identifiers: $ids{i}, source: $source{i}) {{ {fields} }}" for i in range(50)
    )
    variables: dict[str, Any] = {}
    for i in range(50):
        variables[f"ids{i}"] = [{"type": "EMAIL", "value": "tom@example.com"}]
        variables[f"source{i}"] = "INSTORE"
    response = await app.post({"query": f"query Balances({definitions}) {{ {lookups} }}", "variables": variables})
    assert response.status_code == 200, response.text[:300]
    data = response.json()["data"]
    assert len(data) == 50 and all(value["entityId"] == str(TOM) for value in data.values())


async def test_more_aliases_than_the_limit_is_query_too_complex(app):
    body = refusal(await app.query(aliased(61)), 400, "QUERY_TOO_COMPLEX")
    # 61 root fields as well: both limits say so.
    assert {error["extensions"]["code"] for error in body["errors"]} == {"QUERY_TOO_COMPLEX"}
    assert any("more than 60 aliases" in error["message"] for error in body["errors"])


async def test_aliases_inside_fragments_count(app):
    fields = " ".join(f"m{n}: mainPoints" for n in range(61))
    query = (
        f'{{ pointsBalance(identifiers: [{{type: ID, value: "{TOM}"}}], source: INSTORE) {{ ...F }} }}'
        f" fragment F on PointsBalance {{ {fields} }}"
    )
    refusal(await app.query(query), 400, "QUERY_TOO_COMPLEX")


async def test_more_root_fields_than_the_limit_is_query_too_complex(app):
    query = "{ " + " ".join(["__typename"] * 61) + " }"
    body = refusal(await app.query(query), 400, "QUERY_TOO_COMPLEX")
    assert "61 root fields" in body["errors"][0]["message"]


async def test_root_fields_spread_from_fragments_count(app):
    query = (
        "{ ...A ...B }"
        " fragment A on Query { " + " ".join(["__typename"] * 31) + " }"
        " fragment B on Query { " + " ".join(["__typename"] * 31) + " }"
    )
    refusal(await app.query(query), 400, "QUERY_TOO_COMPLEX")


class TestSmallAliasAndRootLimits:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, max_aliases=2, max_root_fields=3)

    async def test_the_alias_limit_is_configurable(self, app):
        assert (await app.query(aliased(2))).status_code == 200
        refusal(await app.query(aliased(3)), 400, "QUERY_TOO_COMPLEX")

    async def test_the_root_field_limit_is_configurable(self, app):
        assert (await app.query("{ __typename __typename __typename }")).status_code == 200
        refusal(await app.query("{ __typename __typename __typename __typename }"), 400, "QUERY_TOO_COMPLEX")


# --- string lengths -----------------------------------------------------------------------------------------------


async def test_a_string_literal_over_the_limit_is_bad_user_input(app):
    value = "x" * 1025
    query = f'{{ pointsBalance(identifiers: [{{type: EMAIL, value: "{value}"}}], source: INSTORE) {{ entityId }} }}'
    body = refusal(await app.query(query), 400, "BAD_USER_INPUT")
    assert "1024 characters" in body["errors"][0]["message"]


async def test_a_string_variable_over_the_limit_is_bad_user_input(app):
    variables = {"identifiers": [{"type": "EMAIL", "value": "x" * 1025}], "source": "INSTORE"}
    refusal(await app.query(VARIABLE_LOOKUP, variables), 400, "BAD_USER_INPUT")


async def test_a_long_string_deep_in_unused_variables_is_refused_too(app):
    variables = {"identifiers": [{"type": "ID", "value": str(TOM)}], "source": "INSTORE", "x": [[{"y": "z" * 2000}]]}
    refusal(await app.query(VARIABLE_LOOKUP, variables), 400, "BAD_USER_INPUT")


async def test_a_long_variable_name_is_refused(app):
    variables = {"identifiers": [{"type": "ID", "value": str(TOM)}], "source": "INSTORE", "k" * 2000: 1}
    refusal(await app.query(VARIABLE_LOOKUP, variables), 400, "BAD_USER_INPUT")


async def test_a_string_at_the_limit_reaches_the_lookup_rules(app):
    # 1024 characters pass the request limit; the lookup's own rule (256) then answers for that field.
    variables = {"identifiers": [{"type": "EMAIL", "value": "x" * 1024}], "source": "INSTORE"}
    response = await app.query(VARIABLE_LOOKUP, variables)
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert response.json()["data"] == {"pointsBalance": None}


async def test_deeply_nested_variables_are_walked_without_recursion(app):
    deep: Any = "x" * 10
    for _ in range(900):
        deep = [deep]
    variables = {"identifiers": [{"type": "ID", "value": str(TOM)}], "source": "INSTORE", "deep": deep}
    response = await app.query(VARIABLE_LOOKUP, variables)
    assert response.status_code == 200, response.text


# --- validated once -----------------------------------------------------------------------------------------------


async def test_a_repeated_document_is_parsed_and_validated_once(app):
    documents = app.endpoint.documents
    before = documents.validations
    for _ in range(20):
        response = await app.query(LOOKUP)
        assert response.json() == {"data": {"pointsBalance": {"entityId": str(TOM), "mainPoints": "8500.000"}}}
    for _ in range(5):
        variables = {"identifiers": [{"type": "ID", "value": str(TOM)}], "source": "INSTORE"}
        assert (await app.query(VARIABLE_LOOKUP, variables)).status_code == 200
    assert documents.validations - before == 2


async def test_a_repeated_document_over_a_limit_is_refused_every_time_but_validated_once(app):
    documents = app.endpoint.documents
    before = documents.validations
    for _ in range(5):
        refusal(await app.query(aliased(61)), 400, "QUERY_TOO_COMPLEX")
    assert documents.validations - before == 1


async def test_the_document_cache_is_bounded_by_tokens(app):
    documents = app.endpoint.documents
    for n in range(120):
        # ~1000 tokens each: 120 of them are more than the cache keeps.
        query = f"{{ n{n}: __typename }}\n" + "#\n" * 1000
        assert (await app.query(query)).status_code == 200
    assert documents._weight <= documents._max_weight
    assert len(documents._documents) < 120


# --- deadline -----------------------------------------------------------------------------------------------------


class TestDeadline:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, request_timeout=0.5, statement_timeout=10.0)

    async def test_a_request_past_its_deadline_is_a_timeout_and_its_statement_is_cancelled(
        self, app, database_url, connection
    ):
        assert (await app.query(LOOKUP)).status_code == 200  # the key is now cached
        locker = await asyncpg.connect(database_url)
        try:
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute("LOCK TABLE balances IN ACCESS EXCLUSIVE MODE")
            started = asyncio.get_running_loop().time()
            response = await app.query(LOOKUP)
            elapsed = asyncio.get_running_loop().time() - started
            refusal(response, 504, "TIMEOUT")
            assert 0.4 <= elapsed < 2.0, elapsed
            # The statement the request started is cancelled, not left waiting on the lock.
            for _ in range(40):
                waiting = await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'loyalty-gateway'"
                    " AND state = 'active' AND query LIKE '%WITH lookups%'"
                )
                if waiting == 0:
                    break
                await asyncio.sleep(0.05)
            assert waiting == 0
            await transaction.rollback()
        finally:
            await locker.close()
        # The pool's connection is usable again.
        answered = await app.query(LOOKUP)
        assert answered.status_code == 200, answered.text


# --- faults below the resolver ------------------------------------------------------------------------------------


async def test_a_fault_in_the_database_is_masked_with_a_request_id_that_the_log_explains(app, connection, caplog):
    await connection.execute("ALTER TABLE balances RENAME TO balances_moved")
    with caplog.at_level(logging.ERROR, logger="gateway.edge.graphql"):
        response = await app.post({"query": LOOKUP}, **{"x-request-id": "fault-42"})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"pointsBalance": None}
    error = body["errors"][0]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "fault-42"}
    assert "fault-42" in error["message"]
    assert not INTERNALS.search(response.text), response.text
    logged = [record for record in caplog.records if "fault-42" in record.getMessage()]
    assert logged, caplog.text
    assert logged[0].exc_info is not None
    assert isinstance(logged[0].exc_info[1], asyncpg.UndefinedTableError)


async def test_a_fault_outside_execution_is_a_json_500_with_a_request_id(app, monkeypatch, caplog):
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.endpoint.executor, "run", broken)
    with caplog.at_level(logging.ERROR, logger="gateway.edge.graphql"):
        response = await app.post({"query": LOOKUP}, **{"x-request-id": "fault-43"})
    body = refusal(response, 500, "INTERNAL_SERVER_ERROR")
    assert body["errors"][0]["extensions"]["requestId"] == "fault-43"
    assert response.headers["x-request-id"] == "fault-43"
    assert "secret internals" not in response.text
    logged = [record for record in caplog.records if "fault-43" in record.getMessage()]
    assert logged and isinstance(logged[0].exc_info[1], RuntimeError), caplog.text


# --- the deadline's bookkeeping -----------------------------------------------------------------------------------


async def test_a_deadline_cancels_only_the_tasks_past_it():
    deadlines = Deadlines(0.2, tick=0.05)

    async def request(work: float) -> str:
        task = deadlines.begin()
        try:
            await asyncio.sleep(work)
        except asyncio.CancelledError:
            assert deadlines.end(task)
            task.uncancel()
            return "timed out"
        assert not deadlines.end(task)
        return "answered"

    started = asyncio.get_running_loop().time()
    assert await asyncio.gather(request(0.05), request(5), request(0.1)) == ["answered", "timed out", "answered"]
    assert asyncio.get_running_loop().time() - started < 0.5


async def test_a_deadline_striking_as_the_answer_is_ready_is_taken_back():
    deadlines = Deadlines(10)
    task = deadlines.begin()
    # The sweep finds the task past its deadline while it runs, not awaiting: a cancellation is left pending.
    deadlines._running[task] = 0.0
    deadlines._sweep()
    assert deadlines.end(task)
    await absorb_late_cancellation(task)
    await asyncio.sleep(0.01)  # raises CancelledError if the cancellation were still pending
    assert task.cancelling() == 0
