"""An API key is bound to one org: another org's data does not exist for it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

ACME = 100737
BETA = 100738  # dual eligibility on, MOBILE decides
ACME_PROGRAM = 973
ACME_SECOND_PROGRAM = 974
BETA_PROGRAM = 980

BETA_CUSTOMER = 777000001
BETA_FLEET = 777009001
SHARED_ID = 565039505  # a customer id both orgs use

BALANCE = """
query ($identifiers: [IdentifierInput!]!, $source: Source!, $accountId: String, $programId: Int,
       $entityType: EntityType! = CUSTOMER, $all: Boolean! = false) {
  pointsBalance(identifiers: $identifiers, source: $source, accountId: $accountId, programId: $programId,
                entityType: $entityType, fetchDataForAllPrograms: $all) {
    entityId entityType mainPoints programs { programId programName } warnings
  }
}
"""


async def points_balance(gateway: Any, key: str, *pairs: tuple[str, str], **arguments: Any) -> httpx.Response:
    variables = {
        "identifiers": [{"type": type_, "value": value} for type_, value in pairs],
        "source": "INSTORE",
        **arguments,
    }
    return await gateway.query(BALANCE, variables, key=key)


def error_extensions(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == {"pointsBalance": None}, body
    [error] = body["errors"]
    return error["extensions"]


def answered(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["pointsBalance"]


@pytest.fixture
async def keys(gateway: Any) -> dict[int, str]:
    """Two orgs with customers, a fleet and balances; their keys by org."""
    seed = gateway.seed
    await seed.org(ACME)
    await seed.program(ACME, ACME_PROGRAM, default=True, name="Acme Rewards")
    await seed.program(ACME, ACME_SECOND_PROGRAM, name="Acme Plus")
    await seed.org(BETA, dual_eligibility=True, primary="MOBILE")
    await seed.program(BETA, BETA_PROGRAM, default=True, name="Beta Miles")
    await seed.program(BETA, ACME_PROGRAM, name="Beta Classic")  # program ids are per org

    await seed.customer(ACME, SHARED_ID, ("INSTORE", None, "EMAIL", "same@example.com"))
    await seed.balance(ACME, SHARED_ID, ACME_PROGRAM, "100")
    await seed.customer(
        BETA,
        SHARED_ID,
        ("INSTORE", None, "EMAIL", "same@example.com"),
        ("INSTORE", None, "MOBILE", "15550009999"),
    )
    await seed.balance(BETA, SHARED_ID, BETA_PROGRAM, "200")
    await seed.balance(BETA, SHARED_ID, ACME_PROGRAM, "50")

    await seed.customer(
        BETA,
        BETA_CUSTOMER,
        ("INSTORE", None, "MOBILE", "442079460958"),
        ("INSTORE", None, "EMAIL", "beta@example.com"),
        ("INSTORE", None, "EXTERNAL_ID", "beta-ext"),
        ("INSTORE", None, "CARD_NUMBER", "beta-card"),
        ("INSTORE", None, "CUID", "beta-cuid"),
    )
    await seed.balance(BETA, BETA_CUSTOMER, BETA_PROGRAM, "300")
    await seed.fleet(BETA, BETA_FLEET, "BETA-FLEET", BETA_CUSTOMER)
    await seed.balance(BETA, BETA_FLEET, BETA_PROGRAM, "400", entity_type="FLEET")
    return {ACME: await seed.api_key(ACME), BETA: await seed.api_key(BETA)}


@pytest.mark.parametrize(
    "pair",
    [
        ("MOBILE", "442079460958"),
        ("EMAIL", "beta@example.com"),
        ("EXTERNAL_ID", "beta-ext"),
        ("CARD_NUMBER", "beta-card"),
        ("CUID", "beta-cuid"),
        ("ID", str(BETA_CUSTOMER)),
    ],
)
async def test_another_orgs_customer_does_not_exist_by_any_identifier(gateway, keys, pair):
    # BETA itself finds the customer by it (its dual eligibility wants the MOBILE too).
    primary = ("MOBILE", "442079460958")
    own = await points_balance(gateway, keys[BETA], *dict([primary, pair]).items())
    assert (answered(own)["entityId"], answered(own)["warnings"]) == (str(BETA_CUSTOMER), [])
    response = await points_balance(gateway, keys[ACME], pair)
    assert error_extensions(response) == {"code": "CUSTOMER_NOT_FOUND", "errorCode": 8015}


@pytest.mark.parametrize(
    "pair", [("ID", str(BETA_FLEET)), ("EXTERNAL_ID", "BETA-FLEET"), ("PRIMARY_USER_ID", str(BETA_CUSTOMER))]
)
async def test_another_orgs_fleet_does_not_exist_by_any_identifier(gateway, keys, pair):
    assert answered(await points_balance(gateway, keys[BETA], pair, entityType="FLEET"))["entityId"] == str(BETA_FLEET)
    response = await points_balance(gateway, keys[ACME], pair, entityType="FLEET")
    assert error_extensions(response) == {"code": "INVALID_GROUP_IDENTIFIER", "errorCode": 1632}


async def test_another_orgs_program_is_program_not_found(gateway, keys):
    response = await points_balance(gateway, keys[ACME], ("ID", str(SHARED_ID)), programId=BETA_PROGRAM)
    assert error_extensions(response) == {"code": "PROGRAM_NOT_FOUND"}


async def test_all_programs_lists_only_the_orgs_own_programs(gateway, keys):
    acme = answered(await points_balance(gateway, keys[ACME], ("ID", str(SHARED_ID)), all=True))
    assert acme["programs"] == [
        {"programId": ACME_PROGRAM, "programName": "Acme Rewards"},
        {"programId": ACME_SECOND_PROGRAM, "programName": "Acme Plus"},
    ]
    beta = answered(await points_balance(gateway, keys[BETA], ("MOBILE", "15550009999"), all=True))
    assert beta["programs"] == [
        {"programId": ACME_PROGRAM, "programName": "Beta Classic"},
        {"programId": BETA_PROGRAM, "programName": "Beta Miles"},
    ]


async def test_a_program_id_two_orgs_use_answers_each_orgs_own_program(gateway, keys):
    acme = answered(await points_balance(gateway, keys[ACME], ("ID", str(SHARED_ID)), programId=ACME_PROGRAM))
    assert (acme["programs"], acme["mainPoints"]) == (
        [{"programId": ACME_PROGRAM, "programName": "Acme Rewards"}],
        "100.000",
    )
    beta = answered(await points_balance(gateway, keys[BETA], ("MOBILE", "15550009999"), programId=ACME_PROGRAM))
    assert (beta["programs"], beta["mainPoints"]) == (
        [{"programId": ACME_PROGRAM, "programName": "Beta Classic"}],
        "50.000",
    )


async def test_concurrent_requests_of_two_orgs_each_see_their_own_org(gateway, keys):
    requests = [
        points_balance(gateway, keys[org], ("ID", str(SHARED_ID)), ("MOBILE", "15550009999"))
        for org in (ACME, BETA, ACME, BETA, ACME, BETA)
    ]
    answers = [answered(response) for response in await asyncio.gather(*requests)]
    assert [a["mainPoints"] for a in answers] == ["100.000", "200.000"] * 3
    # ACME's key cannot see the MOBILE, which only BETA registered: a warning there, none in BETA.
    assert [len(a["warnings"]) for a in answers] == [1, 0] * 3


@pytest.mark.parametrize(
    ("org", "pairs", "main"),
    [
        (ACME, [("ID", str(SHARED_ID))], "100.000"),
        (ACME, [("EMAIL", "same@example.com")], "100.000"),
        (BETA, [("ID", str(SHARED_ID)), ("MOBILE", "15550009999")], "200.000"),
        (BETA, [("EMAIL", "same@example.com"), ("MOBILE", "15550009999")], "200.000"),
    ],
)
async def test_the_same_customer_id_and_identifier_in_two_orgs_are_two_customers(gateway, keys, org, pairs, main):
    balance = answered(await points_balance(gateway, keys[org], *pairs))
    assert (balance["entityId"], balance["mainPoints"], balance["warnings"]) == (str(SHARED_ID), main, [])


async def test_each_org_resolves_identifiers_by_its_own_dual_eligibility_setting(gateway, keys):
    # The same request: ACME (dual eligibility off) answers on the email; BETA needs its primary, MOBILE.
    pair = ("EMAIL", "same@example.com")
    assert answered(await points_balance(gateway, keys[ACME], pair))["entityId"] == str(SHARED_ID)
    assert error_extensions(await points_balance(gateway, keys[BETA], pair)) == {
        "code": "CUSTOMER_NOT_FOUND",
        "errorCode": 8015,
    }


async def test_a_fleets_primary_user_is_looked_up_in_the_keys_org_only(gateway, keys):
    # A customer of ACME with BETA's fleet's primary user id is nobody's primary user in ACME.
    await gateway.seed.customer(ACME, BETA_CUSTOMER)
    response = await points_balance(gateway, keys[ACME], ("PRIMARY_USER_ID", str(BETA_CUSTOMER)), entityType="FLEET")
    assert error_extensions(response) == {"code": "INVALID_GROUP_IDENTIFIER", "errorCode": 1632}


async def test_one_request_of_aliased_lookups_stays_in_the_keys_org(gateway, keys):
    query = """
    query ($own: [IdentifierInput!]!, $foreign: [IdentifierInput!]!, $fleet: [IdentifierInput!]!) {
      own: pointsBalance(identifiers: $own, source: INSTORE) { entityId mainPoints }
      foreign: pointsBalance(identifiers: $foreign, source: INSTORE) { entityId mainPoints }
      fleet: pointsBalance(identifiers: $fleet, source: INSTORE, entityType: FLEET) { entityId }
    }
    """
    variables = {
        "own": [{"type": "ID", "value": str(SHARED_ID)}],
        "foreign": [{"type": "CUID", "value": "beta-cuid"}],
        "fleet": [{"type": "ID", "value": str(BETA_FLEET)}],
    }
    response = await gateway.query(query, variables, key=keys[ACME])
    body = response.json()
    assert body["data"] == {
        "own": {"entityId": str(SHARED_ID), "mainPoints": "100.000"},
        "foreign": None,
        "fleet": None,
    }
    assert sorted(error["extensions"]["code"] for error in body["errors"]) == [
        "CUSTOMER_NOT_FOUND",
        "INVALID_GROUP_IDENTIFIER",
    ]
