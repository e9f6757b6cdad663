"""The pointsBalance query through the real app: SPEC section 3, rule by rule."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.db.sql import FETCH_BALANCES

BALANCE = """
query Balance(
  $identifiers: [IdentifierInput!]!, $source: Source!, $accountId: String, $programId: Int,
  $entityType: EntityType! = CUSTOMER, $fetchDataForAllPrograms: Boolean! = false
) {
  pointsBalance(
    identifiers: $identifiers, source: $source, accountId: $accountId, programId: $programId,
    entityType: $entityType, fetchDataForAllPrograms: $fetchDataForAllPrograms
  ) { ...balance }
}
fragment balance on PointsBalance {
  entityId entityType mainPoints promisedPoints totalPoints
  promisedPointsBreakup { delayedAccrualPoints externalTriggerBasedPoints }
  programs {
    programId programName isDefault mainPoints promisedPoints totalPoints
    promisedPointsBreakup { delayedAccrualPoints externalTriggerBasedPoints }
  }
  warnings
}
"""

ORG = 100737  # dual eligibility off
DEFAULT_PROGRAM = 973
SECOND_PROGRAM = 974
THIRD_PROGRAM = 975
DUAL_ORG = 100738  # dual eligibility on, MOBILE decides
DUAL_PROGRAM = 980

TOM = 565039505
ANN = 565039506
FLEET = 9001
OTHER_FLEET = 9002

CUSTOMER_NOT_FOUND = {"code": "CUSTOMER_NOT_FOUND", "errorCode": 8015}
INVALID_GROUP_IDENTIFIER = {"code": "INVALID_GROUP_IDENTIFIER", "errorCode": 1632}
IDENTIFIER_CONFLICT = {"code": "IDENTIFIER_CONFLICT"}
PROGRAM_NOT_FOUND = {"code": "PROGRAM_NOT_FOUND"}
BAD_USER_INPUT = {"code": "BAD_USER_INPUT"}
INVALID_ENTITY_TYPE = {"code": "INVALID_ENTITY_TYPE", "errorCode": 1212}

DECIMAL = re.compile(r"-?[0-9]+\.[0-9]{3}")


def identifiers(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"type": type_, "value": value} for type_, value in pairs]


async def points_balance(gateway: Any, key: str, *pairs: tuple[str, str], **arguments: Any) -> httpx.Response:
    """Ask for one pointsBalance; arguments use the GraphQL names (source defaults to INSTORE)."""
    variables = {"identifiers": identifiers(*pairs), "source": "INSTORE", **arguments}
    return await gateway.query(BALANCE, variables, key=key)


def answered(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["pointsBalance"]


def failed(response: httpx.Response) -> dict[str, Any]:
    """The one error of a failed lookup; its data is null."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("data") == {"pointsBalance": None}, body
    [error] = body["errors"]
    assert error["path"] == ["pointsBalance"]
    assert error["message"]
    return error


def decimals(balance: dict[str, Any]) -> list[str]:
    """Every Decimal of an answer, totals and programs alike."""
    found = []
    for item in [balance, *balance["programs"]]:
        found += [item["mainPoints"], item["promisedPoints"], item["totalPoints"]]
        found += list(item["promisedPointsBreakup"].values())
    return found


@pytest.fixture
async def key(gateway: Any) -> str:
    """An org with dual eligibility off and three programs (created out of id order), and its key."""
    seed = gateway.seed
    await seed.org(ORG)
    await seed.program(ORG, THIRD_PROGRAM, name="Third")
    await seed.program(ORG, DEFAULT_PROGRAM, default=True, name="Acme Rewards")
    await seed.program(ORG, SECOND_PROGRAM, name="Second")
    return await seed.api_key(ORG)


@pytest.fixture
async def dual_key(gateway: Any) -> str:
    """An org with dual eligibility on and MOBILE as the primary identifier, and its key."""
    seed = gateway.seed
    await seed.org(DUAL_ORG, dual_eligibility=True, primary="MOBILE")
    await seed.program(DUAL_ORG, DUAL_PROGRAM, default=True)
    return await seed.api_key(DUAL_ORG)


@pytest.fixture
async def tom(gateway: Any, key: str) -> int:
    """A customer of ORG with an identifier of every registered type under INSTORE."""
    return await gateway.seed.customer(
        ORG,
        TOM,
        ("INSTORE", None, "EMAIL", "tom@example.com"),
        ("INSTORE", None, "MOBILE", "442079460958"),
        ("INSTORE", None, "EXTERNAL_ID", "Ext-Tom"),
        ("INSTORE", None, "CARD_NUMBER", "Card-0001"),
        ("INSTORE", None, "CUID", "o6_bmjrPTlm6"),
    )


@pytest.fixture
async def ann(gateway: Any, key: str) -> int:
    return await gateway.seed.customer(
        ORG, ANN, ("INSTORE", None, "EMAIL", "ann@example.com"), ("INSTORE", None, "MOBILE", "15550001111")
    )


