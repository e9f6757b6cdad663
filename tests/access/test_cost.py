"""Cost: what each operation weighs, known before it runs, charged to its caller's budget and reported."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import Settings

ORG = 100737
TOM, BECKY = 565039505, 565039512
FLEET = 9001


def lookup(alias: str, entity_id: int = TOM, *, extra: str = "", entity_type: str = "CUSTOMER") -> str:
    identifiers = f'[{{type: ID, value: "{entity_id}"}}{extra}]'
    arguments = f"identifiers: {identifiers}, source: INSTORE, entityType: {entity_type}"
    return f"{alias}: pointsBalance({arguments}) {{ totalPoints }}"


def document(*lookups: str) -> str:
    return "{ " + " ".join(lookups) + " }"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, rate_limit=10, rate_limit_burst=60, max_cost=60)


@pytest.fixture
async def key(gateway) -> str:
    seed = gateway.seed
    await seed.org(ORG)
    await seed.program(ORG, 973, default=True)
    await seed.customer(ORG, TOM, ("INSTORE", None, "EMAIL", "tom@example.com"))
    await seed.customer(ORG, BECKY, ("INSTORE", None, "EMAIL", "becky@example.com"))
    await seed.fleet(ORG, FLEET, "FLEET-9001", TOM)
    await seed.balance(ORG, TOM, 973, "8500")
    return await seed.api_key(ORG)


async def post(gateway, key: str, query: str, **headers: str) -> Any:
    return await gateway.client.post(
        "/graphql", json={"query": query}, headers={"authorization": f"Bearer {key}", **headers}
    )


def remaining(response: Any) -> int:
    policy, remaining_part, _ = response.headers["ratelimit"].split(";")
    assert policy == '"cost"'
    return int(remaining_part.removeprefix("r="))


async def test_every_answer_says_where_the_caller_stands(gateway, key) -> None:
    first = await post(gateway, key, document(lookup("a")))
    assert first.status_code == 200
    assert first.headers["ratelimit-policy"] == '"cost";q=60;w=6'
    assert remaining(first) == 59
    second = await post(gateway, key, document(lookup("a")))
    assert remaining(second) in (58, 59)  # a token may have come back in between


async def test_a_lookup_weighs_one_and_several_identifiers_or_a_fleet_two(gateway, key) -> None:
    cases = {
        document(lookup("a")): 1,
        document(*(lookup(f"a{n}") for n in range(10))): 10,
        document(lookup("a", extra=', {type: EMAIL, value: "tom@example.com"}')): 2,
        document(lookup("a", FLEET, entity_type="FLEET")): 2,
        document(lookup("a"), "__typename"): 1,
        "{ __typename }": 1,
    }
    for query, cost in cases.items():
        answer = await post(gateway, key, query, **{"graphql-cost": "include"})
        assert answer.json()["extensions"]["cost"]["requestedQueryCost"] == cost, query


async def test_the_cost_extension_is_shopifys_shape_and_only_on_request(gateway, key) -> None:
    plain = await post(gateway, key, document(lookup("a")))
    assert "extensions" not in plain.json()
    asked = await post(gateway, key, document(lookup("a"), lookup("b", BECKY)), **{"graphql-cost": "include"})
    cost = asked.json()["extensions"]["cost"]
    assert cost["requestedQueryCost"] == cost["actualQueryCost"] == 2
    assert cost["throttleStatus"]["maximumAvailable"] == 60
    assert cost["throttleStatus"]["restoreRate"] == 10
    assert 0 <= cost["throttleStatus"]["currentlyAvailable"] <= 57


async def test_rate_limits_count_cost_not_requests(gateway, key) -> None:
    fifty = document(*(lookup(f"a{n}") for n in range(50)))
    assert (await post(gateway, key, fifty)).status_code == 200
    refused = await post(gateway, key, fifty)  # 50 more than the 10 left
    assert refused.status_code == 429
    body = refused.json()
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) >= 4
    assert "ratelimit" in refused.headers
    # A single lookup still fits in what is left.
    assert (await post(gateway, key, document(lookup("a")))).status_code == 200


async def test_a_caller_out_of_budget_is_refused_before_its_variables_are_read(gateway, key) -> None:
    lookups = " ".join(
        f'a{n}: pointsBalance(identifiers: [{{type: ID, value: "{TOM}"}}], source: $source) {{ totalPoints }}'
        for n in range(20)
    )
    priced_by_its_variables = f"query Twenty($source: Source!) {{ {lookups} }}"
    bad_variables = {"query": priced_by_its_variables, "variables": {"source": "NOWHERE"}}
    headers = {"authorization": f"Bearer {key}"}
    # With the budget to pay for it, the variables are read and found wrong.
    wrong = await gateway.client.post("/graphql", json=bad_variables, headers=headers)
    assert wrong.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await post(gateway, key, document(*(lookup(f"a{n}") for n in range(50))))).status_code == 200
    # Now about 10 units are left: twenty lookups cannot be paid for, whatever the variables say.
    refused = await gateway.client.post("/graphql", json=bad_variables, headers=headers)
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) >= 1


async def test_an_operation_over_the_maximum_cost_is_refused_before_it_runs(gateway, key) -> None:
    dear = document(*(lookup(f"a{n}", extra=', {type: EMAIL, value: "tom@example.com"}') for n in range(31)))
    response = await post(gateway, key, dear, accept="application/graphql-response+json")
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"] == [
        {"message": "the operation costs 62; at most 60 is allowed", "extensions": {"code": "QUERY_TOO_COMPLEX"}}
    ]


class TestAMaximumBelowTheRootFieldLimit:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, max_cost=20)

    async def test_more_lookups_than_the_maximum_are_refused_before_the_variables_are_read(self, gateway, key):
        lookups = " ".join(
            f"a{n}: pointsBalance(identifiers: $ids, source: INSTORE) {{ totalPoints }}" for n in range(21)
        )
        query = f"query Many($ids: [IdentifierInput!]!) {{ {lookups} }}"
        response = await gateway.client.post(
            "/graphql",
            json={"query": query, "variables": {"ids": "not a list of identifiers"}},
            headers={"authorization": f"Bearer {key}"},
        )
        assert response.json()["errors"] == [
            {
                "message": "the operation costs at least 21; at most 20 is allowed",
                "extensions": {"code": "QUERY_TOO_COMPLEX"},
            }
        ]


async def test_more_directives_than_the_limit_are_refused_without_validating_them(gateway, key) -> None:
    many = "{ __typename " + "@unknown " * 1000 + "}"
    response = await post(gateway, key, many)
    errors = response.json()["errors"]
    assert [error["extensions"]["code"] for error in errors] == ["QUERY_TOO_COMPLEX"]
    assert errors[0]["message"] == "the document has more than 50 directives"


async def test_an_answer_lists_at_most_twenty_validation_errors(gateway, key) -> None:
    # Under every limit (50 root fields), every field unknown.
    response = await post(gateway, key, "{ " + " ".join(f"unknown{n}" for n in range(50)) + " }")
    errors = response.json()["errors"]
    assert len(errors) == 21  # graphql-core's last one says that it stopped there
    assert "Too many validation errors" in errors[-1]["message"]
    assert len(response.content) < 5_000
