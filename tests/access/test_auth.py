"""API keys: `Authorization: Bearer <key>`, or HTTP 401 with UNAUTHENTICATED and no data."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.domain.api_keys import generate_key
from tests.factories import is_json

ORG = 100737
QUERY = '{ pointsBalance(identifiers: [{type: ID, value: "565039505"}], source: INSTORE) { entityId } }'


@pytest.fixture
async def key(gateway: Any) -> str:
    seed = gateway.seed
    await seed.org(ORG)
    await seed.program(ORG, 973, default=True)
    await seed.customer(ORG, 565039505)
    return await seed.api_key(ORG)


async def post(gateway: Any, authorization: str | None, query: str = QUERY) -> httpx.Response:
    headers = {"authorization": authorization} if authorization is not None else {}
    return await gateway.client.post("/graphql", json={"query": query}, headers=headers)


def real_prefix(key: str) -> str:
    """`lgw_<12 hex>_` of a key: what finds it in the database (the secret may contain `_` itself)."""
    assert key.startswith("lgw_") and key[16] == "_"
    return key[:17]


def assert_unauthenticated(response: httpx.Response) -> str:
    """The 401 answer; returns its message."""
    assert response.status_code == 401, response.text
    assert is_json(response)
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["x-request-id"]
    body = response.json()
    assert body == {"errors": [{"message": body["errors"][0]["message"], "extensions": {"code": "UNAUTHENTICATED"}}]}
    message = body["errors"][0]["message"]
    assert isinstance(message, str) and message
    return message


async def test_a_valid_key_is_accepted(gateway, key):
    response = await post(gateway, f"Bearer {key}")
    assert response.json() == {"data": {"pointsBalance": {"entityId": "565039505"}}}


async def test_the_bearer_scheme_is_case_insensitive(gateway, key):
    response = await post(gateway, f"bearer {key}")
    assert response.json() == {"data": {"pointsBalance": {"entityId": "565039505"}}}


async def test_no_authorization_header_is_unauthenticated(gateway, key):
    assert_unauthenticated(await post(gateway, None))


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "{key}",
        "Basic dXNlcjpwYXNzd29yZA==",
        "Token {key}",
        "Bearer lgw_short",
        "Bearer {key}x",
        "Bearer x{key}",
        "Bearer {key} {key}",
        "Bearer {upper}",
    ],
    ids=[
        "empty",
        "scheme only",
        "scheme and space",
        "key without scheme",
        "basic",
        "other scheme",
        "truncated key",
        "key with a character more",
        "key with a character before",
        "two keys",
        "key in upper case",
    ],
)
async def test_a_malformed_authorization_header_is_unauthenticated(gateway, key, authorization):
    assert_unauthenticated(await post(gateway, authorization.format(key=key, upper=key.upper())))


async def test_an_unknown_key_is_unauthenticated(gateway, key):
    assert_unauthenticated(await post(gateway, f"Bearer {generate_key().key}"))


async def test_a_wrong_secret_with_a_real_prefix_is_unauthenticated(gateway, key):
    forged = real_prefix(key) + generate_key().key[len(real_prefix(key)) :]
    assert forged != key and len(forged) == len(key)
    assert_unauthenticated(await post(gateway, f"Bearer {forged}"))
    # The real key still works: a failed attempt does not poison the key cache.
    assert (await post(gateway, f"Bearer {key}")).status_code == 200


async def test_unknown_keys_and_wrong_secrets_get_the_same_answer(gateway, key):
    unknown = assert_unauthenticated(await post(gateway, f"Bearer {generate_key().key}"))
    wrong_secret = assert_unauthenticated(await post(gateway, f"Bearer {real_prefix(key)}{'A' * 43}"))
    assert unknown == wrong_secret


async def test_a_revoked_key_is_unauthenticated(gateway, key):
    await gateway.seed.connection.execute("UPDATE api_keys SET revoked_at = now() WHERE org_id = $1", ORG)
    assert_unauthenticated(await post(gateway, f"Bearer {key}"))


async def test_get_requests_need_a_key_too(gateway, key):
    assert_unauthenticated(await gateway.client.get("/graphql", params={"query": QUERY}))
    response = await gateway.client.get("/graphql", params={"query": QUERY}, headers={"authorization": f"Bearer {key}"})
    assert response.json() == {"data": {"pointsBalance": {"entityId": "565039505"}}}


@pytest.mark.parametrize(
    "query",
    ["{ __typename }", "{ __schema { types { name } } }", QUERY, "{ nope }"],
    ids=["typename", "introspection", "lookup", "invalid query"],
)
async def test_nothing_is_answered_without_a_key(gateway, key, query):
    assert_unauthenticated(await post(gateway, None, query))