@pytest.fixture
async def fleet(gateway: Any, key: str, tom: int) -> int:
    """Fleet 9001 (primary user Tom) with its own balance; a customer with the same id holds other points."""
    seed = gateway.seed
    await seed.fleet(ORG, FLEET, "FLEET-9001", tom)
    await seed.balance(ORG, FLEET, DEFAULT_PROGRAM, "700", "20", "3", entity_type="FLEET")
    await seed.customer(ORG, FLEET)
    await seed.balance(ORG, FLEET, DEFAULT_PROGRAM, "1", "1", "1")
    return FLEET


# --- the answer ---------------------------------------------------------------------------------------------------


async def test_balance_has_main_promised_and_total_points(gateway, key, tom):
    await gateway.seed.balance(ORG, TOM, DEFAULT_PROGRAM, "8500", "100.5", "12.25")
    balance = answered(await points_balance(gateway, key, ("EMAIL", "tom@example.com")))
    expected_points = {
        "mainPoints": "8500.000",
        "promisedPoints": "112.750",
        "totalPoints": "8612.750",
        "promisedPointsBreakup": {"delayedAccrualPoints": "100.500", "externalTriggerBasedPoints": "12.250"},
    }
    assert balance == {
        "entityId": str(TOM),
        "entityType": "CUSTOMER",
        **expected_points,
        "programs": [
            {"programId": DEFAULT_PROGRAM, "programName": "Acme Rewards", "isDefault": True, **expected_points}
        ],
        "warnings": [],
    }


async def test_an_entity_without_balance_rows_has_zero_points(gateway, key, tom):
    balance = answered(await points_balance(gateway, key, ("EMAIL", "tom@example.com")))
    assert [p["programId"] for p in balance["programs"]] == [DEFAULT_PROGRAM]
    assert set(decimals(balance)) == {"0.000"}


@pytest.mark.parametrize(
    ("stored", "served"),
    [
        ("0", "0.000"),
        ("0.001", "0.001"),
        ("0.1", "0.100"),
        ("1000000000", "1000000000.000"),
        ("10000000000000", "10000000000000.000"),
        ("123456789012345.678", "123456789012345.678"),
        ("999999999999999.999", "999999999999999.999"),
    ],
)
async def test_decimals_are_strings_with_exactly_three_decimals_never_exponents(gateway, key, tom, stored, served):
    await gateway.seed.balance(ORG, TOM, DEFAULT_PROGRAM, stored, stored, stored)
    balance = answered(await points_balance(gateway, key, ("EMAIL", "tom@example.com")))
    assert balance["mainPoints"] == served
    assert balance["promisedPointsBreakup"] == {"delayedAccrualPoints": served, "externalTriggerBasedPoints": served}
    for value in decimals(balance):
        assert DECIMAL.fullmatch(value), value


async def test_totals_are_exact_decimal_sums(gateway, key, tom):
    await gateway.seed.balance(ORG, TOM, DEFAULT_PROGRAM, "0.1", "0.1", "0.2")
    await gateway.seed.balance(ORG, TOM, SECOND_PROGRAM, "0.2", "0.2", "0.1")
    balance = answered(await points_balance(gateway, key, ("EMAIL", "tom@example.com"), fetchDataForAllPrograms=True))
    assert balance["mainPoints"] == "0.300"
    assert balance["promisedPoints"] == "0.600"
    assert balance["totalPoints"] == "0.900"
    assert balance["promisedPointsBreakup"] == {"delayedAccrualPoints": "0.300", "externalTriggerBasedPoints": "0.300"}
    assert balance["programs"][0]["promisedPoints"] == "0.300"
    assert balance["programs"][0]["totalPoints"] == "0.400"


async def test_large_totals_are_exact(gateway, key, tom):
    largest = "999999999999999.999"
    for program in (DEFAULT_PROGRAM, SECOND_PROGRAM, THIRD_PROGRAM):
        await gateway.seed.balance(ORG, TOM, program, largest, largest, largest)
    balance = answered(await points_balance(gateway, key, ("EMAIL", "tom@example.com"), fetchDataForAllPrograms=True))
    assert balance["programs"][0]["promisedPoints"] == "1999999999999999.998"
    assert balance["programs"][0]["totalPoints"] == "2999999999999999.997"
    assert balance["mainPoints"] == "2999999999999999.997"
    assert balance["promisedPoints"] == "5999999999999999.994"
    assert balance["totalPoints"] == "8999999999999999.991"


@pytest.mark.parametrize("customer_id", [2**53 + 1, 2**63 - 1])
async def test_entity_id_is_a_string_that_round_trips_64_bit_ids_exactly(gateway, key, customer_id):
    await gateway.seed.customer(ORG, customer_id, ("INSTORE", None, "EMAIL", "big@example.com"))
    by_email = answered(await points_balance(gateway, key, ("EMAIL", "big@example.com")))
    assert by_email["entityId"] == str(customer_id)
    by_id = answered(await points_balance(gateway, key, ("ID", by_email["entityId"])))
    assert by_id["entityId"] == str(customer_id)


