"""The lookup rules on their own: argument validation, program selection and
identifier resolution, fed with what the database would have matched."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from gateway.domain.lookup import (
    MAX_IDENTIFIERS,
    Lookup,
    Matches,
    ProgramPoints,
    balance_of,
    build_lookup,
    decide,
)
from gateway.domain.vocabulary import EntityType, IdentifierType, Source
from gateway.errors import (
    BadUserInput,
    CustomerNotFound,
    IdentifierConflict,
    InvalidGroupIdentifier,
    ProgramNotFound,
)

MOBILE = IdentifierType.MOBILE
EMAIL = IdentifierType.EMAIL
EXTERNAL_ID = IdentifierType.EXTERNAL_ID
CARD_NUMBER = IdentifierType.CARD_NUMBER
CUID = IdentifierType.CUID
ID = IdentifierType.ID
PRIMARY_USER_ID = IdentifierType.PRIMARY_USER_ID

CUSTOMER = EntityType.CUSTOMER
FLEET = EntityType.FLEET


def lookup(
    *identifiers: tuple[IdentifierType, str],
    account_id: str | None = None,
    program_id: int | None = None,
    entity_type: EntityType = CUSTOMER,
    all_programs: bool = False,
) -> Lookup:
    return build_lookup(
        identifiers=list(identifiers),
        source=Source.INSTORE,
        account_id=account_id,
        program_id=program_id,
        entity_type=entity_type,
        fetch_data_for_all_programs=all_programs,
    )


def points(
    program_id: int = 973, main: str = "0", delayed: str = "0", external: str = "0", *, default: bool = True
) -> ProgramPoints:
    return ProgramPoints(
        program_id=program_id,
        program_name=f"Program {program_id}",
        is_default=default,
        main=Decimal(main),
        delayed_accrual=Decimal(delayed),
        external_trigger=Decimal(external),
    )


def matched(
    entity_id: int | None,
    belongs: Sequence[bool],
    other: Sequence[bool] | None = None,
    *,
    primary: IdentifierType | None = None,
    programs: Sequence[ProgramPoints] = (points(),),
) -> Matches:
    return Matches(
        dual_eligibility=primary is not None,
        primary_identifier=primary,
        entity_id=entity_id,
        belongs=tuple(belongs),
        other=tuple(other) if other is not None else (False,) * len(belongs),
        programs=tuple(programs),
    )


# --- validation ---------------------------------------------------------------------------------------------------


def test_an_empty_identifier_list_is_bad_user_input() -> None:
    with pytest.raises(BadUserInput):
        lookup()


def test_two_identifiers_of_one_type_are_bad_user_input() -> None:
    with pytest.raises(BadUserInput, match="EMAIL"):
        lookup((EMAIL, "a@example.com"), (MOBILE, "1"), (EMAIL, "b@example.com"))


def test_the_same_identifier_sent_twice_is_bad_user_input() -> None:
    with pytest.raises(BadUserInput):
        lookup((EMAIL, "a@example.com"), (EMAIL, "a@example.com"))


def test_more_than_ten_identifiers_are_bad_user_input() -> None:
    eleven = [(EMAIL, f"{n}@example.com") for n in range(MAX_IDENTIFIERS + 1)]
    with pytest.raises(BadUserInput, match=str(MAX_IDENTIFIERS)):
        lookup(*eleven)


@pytest.mark.parametrize("type_", [MOBILE, EMAIL, EXTERNAL_ID, CARD_NUMBER, CUID, ID])
@pytest.mark.parametrize("value", ["", " ", "\t\n  "])
def test_an_empty_or_blank_value_is_bad_user_input(type_: IdentifierType, value: str) -> None:
    with pytest.raises(BadUserInput):
        lookup((type_, value))


@pytest.mark.parametrize("value", ["()", "+", "- -", "[ ]", "+()-"])
def test_a_mobile_that_is_empty_after_normalisation_is_bad_user_input(value: str) -> None:
    with pytest.raises(BadUserInput):
        lookup((MOBILE, value))


@pytest.mark.parametrize("type_", [MOBILE, EMAIL, EXTERNAL_ID, CARD_NUMBER, CUID, ID])
def test_a_value_over_256_characters_is_bad_user_input(type_: IdentifierType) -> None:
    with pytest.raises(BadUserInput, match="256"):
        lookup((type_, "1" * 257))


@pytest.mark.parametrize("type_", [MOBILE, EMAIL, EXTERNAL_ID, CARD_NUMBER, CUID, ID])
def test_a_value_of_256_characters_is_accepted(type_: IdentifierType) -> None:
    assert len(lookup((type_, "1" * 256)).identifiers[0].value) == 256


def test_an_account_id_over_256_characters_is_bad_user_input() -> None:
    with pytest.raises(BadUserInput, match="accountId"):
        lookup((EMAIL, "a@example.com"), account_id="a" * 257)


def test_an_account_id_of_256_characters_is_accepted() -> None:
    assert lookup((EMAIL, "a@example.com"), account_id="a" * 256).account_id == "a" * 256


@pytest.mark.parametrize("value", ["\x00", "a\x00b", "tom@example.com\x00"])
def test_a_value_with_a_nul_character_is_bad_user_input(value: str) -> None:
    # PostgreSQL text cannot hold NUL; without this check the statement fails.
    with pytest.raises(BadUserInput):
        lookup((CARD_NUMBER, value))


def test_an_account_id_with_a_nul_character_is_bad_user_input() -> None:
    with pytest.raises(BadUserInput, match="accountId"):
        lookup((EMAIL, "a@example.com"), account_id="wx\x001")


def test_primary_user_id_in_a_customer_lookup_is_bad_user_input() -> None:
    with pytest.raises(BadUserInput, match="PRIMARY_USER_ID"):
        lookup((PRIMARY_USER_ID, "565039505"))


@pytest.mark.parametrize("type_", [MOBILE, EMAIL, CARD_NUMBER, CUID])
def test_a_customer_identifier_type_in_a_fleet_lookup_is_an_invalid_group_identifier(type_: IdentifierType) -> None:
    with pytest.raises(InvalidGroupIdentifier) as raised:
        lookup((ID, "9001"), (type_, "x"), entity_type=FLEET)
    assert raised.value.error_code == 1632


@pytest.mark.parametrize("type_", [ID, EXTERNAL_ID, PRIMARY_USER_ID])
def test_a_fleet_is_looked_up_by_id_external_id_or_primary_user_id(type_: IdentifierType) -> None:
    assert lookup((type_, "9001"), entity_type=FLEET).identifiers[0].type is type_


@pytest.mark.parametrize("type_", [MOBILE, EMAIL, EXTERNAL_ID, CARD_NUMBER, CUID, ID])
def test_every_customer_identifier_type_is_accepted_for_customers(type_: IdentifierType) -> None:
    assert lookup((type_, "42")).identifiers[0].type is type_


# --- what a valid lookup carries ----------------------------------------------------------------------------------


def test_values_are_normalised_and_kept_in_the_order_sent() -> None:
    built = lookup((CARD_NUMBER, " Card-1 "), (EMAIL, " Tom@Example.com "), (MOBILE, "+44 (20) 7946-0958"))
    assert [(i.type, i.value) for i in built.identifiers] == [
        (CARD_NUMBER, " Card-1 "),
        (EMAIL, "tom@example.com"),
        (MOBILE, "442079460958"),
    ]


def test_id_values_carry_their_parsed_entity_id() -> None:
    assert lookup((ID, " 565039505 ")).identifiers[0].entity_id == 565039505
    assert lookup((PRIMARY_USER_ID, str(2**63 - 1)), entity_type=FLEET).identifiers[0].entity_id == 2**63 - 1


@pytest.mark.parametrize("value", ["abc", "0", "-5", str(2**63), "1.5"])
def test_an_id_that_is_not_a_positive_64_bit_integer_is_accepted_and_can_match_nothing(value: str) -> None:
    assert lookup((ID, value)).identifiers[0].entity_id is None


def test_registered_types_carry_no_entity_id() -> None:
    assert lookup((EXTERNAL_ID, "123")).identifiers[0].entity_id is None


@pytest.mark.parametrize("account_id", [None, ""])
def test_no_account_id_is_the_empty_account(account_id: str | None) -> None:
    assert lookup((EMAIL, "a@example.com"), account_id=account_id).account_id == ""


# --- program selection --------------------------------------------------------------------------------------------


def test_all_programs_with_a_program_id_ignores_the_program_id_with_a_warning() -> None:
    built = lookup((EMAIL, "a@example.com"), program_id=974, all_programs=True)
    assert built.all_programs
    assert built.program_id is None
    assert len(built.warnings) == 1
    assert "974" in built.warnings[0]


def test_all_programs_without_a_program_id_has_no_warning() -> None:
    built = lookup((EMAIL, "a@example.com"), all_programs=True)
    assert (built.all_programs, built.program_id, built.warnings) == (True, None, ())


def test_one_program_with_a_program_id_asks_for_that_program() -> None:
    built = lookup((EMAIL, "a@example.com"), program_id=974)
    assert (built.all_programs, built.program_id, built.warnings) == (False, 974, ())


def test_one_program_without_a_program_id_asks_for_the_default_program() -> None:
    built = lookup((EMAIL, "a@example.com"))
    assert (built.all_programs, built.program_id, built.warnings) == (False, None, ())


def test_a_program_id_the_org_does_not_have_is_program_not_found() -> None:
    with pytest.raises(ProgramNotFound, match="974"):
        decide(lookup((EMAIL, "a@example.com"), program_id=974), matched(5, [True], programs=()))


def test_program_not_found_comes_before_identifier_resolution() -> None:
    with pytest.raises(ProgramNotFound):
        decide(lookup((EMAIL, "a@example.com"), program_id=974), matched(None, [False], programs=()))
    with pytest.raises(ProgramNotFound):
        decide(lookup((ID, "9001"), program_id=974, entity_type=FLEET), matched(None, [False], programs=()))
    with pytest.raises(ProgramNotFound):
        decide(
            lookup((EMAIL, "a@example.com"), program_id=974),
            matched(None, [False], primary=MOBILE, programs=()),
        )


def test_all_programs_never_is_program_not_found() -> None:
    answer = decide(lookup((EMAIL, "a@example.com"), program_id=974, all_programs=True), matched(5, [True]))
    assert answer.entity_id == 5


# --- dual eligibility on ------------------------------------------------------------------------------------------


def test_dual_eligibility_primary_identifier_decides() -> None:
    answer = decide(lookup((EMAIL, "a@example.com"), (MOBILE, "1")), matched(7, [True, True], primary=MOBILE))
    assert (answer.entity_id, answer.entity_type, answer.warnings) == (7, CUSTOMER, ())


def test_dual_eligibility_single_secondary_identifier_is_not_found() -> None:
    with pytest.raises(CustomerNotFound) as raised:
        decide(lookup((EMAIL, "a@example.com")), matched(None, [False], primary=MOBILE))
    assert raised.value.error_code == 8015


def test_dual_eligibility_without_the_primary_type_is_not_found_even_if_secondaries_match() -> None:
    # The database never decides on a secondary; even if it had, no primary means 8015.
    with pytest.raises(CustomerNotFound):
        decide(lookup((EMAIL, "a@example.com"), (CARD_NUMBER, "c")), matched(7, [True, True], primary=MOBILE))


def test_dual_eligibility_primary_matching_nobody_is_not_found() -> None:
    with pytest.raises(CustomerNotFound):
        decide(lookup((MOBILE, "1"), (EMAIL, "a@example.com")), matched(None, [False, False], primary=MOBILE))


def test_dual_eligibility_secondary_of_another_customer_is_a_warning_not_an_error() -> None:
    answer = decide(
        lookup((MOBILE, "1"), (EMAIL, "a@example.com"), (CARD_NUMBER, "c")),
        matched(7, [True, False, True], [False, True, False], primary=MOBILE),
    )
    assert answer.entity_id == 7
    assert len(answer.warnings) == 1
    assert "EMAIL" in answer.warnings[0]


def test_dual_eligibility_secondary_matching_nobody_is_a_warning() -> None:
    answer = decide(lookup((EMAIL, "a@example.com"), (MOBILE, "1")), matched(7, [False, True], primary=MOBILE))
    assert answer.entity_id == 7
    assert len(answer.warnings) == 1
    assert "EMAIL" in answer.warnings[0]


def test_dual_eligibility_does_not_apply_to_fleets() -> None:
    answer = decide(lookup((EXTERNAL_ID, "F-1"), entity_type=FLEET), matched(9001, [True], primary=MOBILE))
    assert (answer.entity_id, answer.entity_type) == (9001, FLEET)


# --- dual eligibility off -----------------------------------------------------------------------------------------


def test_first_matching_identifier_decides() -> None:
    answer = decide(lookup((EMAIL, "a@example.com"), (MOBILE, "1")), matched(7, [True, True]))
    assert (answer.entity_id, answer.warnings) == (7, ())


def test_identifier_matching_a_different_customer_is_a_conflict() -> None:
    with pytest.raises(IdentifierConflict) as raised:
        decide(lookup((EMAIL, "a@example.com"), (MOBILE, "1")), matched(7, [True, False], [False, True]))
    assert raised.value.error_code is None


def test_identifier_matching_nobody_is_a_warning() -> None:
    answer = decide(lookup((EMAIL, "a@example.com"), (MOBILE, "1"), (CUID, "c")), matched(7, [False, True, False]))
    assert answer.entity_id == 7
    assert len(answer.warnings) == 2
    assert "EMAIL" in answer.warnings[0]
    assert "CUID" in answer.warnings[1]


def test_no_identifier_matching_is_customer_not_found() -> None:
    with pytest.raises(CustomerNotFound) as raised:
        decide(lookup((EMAIL, "a@example.com"), (MOBILE, "1")), matched(None, [False, False]))
    assert raised.value.error_code == 8015


# --- fleets -------------------------------------------------------------------------------------------------------


def test_no_fleet_matching_is_an_invalid_group_identifier() -> None:
    with pytest.raises(InvalidGroupIdentifier) as raised:
        decide(lookup((ID, "9001"), entity_type=FLEET), matched(None, [False]))
    assert raised.value.error_code == 1632


def test_fleet_identifiers_matching_different_fleets_are_a_conflict() -> None:
    with pytest.raises(IdentifierConflict):
        decide(
            lookup((ID, "9001"), (EXTERNAL_ID, "F-2"), entity_type=FLEET), matched(9001, [True, False], [False, True])
        )


def test_fleet_identifier_matching_nobody_is_a_warning() -> None:
    answer = decide(lookup((ID, "9001"), (EXTERNAL_ID, "F-2"), entity_type=FLEET), matched(9001, [True, False]))
    assert (answer.entity_id, answer.entity_type) == (9001, FLEET)
    assert len(answer.warnings) == 1
    assert "EXTERNAL_ID" in answer.warnings[0]
    assert "fleet" in answer.warnings[0]


# --- the answer ---------------------------------------------------------------------------------------------------


def test_lookup_warnings_come_before_resolution_warnings() -> None:
    answer = decide(
        lookup((EMAIL, "a@example.com"), (MOBILE, "1"), program_id=974, all_programs=True),
        matched(7, [False, True]),
    )
    assert len(answer.warnings) == 2
    assert "974" in answer.warnings[0]
    assert "EMAIL" in answer.warnings[1]


def test_totals_are_exact_sums_over_programs() -> None:
    balance = balance_of(
        7, CUSTOMER, (points(1, "0.1", "0.2", "0.001"), points(2, "0.2", "0.1", "0.002", default=False)), ()
    )
    assert balance.main == Decimal("0.3")
    assert balance.delayed_accrual == Decimal("0.3")
    assert balance.external_trigger == Decimal("0.003")
    assert balance.promised == Decimal("0.303")
    assert balance.total == Decimal("0.603")


def test_program_promised_and_total_points() -> None:
    program = points(1, "999999999999999.999", "999999999999999.999", "999999999999999.999")
    assert program.promised == Decimal("1999999999999999.998")
    assert program.total == Decimal("2999999999999999.997")


def test_a_balance_without_programs_is_zero() -> None:
    balance = balance_of(7, CUSTOMER, (), ())
    assert (balance.main, balance.promised, balance.total) == (Decimal(0), Decimal(0), Decimal(0))
