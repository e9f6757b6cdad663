"""GET /v2/customers/lookup/points/balance: the reference API's endpoint gives what the GraphQL field gives,
answer for answer and error for error; its bad input is a coded 400; its OpenAPI document is the code's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from openapi_spec_validator import validate

from gateway.config import Settings
from gateway.edge.openapi import openapi_json

ROOT = Path(__file__).resolve().parents[2]
PATH = "/v2/customers/lookup/points/balance"
ORG, DUAL_ORG, MAIN, FUEL = 500001, 500002, 51, 52
# name as the reference API spells it -> GraphQL's identifier type
NAMES = {"mobile": "MOBILE", "email": "EMAIL", "externalId": "EXTERNAL_ID", "cardnumber": "CARD_NUMBER", "id": "ID"}
VALUES = ["+44 7700 900001", "ann@example.com", "EXT-1", "card-9", "61", "62", "+44 7700 900002", "nobody", "9001"]
GRAPHQL = """
query Balance($ids: [IdentifierInput!]!, $source: Source!, $program: Int, $all: Boolean!, $type: EntityType!) {
  pointsBalance(identifiers: $ids, source: $source, programId: $program, fetchDataForAllPrograms: $all,
                entityType: $type) {
    entityId entityType mainPoints promisedPoints totalPoints
    promisedPointsBreakup { delayedAccrualPoints externalTriggerBasedPoints }
    warnings
    programs { programId programName isDefault mainPoints promisedPoints totalPoints
               promisedPointsBreakup { delayedAccrualPoints externalTriggerBasedPoints } }
  }
}
"""


@pytest.fixture
def settings(database_url: str) -> Settings:
    # A query string over this is refused (414), as for GraphQL's GET.
    return Settings(database_url=database_url, max_body_bytes=4_096)


@pytest.fixture
async def world(gateway) -> dict[str, str]:
    seed = gateway.seed
    await seed.org(ORG)
    await seed.program(ORG, MAIN, default=True, name="Main")
    await seed.program(ORG, FUEL, name="Fuel")
    await seed.customer(
        ORG, 61, ("INSTORE", None, "MOBILE", "+44 7700 900001"), ("INSTORE", None, "EMAIL", "ann@example.com")
    )
    await seed.customer(ORG, 62, ("INSTORE", None, "MOBILE", "+44 7700 900002"), ("WECHAT", "wx", "CUID", "c-62"))
    await seed.customer(ORG, 63, ("INSTORE", None, "EXTERNAL_ID", "EXT-1"), ("INSTORE", None, "CARD_NUMBER", "card-9"))
    await seed.fleet(ORG, 9001, "F-9001", 61)
    for entity, main in ((61, "100.5"), (62, "7"), (63, "0.125")):
        await seed.balance(ORG, entity, MAIN, main, "2.25", "1")
    await seed.balance(ORG, 61, FUEL, "40")
    await seed.balance(ORG, 9001, MAIN, "5000", entity_type="FLEET")
    return {"key": await seed.api_key(ORG)}


def rest_parameters(case: dict[str, Any]) -> dict[str, str]:
    parameters = {
        "source": case["source"],
        "identifierName": ",".join(name for name, _ in case["identifiers"]),
        "identifierValue": ",".join(value for _, value in case["identifiers"]),
        "entityType": case["entity_type"],
        "fetchDataForAllPrograms": "true" if case["all"] else "false",
    }
    if case["program"] is not None:
        parameters["programId"] = str(case["program"])
    return parameters


def graphql_variables(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "ids": [{"type": NAMES[name], "value": value} for name, value in case["identifiers"]],
        "source": case["source"],
        "program": case["program"],
        "all": case["all"],
        "type": case["entity_type"],
    }


def as_rest(answer: dict[str, Any], *, all_programs: bool) -> dict[str, Any]:
    """The GraphQL field's answer as the REST endpoint writes it (programs only when all were asked for)."""
    expected = {key: value for key, value in answer.items() if key != "programs"}
    if all_programs:
        expected["programs"] = answer["programs"]
    return expected


cases = st.fixed_dictionaries(
    {
        "identifiers": st.lists(
            st.tuples(st.sampled_from(sorted(NAMES)), st.sampled_from(VALUES)),
            min_size=1,
            max_size=3,
            unique_by=lambda pair: pair[0],
        ),
        "source": st.sampled_from(["INSTORE", "WECHAT"]),
        "program": st.sampled_from([None, MAIN, FUEL, 999]),
        "all": st.booleans(),
        "entity_type": st.sampled_from(["CUSTOMER", "FLEET"]),
    }
)


@examples(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases)
async def test_the_endpoint_answers_what_the_graphql_field_answers(gateway, world, case):
    key = world["key"]
    graphql = (await gateway.query(GRAPHQL, graphql_variables(case), key=key)).json()
    rest = await gateway.client.get(PATH, params=rest_parameters(case), headers={"authorization": f"Bearer {key}"})
    body = json.loads(rest.text, parse_float=lambda text: pytest.fail(f"a float in the answer: {text}"))
    if graphql.get("errors"):
        expected = graphql["errors"][0]
        assert rest.status_code in (400, 404, 409), rest.text
        assert body["errors"][0]["extensions"] == expected["extensions"]
        assert body["errors"][0]["message"] == expected["message"]
    else:
        assert rest.status_code == 200, rest.text
        assert body == as_rest(graphql["data"]["pointsBalance"], all_programs=case["all"])