async def test_entity_type_defaults_to_customer(gateway, key, tom):
    query = '{ pointsBalance(identifiers: [{type: EMAIL, value: "tom@example.com"}], source: INSTORE) { entityType } }'
    response = await gateway.query(query, key=key)
    assert response.json() == {"data": {"pointsBalance": {"entityType": "CUSTOMER"}}}


# --- program selection --------------------------------------------------------------------------------------------


async def test_without_program_id_the_default_program_is_answered(gateway, key, tom):
    await gateway.seed.balance(ORG, TOM, DEFAULT_PROGRAM, "10")
    await gateway.seed.balance(ORG, TOM, SECOND_PROGRAM, "20")
    balance = answered(await points_balance(gateway, key, ("EMAIL", "tom@example.com")))
    assert [(p["programId"], p["isDefault"], p["mainPoints"]) for p in balance["programs"]] == [
        (DEFAULT_PROGRAM, True, "10.000")
    ]
    assert balance["mainPoints"] == "10.000"
    assert balance["warnings"] == []


async def test_with_program_id_that_program_is_answered(gateway, key, tom):
    await gateway.seed.balance(ORG, TOM, DEFAULT_PROGRAM, "10")
    await gateway.seed.balance(ORG, TOM, SECOND_PROGRAM, "20")
    balance = answered(await points_balance(gateway, key, ("EMAIL", "tom@example.com"), programId=SECOND_PROGRAM))
    assert [(p["programId"], p["programName"], p["isDefault"]) for p in balance["programs"]] == [
        (SECOND_PROGRAM, "Second", False)
    ]
    assert balance["mainPoints"] == "20.000"
    assert balance["warnings"] == []


async def test_all_programs_lists_every_program_of_the_org_by_id_with_zeros(gateway, key, tom):
    await gateway.seed.balance(ORG, TOM, SECOND_PROGRAM, "20", "2", "0.5")
    balance = answered(await points_balance(gateway, key, ("EMAIL", "tom@example.com"), fetchDataForAllPrograms=True))
    assert [(p["programId"], p["isDefault"], p["mainPoints"], p["totalPoints"]) for p in balance["programs"]] == [
        (DEFAULT_PROGRAM, True, "0.000", "0.000"),
        (SECOND_PROGRAM, False, "20.000", "22.500"),
        (THIRD_PROGRAM, False, "0.000", "0.000"),
    ]
    assert (balance["mainPoints"], balance["promisedPoints"], balance["totalPoints"]) == ("20.000", "2.500", "22.500")
    assert balance["warnings"] == []


@pytest.mark.parametrize("program_id", [SECOND_PROGRAM, 123456], ids=["a program of the org", "an unknown program"])
async def test_all_programs_ignores_a_passed_program_id_with_a_warning(gateway, key, tom, program_id):
    balance = answered(
        await points_balance(
            gateway, key, ("EMAIL", "tom@example.com"), programId=program_id, fetchDataForAllPrograms=True
        )
    )
    assert [p["programId"] for p in balance["programs"]] == [DEFAULT_PROGRAM, SECOND_PROGRAM, THIRD_PROGRAM]
    [warning] = balance["warnings"]
    assert str(program_id) in warning


async def test_a_program_id_the_org_does_not_have_is_program_not_found(gateway, key, tom):
    error = failed(await points_balance(gateway, key, ("EMAIL", "tom@example.com"), programId=123456))
    assert error["extensions"] == PROGRAM_NOT_FOUND


@pytest.mark.parametrize(
    ("entity_type", "pairs"),
    [
        ("CUSTOMER", [("EMAIL", "nobody@example.com")]),
        ("CUSTOMER", [("EMAIL", "tom@example.com"), ("MOBILE", "15550001111")]),  # would be a conflict
        ("FLEET", [("ID", "424242")]),
    ],
    ids=["customer not found", "identifier conflict", "no fleet"],
)
async def test_program_not_found_is_checked_before_identifier_resolution(gateway, key, tom, ann, entity_type, pairs):
    error = failed(await points_balance(gateway, key, *pairs, programId=123456, entityType=entity_type))
    assert error["extensions"] == PROGRAM_NOT_FOUND


# --- dual eligibility off: the first match decides ----------------------------------------------------------------


@pytest.mark.parametrize(
    "pair",
    [
        ("EMAIL", "tom@example.com"),
        ("MOBILE", "442079460958"),
        ("EXTERNAL_ID", "Ext-Tom"),
        ("CARD_NUMBER", "Card-0001"),
        ("CUID", "o6_bmjrPTlm6"),
        ("ID", str(TOM)),
    ],
)
async def test_a_customer_is_found_by_each_identifier_type(gateway, key, tom, pair):
    assert answered(await points_balance(gateway, key, pair))["entityId"] == str(TOM)


