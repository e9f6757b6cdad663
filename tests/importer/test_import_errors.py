"""A bad line stops the import: the message names the line and the reason, and nothing is applied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.importer import ImportFailed, import_file
from tests.importer import balance, customer, dump, fleet, identifier, org, program, write_jsonl

# What the database may already hold: two orgs, one of each rule.
SEED = [
    org(1, name="Dual off"),
    program(1, 1, default=True),
    program(2, 1, default=False),
    customer(10, 1, identifier("EMAIL", "a@x.com")),
    customer(11, 1),
    fleet(100, 1, "F-100", 10),
    balance(1, 10, 1, main="10"),
    org(2, name="Dual on", dual=True, primary="MOBILE"),
    program(3, 2, default=True),
    customer(20, 2, identifier("MOBILE", "555"), identifier("EMAIL", "family@x.com")),
    customer(21, 2, identifier("MOBILE", "556"), identifier("EMAIL", "family@x.com")),
]

# Lines 1-3 of every case below: a valid org of its own, so each case means
# the same whether the database is empty or seeded.
PREFIX: list[dict[str, Any] | str] = [
    org(7),
    program(70, 7),
    customer(71, 7, identifier("EMAIL", "b@x.com"), identifier("MOBILE", "+1 555 0100")),
]

# (name, line 4 onwards, the line at fault, a fragment of the reason)
CASES: list[tuple[str, list[dict[str, Any] | str], int, str]] = [
    ("invalid_json", ['{"kind":"org","id":8,'], 4, "invalid JSON"),
    ("invalid_json_nan", ['{"kind":"balance","mainPoints":NaN}'], 4, "invalid JSON: NaN is not a JSON value"),
    ("invalid_json_repeated_field", ['{"kind":"org","id":8,"id":9}'], 4, 'field "id" appears twice'),
    ("not_an_object", ["[1, 2]"], 4, "a line must be a JSON object, not an array"),
    ("not_an_object_string", ['"org"'], 4, "a line must be a JSON object, not a string"),
    ("unknown_kind", [{"kind": "coupon", "id": 1}], 4, 'unknown kind "coupon"'),
    ("missing_kind", [{"id": 1}], 4, 'missing field "kind"'),
    ("unknown_field", [{**org(8), "colour": "red"}], 4, 'unknown field "colour" in org record'),
    (
        "unknown_identifier_field",
        [customer(72, 7, {**identifier("EMAIL", "c@x.com"), "primary": True})],
        4,
        'unknown field "primary" in identifiers[0]',
    ),
    ("missing_field", [{"kind": "program", "id": 71, "orgId": 7, "name": "P"}], 4, 'missing field "default"'),
    ("missing_primary_identifier", [org(8, dual=True)], 4, '"primaryIdentifier" is required'),
    ("primary_identifier_without_dual", [org(8, primary="EMAIL")], 4, '"primaryIdentifier" is only allowed'),
    ("points_with_four_decimals_as_text", [balance(7, 71, 70, main="1.2345")], 4, "more than 3 decimals"),
    ("points_with_four_decimals_as_number", [balance(7, 71, 70, delayed=1.2345)], 4, "more than 3 decimals"),
    ("points_too_large", [balance(7, 71, 70, external="1000000000000000")], 4, "less than 10^15"),
    ("points_in_exponent_text", [balance(7, 71, 70, main="1e3")], 4, '"mainPoints" must be a decimal number such as'),
    ("points_as_boolean", [balance(7, 71, 70, main=True)], 4, '"mainPoints" must be a string or a number'),
    ("float_looking_id", ['{"kind":"customer","id":72.0,"orgId":7,"identifiers":[]}'], 4, '"id" must be an integer'),
    ("id_as_string", [customer("72", 7)], 4, '"id" must be an integer'),  # type: ignore[arg-type]
    ("id_zero", [customer(0, 7)], 4, '"id" must be an integer from 1'),
    ("id_beyond_64_bits", [customer(2**63, 7)], 4, '"id" must be an integer from 1 to 9223372036854775807'),
    (
        "program_id_beyond_32_bits",
        [program(2**31, 7, default=False)],
        4,
        '"id" must be an integer from 1 to 2147483647',
    ),
    ("boolean_as_string", [{**org(8), "dualEligibility": "false"}], 4, '"dualEligibility" must be true or false'),
    ("bad_source", [customer(72, 7, identifier("EMAIL", "c@x.com", source="SHOP"))], 4, "identifiers[0].source"),
    ("bad_identifier_type", [customer(72, 7, identifier("PHONE", "1"))], 4, "identifiers[0].type must be one of"),
    ("id_is_not_a_registered_type", [customer(72, 7, identifier("ID", "72"))], 4, "identifiers[0].type"),
    ("bad_entity_type", [balance(7, 71, 70, entity_type="GROUP")], 4, '"entityType" must be one of'),
    ("bad_primary_identifier", [org(8, dual=True, primary="ID")], 4, '"primaryIdentifier" must be one of'),
    ("empty_name", [org(8, name=" ")], 4, '"name" must not be blank'),
    ("identifier_empty_once_normalised", [customer(72, 7, identifier("MOBILE", "( ) -"))], 4, "empty once normalised"),
    ("identifier_too_long", [customer(72, 7, identifier("CUID", "x" * 257))], 4, "longer than 256 characters"),
    ("identifier_with_nul", [customer(72, 7, identifier("CUID", "a\u0000b"))], 4, "NUL"),
    (
        "same_identifier_twice_in_one_customer",
        [customer(72, 7, identifier("EMAIL", "c@x.com"), identifier("EMAIL", " C@X.com"))],
        4,
        "identifiers[1] is the same identifier as identifiers[0]",
    ),
    ("unknown_org", [customer(72, 99)], 4, "unknown org 99"),
    ("unknown_program", [balance(7, 71, 79)], 4, "unknown program: org 7 has no program 79"),
    ("unknown_customer", [balance(7, 72, 70)], 4, "unknown entity: org 7 has no customer 72"),
    ("unknown_fleet", [balance(7, 71, 70, entity_type="FLEET")], 4, "unknown entity: org 7 has no fleet 71"),
    ("unknown_primary_user", [fleet(700, 7, "F-700", 72)], 4, "unknown primaryUserId: org 7 has no customer 72"),
    # The customer exists, but in another org: references never cross orgs.
    ("customer_of_another_org", [org(8), program(80, 8), balance(8, 71, 80)], 6, "org 8 has no customer 71"),
    ("second_default_program", [program(71, 7, default=True)], 4, "org 7 already has a default program: program 70"),
    ("org_without_default_program", [org(8), program(80, 8, default=False)], 4, "org 8 has no default program"),
    ("program_without_default_program", [program(71, 7, default=False), org(8)], 5, "org 8 has no default program"),
    (
        "duplicate_unique_identifier_in_dual_off_org",
        [customer(72, 7, identifier("EMAIL", "B@x.com "))],
        4,
        'identifier EMAIL "b@x.com" (source INSTORE) already belongs to customer 71 on line 3',
    ),
    (
        "duplicate_primary_identifier_in_dual_on_org",
        [
            org(8, dual=True, primary="MOBILE"),
            program(80, 8),
            customer(81, 8, identifier("MOBILE", "777"), identifier("EMAIL", "shared@x.com")),
            customer(82, 8, identifier("MOBILE", "(777)"), identifier("EMAIL", "shared@x.com")),
        ],
        7,
        'identifier MOBILE "777" (source INSTORE) already belongs to customer 81 on line 6',
    ),
    ("duplicate_org", [org(7, name="Again")], 4, "org 7 is already defined on line 1"),
    ("duplicate_program", [program(70, 7)], 4, "program 70 of org 7 is already defined on line 2"),
    ("duplicate_customer", [customer(71, 7)], 4, "customer 71 of org 7 is already defined on line 3"),
    (
        "duplicate_balance",
        [balance(7, 71, 70), balance(7, 71, 70, main="1")],
        5,
        "the balance of CUSTOMER 71 in program 70 of org 7 is already defined on line 4",
    ),
    (
        "duplicate_fleet",
        [fleet(700, 7, "F-700", 71), fleet(700, 7, "F-701", 71)],
        5,
        "fleet 700 of org 7 is already defined on line 4",
    ),
    (
        "duplicate_fleet_external_id",
        [customer(72, 7), fleet(700, 7, "F-700", 71), fleet(701, 7, "F-700", 72)],
        6,
        'externalId "F-700" is already used by fleet 700 on line 5',
    ),
    (
        "primary_user_heading_two_fleets",
        [fleet(700, 7, "F-700", 71), fleet(701, 7, "F-701", 71)],
        5,
        "customer 71 is already the primary user of fleet 700 on line 4",
    ),
]


async def _seed(connection, tmp_path: Path) -> None:
    await import_file(connection, write_jsonl(tmp_path / "seed.jsonl", SEED), progress=False)


async def _assert_fails_and_changes_nothing(connection, path: Path, line: int, fragment: str) -> ImportFailed:
    before = await dump(connection)
    with pytest.raises(ImportFailed) as failure:
        await import_file(connection, path, progress=False)
    assert failure.value.line == line, str(failure.value)
    assert fragment in failure.value.reason
    assert str(failure.value) == f"line {line}: {failure.value.reason}"
    assert await dump(connection) == before
    return failure.value


@pytest.mark.parametrize("seeded", [False, True], ids=["empty_database", "seeded_database"])
@pytest.mark.parametrize(("lines", "line", "fragment"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
async def test_a_bad_line_fails_naming_the_line_and_the_reason_and_applies_nothing(
    connection, tmp_path: Path, seeded: bool, lines: list[Any], line: int, fragment: str
):
    if seeded:
        await _seed(connection, tmp_path)
    path = write_jsonl(tmp_path / "bad.jsonl", [*PREFIX, *lines])

    await _assert_fails_and_changes_nothing(connection, path, line, fragment)


async def test_line_numbers_count_blank_lines(connection, tmp_path: Path):
    path = write_jsonl(tmp_path / "bad.jsonl", ["", *PREFIX[:2], "  ", "", "{oops}"])

    await _assert_fails_and_changes_nothing(connection, path, 6, "invalid JSON")


async def test_a_line_that_is_not_utf8_fails(connection, tmp_path: Path):
    path = tmp_path / "latin1.jsonl"
    latin1 = b'{"kind":"org","id":8,"name":"Caf\xe9","dualEligibility":false}'
    path.write_bytes(json.dumps(org(7)).encode() + b"\n" + latin1 + b"\n")

    await _assert_fails_and_changes_nothing(connection, path, 2, "not UTF-8")


async def test_the_earliest_bad_line_of_a_check_is_named(connection, tmp_path: Path):
    lines = [*PREFIX, customer(72, 99), customer(73, 98)]

    await _assert_fails_and_changes_nothing(connection, write_jsonl(tmp_path / "bad.jsonl", lines), 4, "unknown org 99")


async def test_a_second_default_program_against_the_database_fails(connection, tmp_path: Path):
    await _seed(connection, tmp_path)
    path = write_jsonl(tmp_path / "bad.jsonl", [program(4, 1, default=True)])

    await _assert_fails_and_changes_nothing(
        connection, path, 1, "org 1 already has a default program: program 1 in the database"
    )


async def test_moving_the_default_program_within_the_file_is_allowed(connection, tmp_path: Path):
    await _seed(connection, tmp_path)
    path = write_jsonl(tmp_path / "move.jsonl", [program(2, 1, default=True), program(1, 1, default=False)])

    await import_file(connection, path, progress=False)

    assert [row for row in (await dump(connection))["programs"] if row[0] == 1] == [
        (1, 1, "Rewards", False),
        (1, 2, "Rewards", True),
    ]


async def test_a_duplicate_unique_identifier_against_the_database_fails(connection, tmp_path: Path):
    await _seed(connection, tmp_path)
    path = write_jsonl(tmp_path / "bad.jsonl", [customer(12, 1, identifier("EMAIL", "A@X.com"))])

    await _assert_fails_and_changes_nothing(
        connection,
        path,
        1,
        'identifier EMAIL "a@x.com" (source INSTORE) already belongs to customer 10 in the database',
    )


async def test_a_shared_secondary_identifier_against_the_database_is_allowed_in_a_dual_on_org(
    connection, tmp_path: Path
):
    await _seed(connection, tmp_path)
    path = write_jsonl(
        tmp_path / "ok.jsonl", [customer(22, 2, identifier("MOBILE", "557"), identifier("EMAIL", "family@x.com"))]
    )

    await import_file(connection, path, progress=False)

    rows = (await dump(connection))["customer_identifiers"]
    assert [row[5] for row in rows if row[4] == "family@x.com"] == [20, 21, 22]


async def test_a_duplicate_primary_identifier_against_the_database_fails_in_a_dual_on_org(connection, tmp_path: Path):
    await _seed(connection, tmp_path)
    path = write_jsonl(tmp_path / "bad.jsonl", [customer(22, 2, identifier("MOBILE", "+555"))])

    await _assert_fails_and_changes_nothing(connection, path, 1, "already belongs to customer 20 in the database")


async def test_turning_dual_eligibility_off_fails_when_customers_share_an_identifier(connection, tmp_path: Path):
    await _seed(connection, tmp_path)
    path = write_jsonl(tmp_path / "bad.jsonl", [customer(23, 2), org(2, name="Dual off now")])

    await _assert_fails_and_changes_nothing(
        connection, path, 2, 'identifier EMAIL "family@x.com" (source INSTORE) would belong to customers 20 and 21'
    )


async def test_a_fleet_external_id_used_in_the_database_fails(connection, tmp_path: Path):
    await _seed(connection, tmp_path)
    path = write_jsonl(tmp_path / "bad.jsonl", [fleet(101, 1, "F-100", 11)])

    await _assert_fails_and_changes_nothing(
        connection, path, 1, 'externalId "F-100" is already used by fleet 100 in the database'
    )


async def test_a_primary_user_heading_a_fleet_in_the_database_fails(connection, tmp_path: Path):
    await _seed(connection, tmp_path)
    path = write_jsonl(tmp_path / "bad.jsonl", [fleet(101, 1, "F-101", 10)])

    await _assert_fails_and_changes_nothing(
        connection, path, 1, "customer 10 is already the primary user of fleet 100 in the database"
    )


async def test_a_missing_file_fails_without_a_line(connection, tmp_path: Path):
    with pytest.raises(ImportFailed) as failure:
        await import_file(connection, tmp_path / "missing.jsonl", progress=False)

    assert failure.value.line is None
    assert "cannot read" in str(failure.value)
