"""API keys as a product: hashed at rest, cached briefly, revocable."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from gateway.config import Settings
from gateway.db.api_keys import list_api_keys, revoke_api_key

QUERY = "{ __typename }"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, api_key_cache_ttl=0.3)


async def test_only_a_hash_of_the_key_is_stored(gateway, connection):
    await gateway.seed.org(1)
    key = await gateway.seed.api_key(1)
    rows = await connection.fetch("SELECT * FROM api_keys")
    stored = [str(value) for row in rows for value in row.values()]
    assert not any(key in value or key.split("_", 2)[2] in value for value in stored)
    assert bytes(rows[0]["key_hash"]) == hashlib.sha256(key.encode()).digest()


async def test_a_revoked_key_stops_working_within_the_cache_lifetime(gateway, connection):
    await gateway.seed.org(1)
    key = await gateway.seed.api_key(1)
    assert (await gateway.query(QUERY, key=key)).status_code == 200
    prefix = key.split("_")[1]
    assert await revoke_api_key(connection, prefix) is not None
    # Still cached for at most the TTL (0.3 s here), then refused.
    await asyncio.sleep(0.4)
    refused = await gateway.query(QUERY, key=key)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_use_of_a_key_is_recorded_and_listed_without_the_key(gateway, connection):
    await gateway.seed.org(1)
    await gateway.seed.org(2)
    key = await gateway.seed.api_key(1, name="web")
    await gateway.seed.api_key(2, name="other")
    assert (await gateway.query(QUERY, key=key)).status_code == 200
    for _ in range(50):
        listed = await list_api_keys(connection, org_id=1)
        if listed[0].last_used_at is not None:
            break
        await asyncio.sleep(0.05)
    assert [(k.org_id, k.name, k.prefix) for k in listed] == [(1, "web", key.split("_")[1])]
    assert listed[0].last_used_at is not None and listed[0].revoked_at is None
    assert {k.org_id for k in await list_api_keys(connection)} == {1, 2}


async def test_revoking_an_unknown_prefix_says_so(connection):
    assert await revoke_api_key(connection, "000000000000") is None