async def test_several_identifiers_of_one_customer_answer_without_warnings(gateway, key, tom):
    balance = answered(
        await points_balance(
            gateway,
            key,
            ("CUID", "o6_bmjrPTlm6"),
            ("EMAIL", "tom@example.com"),
            ("ID", str(TOM)),
            ("MOBILE", "442079460958"),
        )
    )
    assert (balance["entityId"], balance["warnings"]) == (str(TOM), [])


@pytest.mark.parametrize(
    "pairs",
    [
        [("EMAIL", "tom@example.com"), ("MOBILE", "15550001111")],
        [("MOBILE", "15550001111"), ("EMAIL", "tom@example.com")],
        [("EMAIL", "nobody@example.com"), ("ID", str(ANN)), ("CARD_NUMBER", "Card-0001")],
    ],
    ids=["second is another customer", "first is another customer", "after an unmatched one"],
)
async def test_identifiers_matching_different_customers_are_an_identifier_conflict(gateway, key, tom, ann, pairs):
    error = failed(await points_balance(gateway, key, *pairs))
    assert error["extensions"] == IDENTIFIER_CONFLICT


async def test_an_identifier_matching_nobody_adds_a_warning(gateway, key, tom):
    balance = answered(
        await points_balance(
            gateway, key, ("EMAIL", "nobody@example.com"), ("CARD_NUMBER", "Card-0001"), ("CUID", "unknown")
        )
    )
    assert balance["entityId"] == str(TOM)
    assert len(balance["warnings"]) == 2
    assert "EMAIL" in balance["warnings"][0]
    assert "CUID" in balance["warnings"][1]


async def test_no_identifier_matching_is_customer_not_found(gateway, key, tom):
    error = failed(await points_balance(gateway, key, ("EMAIL", "nobody@example.com"), ("MOBILE", "1")))
    assert error["extensions"] == CUSTOMER_NOT_FOUND


@pytest.mark.parametrize("value", ["abc", "0", "-1", "+1", "1.5", "1e3", str(2**63), "9" * 256])
async def test_an_id_that_is_not_a_positive_64_bit_integer_matches_nothing(gateway, key, tom, value):
    error = failed(await points_balance(gateway, key, ("ID", value)))
    assert error["extensions"] == CUSTOMER_NOT_FOUND


async def test_an_id_that_is_not_an_integer_next_to_a_match_is_only_a_warning(gateway, key, tom):
    balance = answered(await points_balance(gateway, key, ("ID", "abc"), ("EMAIL", "tom@example.com")))
    assert balance["entityId"] == str(TOM)
    assert len(balance["warnings"]) == 1


async def test_a_fleet_id_is_not_a_customer_id(gateway, key, tom):
    await gateway.seed.fleet(ORG, OTHER_FLEET, "FLEET-9002", tom)
    error = failed(await points_balance(gateway, key, ("ID", str(OTHER_FLEET))))
    assert error["extensions"] == CUSTOMER_NOT_FOUND


async def test_primary_user_id_in_a_customer_lookup_is_bad_user_input(gateway, key, tom):
    error = failed(await points_balance(gateway, key, ("PRIMARY_USER_ID", str(TOM))))
    assert error["extensions"] == BAD_USER_INPUT


# --- dual eligibility on: the primary identifier decides ----------------------------------------------------------


@pytest.fixture
async def dual_customers(gateway: Any, dual_key: str) -> None:
    """Two customers of DUAL_ORG sharing an email; each has its own mobile (the primary type)."""
    seed = gateway.seed
    await seed.customer(
        DUAL_ORG,
        TOM,
        ("INSTORE", None, "MOBILE", "442079460958"),
        ("INSTORE", None, "EMAIL", "family@example.com"),
        ("INSTORE", None, "CARD_NUMBER", "Card-0001"),
    )
    await seed.customer(
        DUAL_ORG,
        ANN,
        ("INSTORE", None, "MOBILE", "15550001111"),
        ("INSTORE", None, "EMAIL", "family@example.com"),
        ("INSTORE", None, "CUID", "ann-cuid"),
    )
    await seed.balance(DUAL_ORG, TOM, DUAL_PROGRAM, "10")
    await seed.balance(DUAL_ORG, ANN, DUAL_PROGRAM, "20")


@pytest.mark.parametrize(
    "pairs",
    [
        [("MOBILE", "15550001111")],
        [("MOBILE", "15550001111"), ("EMAIL", "family@example.com")],
        [("EMAIL", "family@example.com"), ("CUID", "ann-cuid"), ("MOBILE", "+1 (555) 000-1111")],
    ],
    ids=["alone", "first", "last and written differently"],
)
async def test_dual_eligibility_primary_identifier_decides(gateway, dual_key, dual_customers, pairs):
    balance = answered(await points_balance(gateway, dual_key, *pairs))
    assert (balance["entityId"], balance["mainPoints"], balance["warnings"]) == (str(ANN), "20.000", [])


