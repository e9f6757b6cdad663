"""GraphQL over HTTP as clients expect: the media type from Accept, and the status codes each calls for."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.config import Settings
from gateway.edge.negotiation import GRAPHQL_RESPONSE, JSON, negotiate

ORG = 100737
TOM = 565039505
LOOKUP = '{ pointsBalance(identifiers: [{type: ID, value: "565039505"}], source: INSTORE) { totalPoints } }'
LOOKUP_BY_VARIABLE = (
    "query Q($id: String!) { pointsBalance(identifiers: [{type: ID, value: $id}], source: INSTORE) { totalPoints } }"
)
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        (b"*/*", JSON),  # Apollo Client 3
        (b"application/json", JSON),
        (b"application/*", JSON),
        (b"text/html", JSON),  # nothing we write: the legacy type
        (b"application/graphql-response+json", GRAPHQL_RESPONSE),
        (b"application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE),  # urql, graphql-request
        (b"application/json, application/graphql-response+json", GRAPHQL_RESPONSE),
        (b"application/json;q=1, application/graphql-response+json;q=0.5", JSON),
        (b"application/graphql-response+json;q=0, */*", JSON),
        (b"Application/GraphQL-Response+JSON ; q=0.8, application/json;q=0.1", GRAPHQL_RESPONSE),
        (b"application/graphql-response+json;q=nonsense, application/json", JSON),
    ],
)
def test_the_media_type_follows_accept(accept: bytes | None, chosen: Any) -> None:
    assert negotiate(accept) is chosen


@pytest.fixture
async def key(gateway) -> str:
    seed = gateway.seed
    await seed.org(ORG)
    await seed.program(ORG, 973, default=True)
    await seed.customer(ORG, TOM, ("INSTORE", None, "EMAIL", "tom@example.com"))
    await seed.balance(ORG, TOM, 973, "8500")
    return await seed.api_key(ORG)


async def post(gateway, key: str | None, body: Any, accept: str | None) -> Any:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    if accept is not None:
        headers["accept"] = accept
    else:
        headers["accept"] = ""  # httpx would send */* otherwise; an empty header is read as none
    return await gateway.client.post("/graphql", content=orjson.dumps(body), headers=headers)


REQUEST_ERRORS = {
    "parse": ({"query": "{"}, "GRAPHQL_PARSE_FAILED"),
    "validation": ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
    "variables": ({"query": LOOKUP_BY_VARIABLE, "variables": {"id": None}}, "BAD_USER_INPUT"),
    "operation": ({"query": "query A { __typename } query B { __typename }"}, "BAD_REQUEST"),
    "limit": ({"query": "{ " + "a: __typename " * 61 + "}"}, "QUERY_TOO_COMPLEX"),
    "long string": ({"query": "query Q($s: String) { __typename }", "variables": {"s": "x" * 2000}}, "BAD_USER_INPUT"),
}


@pytest.mark.parametrize("case", REQUEST_ERRORS)
@pytest.mark.parametrize("accept", ["*/*", "application/json", None])
async def test_request_errors_are_200_for_clients_of_application_json(gateway, key, case, accept) -> None:
    body, code = REQUEST_ERRORS[case]
    response = await post(gateway, key, body, accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert "data" not in answer
    assert answer["errors"][0]["extensions"]["code"] == code


@pytest.mark.parametrize("case", REQUEST_ERRORS)
async def test_request_errors_are_400_in_application_graphql_response_json(gateway, key, case) -> None:
    body, code = REQUEST_ERRORS[case]
    response = await post(gateway, key, body, GRAPHQL_RESPONSE_JSON)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    answer = response.json()
    assert "data" not in answer
    assert answer["errors"][0]["extensions"]["code"] == code


@pytest.mark.parametrize("accept", ["*/*", GRAPHQL_RESPONSE_JSON])
async def test_answers_and_lookup_errors_are_200_in_both(gateway, key, accept) -> None:
    found = await post(gateway, key, {"query": LOOKUP}, accept)
    assert (found.status_code, found.json()) == (200, {"data": {"pointsBalance": {"totalPoints": "8500.000"}}})
    missing = await post(gateway, key, {"query": LOOKUP.replace("565039505", "1")}, accept)
    assert missing.status_code == 200
    assert missing.json()["errors"][0]["extensions"]["code"] == "CUSTOMER_NOT_FOUND"
    assert missing.json()["data"] == {"pointsBalance": None}


@pytest.mark.parametrize("accept", ["*/*", GRAPHQL_RESPONSE_JSON])
async def test_refusals_keep_their_status_in_both(gateway, key, accept) -> None:
    media_type = "application/json" if accept == "*/*" else GRAPHQL_RESPONSE_JSON
    unauthenticated = await post(gateway, None, {"query": LOOKUP}, accept)
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["content-type"] == media_type
    assert unauthenticated.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    not_json = await gateway.client.post(
        "/graphql", content=b'{ "not a JSON', headers={"authorization": f"Bearer {key}", "accept": accept}
    )
    assert not_json.status_code == 400  # not a GraphQL request at all
    no_query = await post(gateway, key, {"qeury": "{ __typename }"}, accept)
    assert no_query.status_code == 400
    assert no_query.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_unknown_extensions_are_ignored(gateway, key) -> None:
    response = await post(gateway, key, {"query": "{ __typename }", "extensions": {"some": "value"}}, "*/*")
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_no_answer_may_be_stored_by_a_cache(gateway, key) -> None:
    answered = await gateway.client.get(
        "/graphql", params={"query": LOOKUP}, headers={"authorization": f"Bearer {key}"}
    )
    refused = await gateway.client.get("/graphql", params={"query": LOOKUP})
    assert answered.status_code == 200 and refused.status_code == 401
    assert answered.headers["cache-control"] == refused.headers["cache-control"] == "no-store"


class TestOtherPaths:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url)

    async def test_an_unknown_path_is_a_json_404(self, gateway) -> None:
        response = await gateway.client.get("/nothing-here")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    async def test_a_method_not_served_is_a_json_405_with_allow(self, gateway) -> None:
        response = await gateway.client.post("/healthz")
        assert response.status_code == 405
        assert "GET" in response.headers["allow"]
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
