"""Automatic persisted queries (Apollo's protocol, version 1): registered once, then answered by hash alone,
kept in PostgreSQL for every worker and instance, bounded per org."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.config import Settings
from gateway.execution import persisted
from tests.factories import GRAPHQL_CLIENT_HEADERS

ORG, OTHER_ORG = 100737, 100738
TOM = 565039505
QUERY = '{ pointsBalance(identifiers: [{type: ID, value: "565039505"}], source: INSTORE) { totalPoints } }'
ANSWER = {"data": {"pointsBalance": {"totalPoints": "8500.000"}}}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(text: str, *, with_query: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(text)}}}
    if with_query:
        body["query"] = text
    return body


@pytest.fixture
async def keys(gateway) -> tuple[str, str]:
    seed = gateway.seed
    for org in (ORG, OTHER_ORG):
        await seed.org(org)
        await seed.program(org, 973 if org == ORG else 974, default=True)
    await seed.customer(ORG, TOM, ("INSTORE", None, "EMAIL", "tom@example.com"))
    await seed.balance(ORG, TOM, 973, "8500")
    return await seed.api_key(ORG), await seed.api_key(OTHER_ORG)


async def post(client: httpx.AsyncClient, key: str, body: Any, accept: str = "*/*") -> httpx.Response:
    return await client.post("/graphql", json=body, headers={"authorization": f"Bearer {key}", "accept": accept})


async def test_an_unknown_hash_asks_for_the_document(gateway, keys) -> None:
    response = await post(gateway.client, keys[0], apq(QUERY, with_query=False))
    assert response.status_code == 200
    assert response.json() == {
        "errors": [{"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}]
    }
    # No data: application/graphql-response+json calls for a 4xx.
    strict = await post(gateway.client, keys[0], apq(QUERY, with_query=False), "application/graphql-response+json")
    assert strict.status_code == 404
    assert strict.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_document_sent_with_its_hash_is_answered_then_known_by_hash_alone(gateway, keys) -> None:
    registered = await post(gateway.client, keys[0], apq(QUERY, with_query=True))
    assert registered.json() == ANSWER
    by_hash = await post(gateway.client, keys[0], apq(QUERY, with_query=False))
    assert by_hash.json() == ANSWER
    params = {"extensions": json.dumps(apq(QUERY, with_query=False)["extensions"])}
    by_get = await gateway.client.get("/graphql", params=params, headers={"authorization": f"Bearer {keys[0]}"})
    assert by_get.json() == ANSWER
    assert by_get.headers["cache-control"] == "no-store"
    stored = await gateway.seed.connection.fetch("SELECT org_id, sha256, document FROM persisted_queries")
    assert [tuple(row) for row in stored] == [(ORG, sha256(QUERY), QUERY)]


async def test_a_hash_that_is_not_the_documents_is_refused_and_nothing_is_kept(gateway, keys) -> None:
    body = apq(QUERY, with_query=True)
    body["extensions"]["persistedQuery"]["sha256Hash"] = sha256(QUERY + " ")
    response = await post(gateway.client, keys[0], body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "SHA-256" in response.json()["errors"][0]["message"]
    assert await gateway.seed.connection.fetchval("SELECT count(*) FROM persisted_queries") == 0


@pytest.mark.parametrize(
    "extensions",
    [
        {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}},
        {"persistedQuery": {"version": 1, "sha256Hash": "not hex"}},
        {"persistedQuery": "yes"},
    ],
)
async def test_a_malformed_persisted_query_is_a_bad_request(gateway, keys, extensions) -> None:
    response = await post(gateway.client, keys[0], {"extensions": extensions})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_an_invalid_document_is_not_kept(gateway, keys) -> None:
    invalid = "{ nope }"
    response = await post(gateway.client, keys[0], apq(invalid, with_query=True))
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert await gateway.seed.connection.fetchval("SELECT count(*) FROM persisted_queries") == 0
    again = await post(gateway.client, keys[0], apq(invalid, with_query=False))
    assert again.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_documents_are_per_org(gateway, keys) -> None:
    await post(gateway.client, keys[0], apq(QUERY, with_query=True))
    other = await post(gateway.client, keys[1], apq(QUERY, with_query=False))
    assert other.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_known_hash_costs_no_parse_and_no_database_read(gateway, keys, monkeypatch) -> None:
    await post(gateway.client, keys[0], apq(QUERY, with_query=True))
    reads: list[str] = []
    original = persisted.find_persisted_query

    async def counted(*args: Any) -> Any:
        reads.append(args[2])
        return await original(*args)

    monkeypatch.setattr(persisted, "find_persisted_query", counted)
    endpoint = gateway.app.endpoint
    validations = endpoint.documents.validations
    for _ in range(3):
        assert (await post(gateway.client, keys[0], apq(QUERY, with_query=False))).json() == ANSWER
    assert reads == []
    assert endpoint.documents.validations == validations


@pytest.fixture
async def second_instance(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Another gateway process on the same database (another worker or instance): nothing in memory shared."""
    async with LifespanManager(create_app(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://other", headers=GRAPHQL_CLIENT_HEADERS) as c:
            yield c


async def test_another_instance_answers_a_hash_registered_through_the_first(gateway, keys, second_instance) -> None:
    assert (await post(second_instance, keys[0], apq(QUERY, with_query=False))).status_code == 200
    await post(gateway.client, keys[0], apq(QUERY, with_query=True))
    assert (await post(second_instance, keys[0], apq(QUERY, with_query=False))).json() == ANSWER


class TestBoundedPerOrg:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, max_persisted_queries=2)

    async def test_registering_past_the_cap_forgets_the_least_recently_used(self, gateway, keys) -> None:
        documents = [f"query Q{n} {{ __typename }}" for n in range(3)]
        for document in documents:
            assert (await post(gateway.client, keys[0], apq(document, with_query=True))).status_code == 200
            await gateway.seed.connection.execute("SELECT pg_sleep(0.01)")  # distinct last-used times
        kept = await gateway.seed.connection.fetch("SELECT sha256 FROM persisted_queries WHERE org_id = $1", ORG)
        assert {row["sha256"] for row in kept} == {sha256(documents[1]), sha256(documents[2])}