async def test_the_reference_documentations_call_answers(gateway, world):
    parameters = "source=INSTORE&identifierName=email,mobile&identifierValue=ann@example.com,447700900001"
    answer = await gateway.client.get(f"{PATH}?{parameters}", headers={"authorization": f"Bearer {world['key']}"})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json() == {
        "entityId": "61",
        "entityType": "CUSTOMER",
        "mainPoints": "100.500",
        "promisedPoints": "3.250",
        "totalPoints": "103.750",
        "promisedPointsBreakup": {"delayedAccrualPoints": "2.250", "externalTriggerBasedPoints": "1.000"},
        "warnings": [],
    }


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("source=INSTORE&identifierName=email,mobile&identifierValue=ann@example.com", 400, "BAD_USER_INPUT"),
        ("source=INSTORE&identifierName=phone&identifierValue=1", 400, "BAD_USER_INPUT"),
        ("source=SHOP&identifierName=email&identifierValue=ann@example.com", 400, "BAD_USER_INPUT"),
        ("source=INSTORE&identifierName=email&identifierValue=ann@example.com&programId=x", 400, "BAD_USER_INPUT"),
        (
            "source=INSTORE&identifierName=email&identifierValue=ann@example.com&programId=99999999999",
            400,
            "BAD_USER_INPUT",
        ),
        ("source=INSTORE&identifierName=email,mobile&identifierValue=ann@example.com,", 400, "BAD_USER_INPUT"),
        ("source=INSTORE&source=WECHAT&identifierName=email&identifierValue=a", 400, "BAD_REQUEST"),
        ("identifierName=email&identifierValue=a", 400, "BAD_REQUEST"),
        ("source=INSTORE&identifierName=email&identifierValue=a&fetchDataForAllPrograms=yes", 400, "BAD_USER_INPUT"),
        ("source=INSTORE&identifierName=email&identifierValue=a&entityType=GROUP", 400, "INVALID_ENTITY_TYPE"),
        ("source=INSTORE&identifierName=email&identifierValue=%FF", 400, "BAD_REQUEST"),
        ("source=INSTORE&identifierName=email&identifierValue=nobody@example.com", 404, "CUSTOMER_NOT_FOUND"),
        (
            "source=INSTORE&identifierName=email,mobile&identifierValue=ann@example.com,447700900002",
            409,
            "IDENTIFIER_CONFLICT",
        ),
    ],
)
async def test_bad_input_is_a_coded_error_never_a_500(gateway, world, query, status, code):
    answer = await gateway.client.get(f"{PATH}?{query}", headers={"authorization": f"Bearer {world['key']}"})
    assert (answer.status_code, answer.json()["errors"][0]["extensions"]["code"]) == (status, code), answer.text
    if code == "INVALID_ENTITY_TYPE":
        assert answer.json()["errors"][0]["extensions"]["errorCode"] == 1212
    if code == "CUSTOMER_NOT_FOUND":
        assert answer.json()["errors"][0]["extensions"]["errorCode"] == 8015


async def test_credentials_limits_and_methods_are_the_graphql_endpoints(gateway, world):
    query = urlencode({"source": "INSTORE", "identifierName": "id", "identifierValue": "61"})
    answer = await gateway.client.get(f"{PATH}?{query}")
    assert answer.status_code == 401 and answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert answer.headers["www-authenticate"] == "Bearer"
    answer = await gateway.client.post(f"{PATH}?{query}", headers={"authorization": f"Bearer {world['key']}"})
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD"
    answer = await gateway.client.get(f"{PATH}?{query}", headers={"authorization": f"Bearer {world['key']}"})
    assert answer.status_code == 200 and "ratelimit" in answer.headers  # charged as the GraphQL field is
    too_long = urlencode({"source": "INSTORE", "identifierName": "id", "identifierValue": "6" * 5_000})
    answer = await gateway.client.get(f"{PATH}?{too_long}", headers={"authorization": f"Bearer {world['key']}"})
    assert answer.status_code == 414 and answer.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_the_openapi_document_is_served_committed_and_valid(gateway):
    served = await gateway.client.get("/openapi.json")
    assert served.status_code == 200
    assert served.content == openapi_json() == (ROOT / "openapi.json").read_bytes(), (
        "openapi.json is stale: run `python -m gateway.edge.openapi > openapi.json`"
    )
    validate(served.json())  # raises on any fault against the OpenAPI 3.1 schema
    operation = served.json()["paths"][PATH]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} == {
        "source", "accountId", "identifierName", "identifierValue", "programId", "fetchDataForAllPrograms",
        "entityType",
    }  # fmt: skip
