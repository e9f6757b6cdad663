"""Production and development modes: what the gateway tells strangers about its schema."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.cli import build_parser, settings_from
from gateway.config import Settings, settings_from_environment
from gateway.edge.graphiql import ASSETS_PATH
from tests.factories import is_json

ORG = 100737
TOM = 565039505
INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_INTROSPECTION = '{ __type(name: "PointsBalance") { fields { name } } }'
MISSPELT_FIELD = "{ pointsBalanc }"
MISSPELT_ENUM_QUERY = """
query ($source: Source!) {
  pointsBalance(identifiers: [{type: ID, value: "1"}], source: $source) { entityId }
}
"""


@pytest.fixture
async def key(gateway: Any) -> str:
    await gateway.seed.org(ORG)
    await gateway.seed.program(ORG, 973, default=True)
    await gateway.seed.customer(ORG, TOM)
    return await gateway.seed.api_key(ORG)


def messages(body: dict[str, Any]) -> str:
    return " ".join(error["message"] for error in body["errors"])


async def graphiql(gateway: Any) -> Any:
    return await gateway.client.get("/graphql", headers={"accept": "text/html,application/xhtml+xml"})


# --- which mode -----------------------------------------------------------------------------------------------------


def test_production_is_the_default():
    assert not Settings().development


def test_demo_implies_development_unless_told_otherwise():
    assert Settings(demo=True).development
    assert not Settings(demo=True, env="production").development


def test_the_mode_comes_from_the_flag_or_the_environment():
    assert settings_from_environment({"LOYALTY_GATEWAY_ENV": "development"}).development
    assert settings_from(build_parser().parse_args(["serve", "--env", "development"])).development
    assert not settings_from(build_parser().parse_args(["serve", "--demo", "--env", "production"])).development
    explicit = settings_from(build_parser().parse_args(["serve", "--introspection", "--graphiql"]))
    assert explicit.introspection and explicit.graphiql and not explicit.development


def test_an_unknown_mode_is_refused_at_startup():
    from gateway.access.limits import configuration_problems

    assert configuration_problems(Settings(env="staging"))


def test_a_replica_lag_limit_of_zero_or_less_is_refused_at_startup():
    from gateway.access.limits import configuration_problems

    assert not configuration_problems(Settings(max_replica_lag=0.5))
    for lag in (0.0, -1.0):
        assert configuration_problems(Settings(max_replica_lag=lag)) == ["max_replica_lag must be more than 0 seconds"]


# --- production -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [INTROSPECTION, TYPE_INTROSPECTION])
async def test_production_refuses_introspection(gateway, key, query):
    response = await gateway.query(query, key=key)
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "introspection" in messages(body).lower()
    assert "data" not in body


async def test_production_still_answers_typename(gateway, key):
    assert (await gateway.query("{ __typename }", key=key)).json() == {"data": {"__typename": "Query"}}


async def test_production_does_not_suggest_field_names(gateway, key):
    body = (await gateway.query(MISSPELT_FIELD, key=key)).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "Did you mean" not in messages(body)
    assert "pointsBalance" not in messages(body)


async def test_production_does_not_suggest_enum_values_of_variables(gateway, key):
    response = await gateway.query(MISSPELT_ENUM_QUERY, {"source": "INSTOR"}, key=key)
    body = response.json()
    assert response.status_code == 400
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Did you mean" not in messages(body)
    assert "INSTORE" not in messages(body)


async def test_production_does_not_suggest_enum_values_of_literals(gateway, key):
    query = '{ pointsBalance(identifiers: [{type: ID, value: "1"}], source: INSTOR) { entityId } }'
    body = (await gateway.query(query, key=key)).json()
    assert "Did you mean" not in messages(body)


async def test_production_serves_no_graphiql(gateway, key):
    response = await graphiql(gateway)
    assert response.status_code == 404
    assert is_json(response)
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assets = await gateway.client.get(f"{ASSETS_PATH}/graphiql.min.js")
    assert assets.status_code == 404


async def test_production_still_answers_get_queries(gateway, key):
    response = await gateway.client.get(
        "/graphql", params={"query": "{ __typename }"}, headers={"authorization": f"Bearer {key}"}
    )
    assert response.json() == {"data": {"__typename": "Query"}}


class TestProductionWithIntrospectionAndGraphiQL:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, introspection=True, graphiql=True)

    async def test_introspection_can_be_turned_on(self, gateway, key):
        response = await gateway.query(INTROSPECTION, key=key)
        assert response.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}

    async def test_graphiql_can_be_turned_on(self, gateway, key):
        response = await graphiql(gateway)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert (await gateway.client.get(f"{ASSETS_PATH}/graphiql.min.js")).status_code == 200

    async def test_suggestions_stay_off(self, gateway, key):
        assert "Did you mean" not in messages((await gateway.query(MISSPELT_FIELD, key=key)).json())


# --- development ----------------------------------------------------------------------------------------------------


class TestDevelopment:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, env="development")

    async def test_introspection_is_on(self, gateway, key):
        response = await gateway.query(TYPE_INTROSPECTION, key=key)
        assert response.status_code == 200
        assert {"name": "entityId"} in response.json()["data"]["__type"]["fields"]

    async def test_field_suggestions_are_on(self, gateway, key):
        body = (await gateway.query(MISSPELT_FIELD, key=key)).json()
        assert "Did you mean 'pointsBalance'?" in messages(body)

    async def test_enum_suggestions_for_variables_are_on(self, gateway, key):
        body = (await gateway.query(MISSPELT_ENUM_QUERY, {"source": "INSTOR"}, key=key)).json()
        assert "INSTORE" in messages(body)

    async def test_graphiql_is_served(self, gateway, key):
        response = await graphiql(gateway)
        assert response.status_code == 200
        assert "GraphiQL" in response.text

    async def test_limits_still_apply(self, gateway, key):
        query = "{ " + " ".join(["__typename"] * 61) + " }"
        response = await gateway.query(query, key=key)
        assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


IDENTIFIERS_QUERY = """
query ($ids: [IdentifierInput!]!) { pointsBalance(identifiers: $ids, source: INSTORE) { entityId } }
"""


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ('{ pointsBalance(identifiers: [{type: ID, valu: "1"}], source: INSTORE) { entityId } }', None),
        (IDENTIFIERS_QUERY, {"ids": [{"type": "ID", "valu": "1"}]}),
        (IDENTIFIERS_QUERY, {"ids": [{"type": "EMAL", "value": "1"}]}),
        ("{ pointsBalance(identifiers: [], source: INSTORE) { entityI } }", None),
        ("{ pointsBalance(identifier: [], source: INSTORE) { entityId } }", None),
    ],
    ids=["input field literal", "input field variable", "enum in a variable", "sub-field", "argument"],
)
async def test_production_suggests_nothing_anywhere(gateway, key, query, variables):
    response = await gateway.query(query, variables, key=key)
    assert 400 <= response.status_code < 500
    assert "Did you mean" not in response.text