async def test_dual_eligibility_secondary_identifiers_may_be_shared(gateway, dual_key, dual_customers):
    for mobile, customer in (("442079460958", TOM), ("15550001111", ANN)):
        balance = answered(await points_balance(gateway, dual_key, ("EMAIL", "family@example.com"), ("MOBILE", mobile)))
        assert (balance["entityId"], balance["warnings"]) == (str(customer), [])


@pytest.mark.parametrize("pair", [("EMAIL", "family@example.com"), ("CUID", "ann-cuid"), ("ID", str(ANN))])
async def test_dual_eligibility_single_secondary_identifier_is_not_found(gateway, dual_key, dual_customers, pair):
    error = failed(await points_balance(gateway, dual_key, pair))
    assert error["extensions"] == CUSTOMER_NOT_FOUND


async def test_dual_eligibility_secondary_identifiers_without_the_primary_are_not_found(
    gateway, dual_key, dual_customers
):
    error = failed(await points_balance(gateway, dual_key, ("CUID", "ann-cuid"), ("ID", str(ANN))))
    assert error["extensions"] == CUSTOMER_NOT_FOUND


async def test_dual_eligibility_primary_matching_nobody_is_not_found(gateway, dual_key, dual_customers):
    error = failed(await points_balance(gateway, dual_key, ("CUID", "ann-cuid"), ("MOBILE", "19999999999")))
    assert error["extensions"] == CUSTOMER_NOT_FOUND


async def test_dual_eligibility_secondary_of_another_customer_adds_a_warning_and_is_ignored(
    gateway, dual_key, dual_customers
):
    balance = answered(await points_balance(gateway, dual_key, ("MOBILE", "15550001111"), ("CARD_NUMBER", "Card-0001")))
    assert balance["entityId"] == str(ANN)
    [warning] = balance["warnings"]
    assert "CARD_NUMBER" in warning


async def test_dual_eligibility_secondary_matching_nobody_adds_a_warning(gateway, dual_key, dual_customers):
    balance = answered(
        await points_balance(gateway, dual_key, ("EMAIL", "nobody@example.com"), ("MOBILE", "15550001111"))
    )
    assert balance["entityId"] == str(ANN)
    [warning] = balance["warnings"]
    assert "EMAIL" in warning


async def test_dual_eligibility_secondary_id_of_another_customer_adds_a_warning(gateway, dual_key, dual_customers):
    balance = answered(await points_balance(gateway, dual_key, ("MOBILE", "15550001111"), ("ID", str(TOM))))
    assert balance["entityId"] == str(ANN)
    assert len(balance["warnings"]) == 1


async def test_dual_eligibility_does_not_apply_to_fleets(gateway, dual_key, dual_customers):
    await gateway.seed.fleet(DUAL_ORG, FLEET, "FLEET-9001", ANN)
    balance = answered(await points_balance(gateway, dual_key, ("EXTERNAL_ID", "FLEET-9001"), entityType="FLEET"))
    assert (balance["entityId"], balance["entityType"]) == (str(FLEET), "FLEET")


# --- normalisation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["tom@example.com", "TOM@EXAMPLE.COM", " Tom@Example.com ", "\ttom@example.COM\n"])
async def test_emails_match_case_insensitively_after_trimming(gateway, key, tom, written):
    assert answered(await points_balance(gateway, key, ("EMAIL", written)))["entityId"] == str(TOM)


@pytest.mark.parametrize(
    "written",
    ["442079460958", "+442079460958", "+44 20 7946 0958", "+44 (20) 7946-0958", "44-20-7946-0958", " 4420 79460958 "],
)
async def test_mobiles_match_without_spaces_dashes_brackets_and_leading_plus(gateway, key, tom, written):
    assert answered(await points_balance(gateway, key, ("MOBILE", written)))["entityId"] == str(TOM)


async def test_a_mobile_registered_in_any_format_is_found_in_any_other(gateway, key):
    await gateway.seed.customer(ORG, ANN, ("INSTORE", None, "MOBILE", "+1 (555) 000-1111"))
    assert answered(await points_balance(gateway, key, ("MOBILE", "1-555-0001111")))["entityId"] == str(ANN)


@pytest.mark.parametrize(
    ("type_", "registered"),
    [("EXTERNAL_ID", "Ext-Tom"), ("CARD_NUMBER", "Card-0001"), ("CUID", "o6_bmjrPTlm6")],
)
@pytest.mark.parametrize("change", [str.upper, str.lower, lambda v: f" {v}", lambda v: f"{v} "])
async def test_other_identifier_types_match_exactly(gateway, key, tom, type_, registered, change):
    assert answered(await points_balance(gateway, key, (type_, registered)))["entityId"] == str(TOM)
    error = failed(await points_balance(gateway, key, (type_, change(registered))))
    assert error["extensions"] == CUSTOMER_NOT_FOUND


# --- source and account scoping -----------------------------------------------------------------------------------


async def test_an_identifier_matches_only_under_its_source(gateway, key, tom):
    error = failed(await points_balance(gateway, key, ("EMAIL", "tom@example.com"), source="WEBSITE"))
    assert error["extensions"] == CUSTOMER_NOT_FOUND


