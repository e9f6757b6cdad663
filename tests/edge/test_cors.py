"""CORS: browsers on the configured origins may call /graphql; others get no CORS headers."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import Settings
from gateway.edge.cors import allowed_origins

ORG = 100737
APP = "https://app.example.com"
SHOP = "https://shop.example.com:8443"
EVIL = "https://evil.example.com"


def preflight_headers(
    origin: str, method: str = "POST", headers: str = "authorization, content-type"
) -> dict[str, str]:
    return {"origin": origin, "access-control-request-method": method, "access-control-request-headers": headers}


@pytest.fixture
async def key(gateway: Any) -> str:
    await gateway.seed.org(ORG)
    return await gateway.seed.api_key(ORG)


class TestConfiguredOrigins:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, cors_origins=f"{APP}, {SHOP}/")

    @pytest.mark.parametrize("origin", [APP, SHOP])
    async def test_a_preflight_from_an_allowed_origin_is_answered(self, gateway, origin):
        response = await gateway.client.options("/graphql", headers=preflight_headers(origin))
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
        assert set(response.headers["access-control-allow-methods"].replace(" ", "").split(",")) >= {"GET", "POST"}
        allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type"} <= allowed
        assert response.headers["access-control-max-age"] == "600"
        assert "access-control-allow-credentials" not in response.headers

    async def test_a_preflight_from_another_origin_is_refused(self, gateway):
        response = await gateway.client.options("/graphql", headers=preflight_headers(EVIL))
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers

    async def test_a_preflight_for_another_method_is_refused(self, gateway):
        response = await gateway.client.options("/graphql", headers=preflight_headers(APP, method="DELETE"))
        assert response.status_code == 400

    async def test_a_preflight_for_another_header_is_refused(self, gateway):
        response = await gateway.client.options("/graphql", headers=preflight_headers(APP, headers="x-api-secret"))
        assert response.status_code == 400

    async def test_an_actual_request_from_an_allowed_origin_gets_cors_headers(self, gateway, key):
        response = await gateway.client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"origin": APP, "authorization": f"Bearer {key}"},
        )
        assert response.json() == {"data": {"__typename": "Query"}}
        assert response.headers["access-control-allow-origin"] == APP
        exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
        assert {"x-request-id", "retry-after"} <= exposed

    async def test_errors_carry_cors_headers_too_so_the_page_can_read_them(self, gateway):
        response = await gateway.client.post("/graphql", json={"query": "{ __typename }"}, headers={"origin": APP})
        assert response.status_code == 401
        assert response.headers["access-control-allow-origin"] == APP

    async def test_an_actual_request_from_another_origin_gets_none(self, gateway, key):
        response = await gateway.client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": EVIL, "authorization": f"Bearer {key}"}
        )
        assert "access-control-allow-origin" not in response.headers


class TestAnyOrigin:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, cors_origins="*")

    async def test_any_origin_may_call(self, gateway):
        response = await gateway.client.options("/graphql", headers=preflight_headers(EVIL))
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] in {"*", EVIL}


async def test_no_origin_is_allowed_by_default(gateway, key):
    response = await gateway.client.options("/graphql", headers=preflight_headers(APP))
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code == 405
    actual = await gateway.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"origin": APP, "authorization": f"Bearer {key}"}
    )
    assert actual.status_code == 200
    assert "access-control-allow-origin" not in actual.headers


def test_origins_are_read_from_a_comma_separated_list():
    assert allowed_origins(Settings(cors_origins=" https://a.example , https://b.example/ ,,")) == [
        "https://a.example",
        "https://b.example",
    ]
    assert allowed_origins(Settings()) == []
