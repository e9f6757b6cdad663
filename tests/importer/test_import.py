"""Importing valid files: what ends up in the tables, and what a re-import replaces."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from gateway.importer import ImportSummary, import_file
from tests.importer import balance, customer, dump, fleet, identifier, org, program, write_jsonl

# The example of SPEC §4, one line of every kind, plus a dual-eligibility org.
EVERY_KIND = [
    '{"kind":"org","id":100737,"name":"Acme","dualEligibility":false}',
    '{"kind":"org","id":100738,"name":"Beta","dualEligibility":true,"primaryIdentifier":"MOBILE"}',
    '{"kind":"program","id":973,"orgId":100737,"name":"Acme Rewards","default":true}',
    '{"kind":"program","id":974,"orgId":100738,"name":"Beta Club","default":true}',
    '{"kind":"customer","id":565039505,"orgId":100737,"identifiers":['
    '{"source":"INSTORE","type":"EMAIL","value":"  Tom@Example.COM "},'
    '{"source":"WECHAT","accountId":"wx-1","type":"CUID","value":"o6_bmjrPTlm6"},'
    '{"source":"INSTORE","accountId":"","type":"MOBILE","value":"+44 (20) 7946-0958"}]}',
    '{"kind":"customer","id":565039506,"orgId":100738,"identifiers":[]}',
    '{"kind":"fleet","id":9001,"orgId":100737,"externalId":"FLEET-9001","primaryUserId":565039505}',
    '{"kind":"balance","orgId":100737,"entityType":"CUSTOMER","entityId":565039505,"programId":973,'
    '"mainPoints":"8500.000","delayedAccrualPoints":"0.000","externalTriggerBasedPoints":"12.500"}',
    '{"kind":"balance","orgId":100737,"entityType":"FLEET","entityId":9001,"programId":973,'
    '"mainPoints":999999999999999.999,"delayedAccrualPoints":-0.001,"externalTriggerBasedPoints":1e3}',
]

EXPECTED = {
    "orgs": [(100737, "Acme", False, None), (100738, "Beta", True, "MOBILE")],
    "programs": [(100737, 973, "Acme Rewards", True), (100738, 974, "Beta Club", True)],
    "customers": [(100737, 565039505), (100738, 565039506)],
    "customer_identifiers": [
        (100737, "INSTORE", "", "EMAIL", "tom@example.com", 565039505),
        (100737, "INSTORE", "", "MOBILE", "442079460958", 565039505),
        (100737, "WECHAT", "wx-1", "CUID", "o6_bmjrPTlm6", 565039505),
    ],
    "fleets": [(100737, 9001, "FLEET-9001", 565039505)],
    "balances": [
        (100737, "CUSTOMER", 565039505, 973, Decimal("8500.000"), Decimal("0.000"), Decimal("12.500")),
        (100737, "FLEET", 9001, 973, Decimal("999999999999999.999"), Decimal("-0.001"), Decimal("1000.000")),
    ],
}


async def test_a_file_with_every_kind_imports_normalised_identifiers_and_exact_points(connection, tmp_path: Path):
    summary = await import_file(connection, write_jsonl(tmp_path / "all.jsonl", EVERY_KIND), progress=False)

    assert summary == ImportSummary(orgs=2, programs=2, customers=2, identifiers=3, fleets=1, balances=2)
    tables = await dump(connection)
    assert tables == EXPECTED
    # Exactly the digits of the file, never a float's approximation.
    assert str(tables["balances"][1][4]) == "999999999999999.999"


async def test_records_in_reverse_order_import_the_same(connection, tmp_path: Path):
    await import_file(connection, write_jsonl(tmp_path / "reverse.jsonl", reversed(EVERY_KIND)), progress=False)

    assert await dump(connection) == EXPECTED


async def test_blank_lines_are_ignored(connection, tmp_path: Path):
    lines = ["", "   ", *EVERY_KIND[:4], "\t", "", *EVERY_KIND[4:], "  "]

    summary = await import_file(connection, write_jsonl(tmp_path / "blank.jsonl", lines), progress=False)

    assert summary.orgs == 2
    assert await dump(connection) == EXPECTED


async def test_a_file_without_newline_at_the_end_or_with_crlf_line_ends_imports(connection, tmp_path: Path):
    path = tmp_path / "crlf.jsonl"
    path.write_bytes("\r\n".join(EVERY_KIND).encode())

    await import_file(connection, path, progress=False)

    assert await dump(connection) == EXPECTED


async def test_importing_the_same_file_twice_leaves_the_database_as_after_the_first_time(connection, tmp_path: Path):
    path = write_jsonl(tmp_path / "all.jsonl", EVERY_KIND)
    await import_file(connection, path, progress=False)
    first = await dump(connection)

    await import_file(connection, path, progress=False)

    assert await dump(connection) == first == EXPECTED


async def test_reimport_replaces_a_customers_identifier_set_and_a_balance(connection, tmp_path: Path):
    await import_file(connection, write_jsonl(tmp_path / "first.jsonl", EVERY_KIND), progress=False)
    update = [
        customer(565039505, 100737, identifier("EMAIL", "tom@new.example.com"), identifier("CARD_NUMBER", "C-1")),
        balance(100737, 565039505, 973, main="1.5", delayed=2, external="0"),
    ]

    await import_file(connection, write_jsonl(tmp_path / "update.jsonl", update), progress=False)

    tables = await dump(connection)
    assert tables["customer_identifiers"] == [
        (100737, "INSTORE", "", "CARD_NUMBER", "C-1", 565039505),
        (100737, "INSTORE", "", "EMAIL", "tom@new.example.com", 565039505),
    ]
    assert tables["balances"][0] == (
        100737,
        "CUSTOMER",
        565039505,
        973,
        Decimal("1.500"),
        Decimal("2.000"),
        Decimal("0.000"),
    )
    # What the second file does not describe is left as it was.
    assert tables["balances"][1] == EXPECTED["balances"][1]
    assert tables["fleets"] == EXPECTED["fleets"]


async def test_reimport_replaces_an_orgs_settings_a_programs_name_and_default_and_a_fleet(connection, tmp_path: Path):
    await import_file(connection, write_jsonl(tmp_path / "first.jsonl", EVERY_KIND), progress=False)
    update = [
        org(100737, name="Acme Inc", dual=True, primary="EMAIL"),
        program(973, 100737, name="Old Rewards", default=False),
        program(975, 100737, name="New Rewards", default=True),
        fleet(9001, 100737, "FLEET-A", 565039505),
    ]

    await import_file(connection, write_jsonl(tmp_path / "update.jsonl", update), progress=False)

    tables = await dump(connection)
    assert tables["orgs"][0] == (100737, "Acme Inc", True, "EMAIL")
    assert tables["programs"] == [
        (100737, 973, "Old Rewards", False),
        (100737, 975, "New Rewards", True),
        (100738, 974, "Beta Club", True),
    ]
    assert tables["fleets"] == [(100737, 9001, "FLEET-A", 565039505)]


async def test_two_fleets_may_swap_external_ids_and_primary_users(connection, tmp_path: Path):
    base = [
        org(1),
        program(1, 1),
        customer(10, 1),
        customer(11, 1),
        fleet(100, 1, "A", 10),
        fleet(101, 1, "B", 11),
    ]
    await import_file(connection, write_jsonl(tmp_path / "first.jsonl", base), progress=False)

    swap = [fleet(100, 1, "B", 11), fleet(101, 1, "A", 10)]
    await import_file(connection, write_jsonl(tmp_path / "swap.jsonl", swap), progress=False)

    assert (await dump(connection))["fleets"] == [(1, 100, "B", 11), (1, 101, "A", 10)]


async def test_an_identifier_may_move_from_one_customer_to_another_in_one_file(connection, tmp_path: Path):
    base = [org(1), program(1, 1), customer(10, 1, identifier("EMAIL", "a@x.com"))]
    await import_file(connection, write_jsonl(tmp_path / "first.jsonl", base), progress=False)

    # Uniqueness is judged on the state after the file: customer 10 gives the email up.
    move = [customer(11, 1, identifier("EMAIL", "A@x.com")), customer(10, 1)]
    await import_file(connection, write_jsonl(tmp_path / "move.jsonl", move), progress=False)

    assert (await dump(connection))["customer_identifiers"] == [(1, "INSTORE", "", "EMAIL", "a@x.com", 11)]


async def test_dual_eligibility_org_may_share_secondary_identifiers(connection, tmp_path: Path):
    lines = [
        org(1, dual=True, primary="MOBILE"),
        program(1, 1),
        customer(10, 1, identifier("MOBILE", "111"), identifier("EMAIL", "family@x.com")),
        customer(11, 1, identifier("MOBILE", "222"), identifier("EMAIL", "Family@x.com")),
    ]

    await import_file(connection, write_jsonl(tmp_path / "dual.jsonl", lines), progress=False)

    emails = [row for row in (await dump(connection))["customer_identifiers"] if row[3] == "EMAIL"]
    assert [row[5] for row in emails] == [10, 11]


async def test_the_same_value_under_another_source_account_or_type_is_another_identifier(connection, tmp_path: Path):
    lines = [
        org(1),
        program(1, 1),
        customer(10, 1, identifier("EXTERNAL_ID", "X1")),
        customer(11, 1, identifier("EXTERNAL_ID", "X1", source="WECHAT")),
        customer(12, 1, identifier("EXTERNAL_ID", "X1", source="WECHAT", account_id="wx-2")),
        customer(13, 1, identifier("CARD_NUMBER", "X1")),
    ]

    await import_file(connection, write_jsonl(tmp_path / "spaces.jsonl", lines), progress=False)

    assert len((await dump(connection))["customer_identifiers"]) == 4


async def test_customers_of_an_org_already_in_the_database_import_without_their_org(connection, tmp_path: Path):
    await import_file(connection, write_jsonl(tmp_path / "org.jsonl", [org(1), program(1, 1)]), progress=False)

    lines = [customer(10, 1), balance(1, 10, 1, main=5)]
    summary = await import_file(connection, write_jsonl(tmp_path / "customers.jsonl", lines), progress=False)

    assert summary == ImportSummary(customers=1, balances=1)
    assert (await dump(connection))["balances"] == [
        (1, "CUSTOMER", 10, 1, Decimal("5.000"), Decimal("0.000"), Decimal("0.000"))
    ]


async def test_an_empty_file_imports_nothing(connection, tmp_path: Path):
    summary = await import_file(connection, write_jsonl(tmp_path / "empty.jsonl", []), progress=False)

    assert summary == ImportSummary()
    assert all(rows == [] for rows in (await dump(connection)).values())


async def test_the_progress_bar_goes_to_stderr(connection, tmp_path: Path, capsys):
    await import_file(connection, write_jsonl(tmp_path / "all.jsonl", EVERY_KIND), progress=True)

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "import all.jsonl" in captured.err