@pytest.fixture
async def wechat(gateway: Any, key: str) -> None:
    """Tom's CUID under WECHAT account wx-1, Ann's same CUID under account wx-2, a third with no account."""
    seed = gateway.seed
    await seed.customer(ORG, TOM, ("WECHAT", "wx-1", "CUID", "o6_same"))
    await seed.customer(ORG, ANN, ("WECHAT", "wx-2", "CUID", "o6_same"))
    await seed.customer(ORG, 42, ("WECHAT", None, "CUID", "o6_same"))


@pytest.mark.parametrize(("account_id", "customer"), [("wx-1", TOM), ("wx-2", ANN)])
async def test_with_account_id_only_identifiers_of_that_account_match(gateway, key, wechat, account_id, customer):
    balance = answered(await points_balance(gateway, key, ("CUID", "o6_same"), source="WECHAT", accountId=account_id))
    assert balance["entityId"] == str(customer)


@pytest.mark.parametrize("arguments", [{}, {"accountId": None}, {"accountId": ""}])
async def test_without_account_id_only_identifiers_registered_without_an_account_match(gateway, key, wechat, arguments):
    balance = answered(await points_balance(gateway, key, ("CUID", "o6_same"), source="WECHAT", **arguments))
    assert balance["entityId"] == "42"


async def test_an_identifier_with_an_account_does_not_match_without_one(gateway, key):
    await gateway.seed.customer(ORG, TOM, ("WECHAT", "wx-1", "CUID", "o6_tom"))
    assert failed(await points_balance(gateway, key, ("CUID", "o6_tom"), source="WECHAT"))["extensions"] == (
        CUSTOMER_NOT_FOUND
    )
    assert (
        failed(await points_balance(gateway, key, ("CUID", "o6_tom"), source="WECHAT", accountId="wx-2"))["extensions"]
        == CUSTOMER_NOT_FOUND
    )


async def test_an_identifier_without_an_account_does_not_match_with_one(gateway, key, tom):
    error = failed(await points_balance(gateway, key, ("EMAIL", "tom@example.com"), accountId="acc-1"))
    assert error["extensions"] == CUSTOMER_NOT_FOUND


@pytest.mark.parametrize(("source", "account_id"), [("INSTORE", None), ("WECHAT", "wx-9"), ("MOBILE_APP", "")])
async def test_a_customer_id_matches_regardless_of_source_and_account(gateway, key, tom, source, account_id):
    balance = answered(await points_balance(gateway, key, ("ID", str(TOM)), source=source, accountId=account_id))
    assert balance["entityId"] == str(TOM)


async def test_identifiers_under_other_sources_do_not_conflict(gateway, key, tom):
    # Ann's email under WEBSITE is not looked at by an INSTORE lookup.
    await gateway.seed.customer(ORG, ANN, ("WEBSITE", None, "MOBILE", "442079460958"))
    balance = answered(await points_balance(gateway, key, ("EMAIL", "tom@example.com"), ("MOBILE", "442079460958")))
    assert (balance["entityId"], balance["warnings"]) == (str(TOM), [])


# --- fleets -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", [("ID", str(FLEET)), ("EXTERNAL_ID", "FLEET-9001"), ("PRIMARY_USER_ID", str(TOM))])
async def test_a_fleet_is_found_by_id_external_id_or_primary_user_id(gateway, key, fleet, pair):
    balance = answered(await points_balance(gateway, key, pair, entityType="FLEET"))
    assert balance["entityId"] == str(FLEET)
    assert balance["entityType"] == "FLEET"
    # The fleet's pooled points, not those of customer 9001 nor of its primary user.
    assert (balance["mainPoints"], balance["promisedPoints"], balance["totalPoints"]) == (
        "700.000",
        "23.000",
        "723.000",
    )


async def test_a_customer_lookup_never_answers_fleet_points(gateway, key, fleet):
    balance = answered(await points_balance(gateway, key, ("ID", str(FLEET))))
    assert (balance["entityType"], balance["mainPoints"]) == ("CUSTOMER", "1.000")


@pytest.mark.parametrize(("source", "account_id"), [("WECHAT", "wx-1"), ("JD", None), ("LINE", "")])
@pytest.mark.parametrize("pair", [("ID", str(FLEET)), ("EXTERNAL_ID", "FLEET-9001"), ("PRIMARY_USER_ID", str(TOM))])
async def test_fleet_identifiers_ignore_source_and_account(gateway, key, fleet, pair, source, account_id):
    balance = answered(
        await points_balance(gateway, key, pair, entityType="FLEET", source=source, accountId=account_id)
    )
    assert balance["entityId"] == str(FLEET)


async def test_all_fleet_identifiers_together_answer_without_warnings(gateway, key, fleet):
    balance = answered(
        await points_balance(
            gateway,
            key,
            ("PRIMARY_USER_ID", str(TOM)),
            ("EXTERNAL_ID", "FLEET-9001"),
            ("ID", str(FLEET)),
            entityType="FLEET",
            fetchDataForAllPrograms=True,
        )
    )
    assert (balance["entityId"], balance["warnings"]) == (str(FLEET), [])
    assert [p["programId"] for p in balance["programs"]] == [DEFAULT_PROGRAM, SECOND_PROGRAM, THIRD_PROGRAM]


@pytest.mark.parametrize("type_", ["MOBILE", "EMAIL", "CARD_NUMBER", "CUID"])
async def test_a_customer_identifier_type_in_a_fleet_lookup_is_an_invalid_group_identifier(gateway, key, fleet, type_):
    error = failed(
        await points_balance(gateway, key, ("ID", str(FLEET)), (type_, "tom@example.com"), entityType="FLEET")
    )
    assert error["extensions"] == INVALID_GROUP_IDENTIFIER


@pytest.mark.parametrize(
    "pair",
    [
        ("ID", str(OTHER_FLEET)),
        ("ID", "FLEET-9001"),
        ("ID", str(2**63)),
        ("EXTERNAL_ID", "fleet-9001"),
        ("EXTERNAL_ID", "FLEET-9001 "),
        ("EXTERNAL_ID", "Ext-Tom"),
        ("PRIMARY_USER_ID", str(ANN)),
        ("PRIMARY_USER_ID", str(FLEET)),
        ("PRIMARY_USER_ID", "abc"),
    ],
)
async def test_no_fleet_matching_is_an_invalid_group_identifier(gateway, key, fleet, ann, pair):
    error = failed(await points_balance(gateway, key, pair, entityType="FLEET"))
    assert error["extensions"] == INVALID_GROUP_IDENTIFIER


async def test_fleet_identifiers_matching_different_fleets_are_an_identifier_conflict(gateway, key, fleet, ann):
    await gateway.seed.fleet(ORG, OTHER_FLEET, "FLEET-9002", ANN)
    error = failed(
        await points_balance(gateway, key, ("ID", str(FLEET)), ("EXTERNAL_ID", "FLEET-9002"), entityType="FLEET")
    )
    assert error["extensions"] == IDENTIFIER_CONFLICT


async def test_a_fleet_identifier_matching_nobody_adds_a_warning(gateway, key, fleet):
    balance = answered(
        await points_balance(gateway, key, ("EXTERNAL_ID", "nope"), ("ID", str(FLEET)), entityType="FLEET")
    )
    assert balance["entityId"] == str(FLEET)
    [warning] = balance["warnings"]
    assert "EXTERNAL_ID" in warning


# --- validation ---------------------------------------------------------------------------------------------------

TOO_LONG = "1" * 257


@pytest.mark.parametrize(
    ("pairs", "arguments"),
    [
        ([], {}),
        ([("EMAIL", "tom@example.com"), ("EMAIL", "ann@example.com")], {}),
        ([("EMAIL", "tom@example.com"), ("MOBILE", "1"), ("MOBILE", "2")], {}),
        ([("EMAIL", f"{n}@example.com") for n in range(11)], {}),
        ([("EMAIL", "")], {}),
        ([("EMAIL", "   ")], {}),
        ([("CARD_NUMBER", " \t ")], {}),
        ([("MOBILE", "+() -")], {}),
        ([("ID", "")], {}),
        ([("EMAIL", "tom@example.com"), ("CUID", TOO_LONG)], {}),
        ([("ID", TOO_LONG)], {"entityType": "FLEET"}),
        ([("EMAIL", "tom@example.com")], {"accountId": "a" * 257}),
        ([("CARD_NUMBER", "Card\x000001")], {}),
        ([("EMAIL", "tom@example.com")], {"accountId": "wx\x00"}),
        ([("PRIMARY_USER_ID", str(TOM))], {}),
    ],
    ids=[
        "no identifiers",
        "two EMAILs",
        "two MOBILEs",
        "eleven identifiers",
        "empty value",
        "blank value",
        "blank card number",
        "mobile empty after normalisation",
        "empty ID",
        "value of 257 characters",
        "fleet ID of 257 characters",
        "accountId of 257 characters",
        "NUL in a value",
        "NUL in accountId",
        "PRIMARY_USER_ID for a customer",
    ],
)
async def test_invalid_arguments_are_bad_user_input(gateway, key, tom, pairs, arguments):
    error = failed(await points_balance(gateway, key, *pairs, **arguments))
    assert error["extensions"] == BAD_USER_INPUT


async def test_validation_comes_before_the_program_check(gateway, key):
    error = failed(await points_balance(gateway, key, programId=123456))
    assert error["extensions"] == BAD_USER_INPUT


async def test_values_and_account_ids_of_256_characters_are_accepted(gateway, key):
    card, account = "C" * 256, "a" * 256
    await gateway.seed.customer(ORG, TOM, ("ECOMMERCE", account, "CARD_NUMBER", card))
    balance = answered(await points_balance(gateway, key, ("CARD_NUMBER", card), source="ECOMMERCE", accountId=account))
    assert balance["entityId"] == str(TOM)


@pytest.mark.parametrize(
    "query",
    [
        '{ pointsBalance(identifiers: [{type: ID, value: "1"}], source: INSTORE, entityType: GROUP) { entityId } }',
        '{ pointsBalance(identifiers: [{type: ID, value: "1"}], source: INSTORE, entityType: customer) { entityId } }',
    ],
    ids=["GROUP", "lower case"],
)
async def test_an_unknown_entity_type_literal_is_invalid_entity_type(gateway, key, query):
    response = await gateway.query(query, key=key)
    [error] = response.json()["errors"]
    assert error["extensions"] == INVALID_ENTITY_TYPE
    assert "data" not in response.json()


async def test_an_unknown_entity_type_variable_is_invalid_entity_type(gateway, key, tom):
    response = await points_balance(gateway, key, ("ID", str(TOM)), entityType="GROUP")
    [error] = response.json()["errors"]
    assert error["extensions"] == INVALID_ENTITY_TYPE
    assert "data" not in response.json()


# --- several lookups in one request -------------------------------------------------------------------------------

ALIASED = """
query ($ok: [IdentifierInput!]!, $unknown: [IdentifierInput!]!, $invalid: [IdentifierInput!]!,
       $fleet: [IdentifierInput!]!) {
  ok: pointsBalance(identifiers: $ok, source: INSTORE) { entityId mainPoints }
  unknown: pointsBalance(identifiers: $unknown, source: INSTORE) { entityId mainPoints }
  invalid: pointsBalance(identifiers: $invalid, source: INSTORE) { entityId mainPoints }
  fleet: pointsBalance(identifiers: $fleet, source: INSTORE, entityType: FLEET) { entityId mainPoints }
  again: pointsBalance(identifiers: $ok, source: INSTORE) { entityId totalPoints }
}
"""
ALIASED_VARIABLES = {
    "ok": identifiers(("EMAIL", "tom@example.com")),
    "unknown": identifiers(("EMAIL", "nobody@example.com")),
    "invalid": [],
    "fleet": identifiers(("EXTERNAL_ID", "FLEET-9001")),
}


async def test_aliased_lookups_answer_independently(gateway, key, fleet):
    await gateway.seed.balance(ORG, TOM, DEFAULT_PROGRAM, "5")
    response = await gateway.query(ALIASED, ALIASED_VARIABLES, key=key)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {
        "ok": {"entityId": str(TOM), "mainPoints": "5.000"},
        "unknown": None,
        "invalid": None,
        "fleet": {"entityId": str(FLEET), "mainPoints": "700.000"},
        "again": {"entityId": str(TOM), "totalPoints": "5.000"},
    }
    codes = {tuple(error["path"]): error["extensions"] for error in body["errors"]}
    assert codes == {("unknown",): CUSTOMER_NOT_FOUND, ("invalid",): BAD_USER_INPUT}


async def test_aliased_lookups_are_served_by_one_statement(gateway, key, fleet, database_url):
    """While balances are locked, the gateway's statements queue behind the lock where they can be counted."""
    watcher = await asyncpg.connect(database_url)
    locker = gateway.seed.connection
    try:
        async with locker.transaction():
            await locker.execute("LOCK TABLE balances IN ACCESS EXCLUSIVE MODE")
            request = asyncio.create_task(gateway.query(ALIASED, ALIASED_VARIABLES, key=key))
            waiting = await _statements_waiting_for_a_lock(watcher, request)
        response = await request
    finally:
        await watcher.close()
    assert len(waiting) == 1, waiting
    assert FETCH_BALANCES.startswith(waiting[0])
    assert response.json()["data"]["fleet"] == {"entityId": str(FLEET), "mainPoints": "700.000"}


async def _statements_waiting_for_a_lock(watcher: asyncpg.Connection, request: asyncio.Task[Any]) -> list[str]:
    """The gateway's statements blocked on a lock, once they have had time to queue up."""
    statement = """
        SELECT query FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'loyalty-gateway' AND wait_event_type = 'Lock'
    """
    deadline = time.monotonic() + 10
    while not await watcher.fetch(statement):
        assert not request.done(), "the request finished without waiting for the lock"
        assert time.monotonic() < deadline, "no statement of the gateway waits for the lock"
        await asyncio.sleep(0.02)
    # Unbatched lookups would each take a pool connection and queue up too.
    await asyncio.sleep(0.5)
    return [row["query"] for row in await watcher.fetch(statement)]


async def test_warnings_of_one_lookup_accumulate_in_order(gateway, key, tom):
    balance = answered(
        await points_balance(
            gateway,
            key,
            ("CUID", "unknown"),
            ("EMAIL", "tom@example.com"),
            programId=SECOND_PROGRAM,
            fetchDataForAllPrograms=True,
        )
    )
    assert len(balance["warnings"]) == 2
    assert str(SECOND_PROGRAM) in balance["warnings"][0]
    assert "CUID" in balance["warnings"][1]
