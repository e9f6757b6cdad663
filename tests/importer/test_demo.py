"""The demo-data generator: realistic, deterministic, loadable any number of times, and fast to load."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import asyncpg
import pytest

from gateway.domain.identifiers import normalise
from gateway.domain.vocabulary import IdentifierType
from gateway.importer.demo import DemoSummary, load_demo_data, showcase
from gateway.importer.demo.plan import plan_demo
from gateway.importer.demo.rows import (
    balance_rows,
    customer_rows,
    fleet_rows,
    identifier_rows,
    org_rows,
    program_rows,
)

CUSTOMERS = 500

_SCHEMA_OBJECTS = """
SELECT pg_get_indexdef(indexrelid) AS definition FROM pg_index WHERE indrelid::regclass::text = ANY($1)
UNION ALL
SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid::regclass::text = ANY($1)
"""
_TABLES = ["orgs", "programs", "customers", "customer_identifiers", "fleets", "balances"]


async def _schema_objects(connection: asyncpg.Connection) -> set[str]:
    return {row["definition"] for row in await connection.fetch(_SCHEMA_OBJECTS, _TABLES)}


@pytest.fixture
async def loaded(connection: asyncpg.Connection) -> DemoSummary:
    # The synthetic orgs alone: the documented example org has tests of its own below.
    return await load_demo_data(connection, customers=CUSTOMERS, seed=7, progress=False, showcase=False)


async def test_orgs_have_exactly_one_default_program_and_program_ids_are_globally_distinct(
    connection: asyncpg.Connection, loaded: DemoSummary
) -> None:
    rows = await connection.fetch(
        "SELECT org_id, count(*) AS programs, count(*) FILTER (WHERE is_default) AS defaults,"
        " min(program_id) FILTER (WHERE is_default) AS default_id FROM programs GROUP BY org_id ORDER BY org_id"
    )
    assert [row["org_id"] for row in rows] == list(loaded.org_ids)
    assert all(row["defaults"] == 1 and 2 <= row["programs"] <= 4 for row in rows)
    assert [row["default_id"] for row in rows] == [org.default_program_id for org in loaded.orgs]
    program_ids = await connection.fetch("SELECT program_id FROM programs")
    assert len({row["program_id"] for row in program_ids}) == len(program_ids)


async def test_one_org_has_dual_eligibility_on_mobile_and_the_others_have_it_off(
    connection: asyncpg.Connection, loaded: DemoSummary
) -> None:
    rows = await connection.fetch("SELECT dual_eligibility, primary_identifier FROM orgs ORDER BY org_id")
    assert [(row["dual_eligibility"], row["primary_identifier"]) for row in rows] == [
        (False, None),
        (True, "MOBILE"),
        (False, None),
    ]
    assert [org.primary_identifier for org in loaded.orgs] == [None, IdentifierType.MOBILE, None]


async def test_customers_spread_over_orgs_with_one_to_four_identifiers_two_and_a_half_on_average(
    connection: asyncpg.Connection, loaded: DemoSummary
) -> None:
    per_customer = await connection.fetch(
        "SELECT c.org_id, c.customer_id, count(i.value) AS identifiers FROM customers c"
        " LEFT JOIN customer_identifiers i USING (org_id, customer_id) GROUP BY c.org_id, c.customer_id"
    )
    assert len(per_customer) == CUSTOMERS == loaded.customers
    assert {row["org_id"] for row in per_customer} == set(loaded.org_ids)
    assert all(1 <= row["identifiers"] <= 4 for row in per_customer)
    assert 2.3 <= sum(row["identifiers"] for row in per_customer) / CUSTOMERS <= 2.7
    assert sum(row["identifiers"] for row in per_customer) == loaded.identifiers
    # 64-bit-looking ids, not 1, 2, 3.
    assert min(row["customer_id"] for row in per_customer) >= 565_000_000_000


async def test_identifiers_are_unique_in_orgs_without_dual_eligibility(
    connection: asyncpg.Connection, loaded: DemoSummary
) -> None:
    duplicates = await connection.fetch(
        "SELECT i.org_id, source, account_id, type, value FROM customer_identifiers i"
        " JOIN orgs o ON o.org_id = i.org_id AND NOT o.dual_eligibility"
        " GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1"
    )
    assert duplicates == []
    sources = await connection.fetch("SELECT DISTINCT source, account_id, type FROM customer_identifiers")
    assert {(row["source"], row["account_id"]) for row in sources} >= {("INSTORE", ""), ("WECHAT", "wx-1")}


async def test_dual_eligibility_org_gives_every_customer_one_unique_mobile_and_families_share_emails(
    connection: asyncpg.Connection, loaded: DemoSummary
) -> None:
    dual = next(org for org in loaded.orgs if org.dual_eligibility)
    mobiles = await connection.fetch(
        "SELECT c.customer_id, count(i.value) AS mobiles FROM customers c LEFT JOIN customer_identifiers i"
        " ON i.org_id = c.org_id AND i.customer_id = c.customer_id AND i.type = 'MOBILE'"
        " WHERE c.org_id = $1 GROUP BY c.customer_id",
        dual.org_id,
    )
    assert len(mobiles) == dual.customers
    assert all(row["mobiles"] == 1 for row in mobiles)
    unique_mobiles = await connection.fetchval(
        "SELECT count(DISTINCT value) FROM customer_identifiers WHERE org_id = $1 AND type = 'MOBILE'", dual.org_id
    )
    assert unique_mobiles == dual.customers
    shared = await connection.fetch(
        "SELECT value, count(*) AS customers FROM customer_identifiers WHERE org_id = $1 AND type = 'EMAIL'"
        " AND source = 'INSTORE' GROUP BY value HAVING count(*) > 1",
        dual.org_id,
    )
    assert shared, "some families share an email"
    assert all(row["customers"] == 2 for row in shared)


async def test_stored_identifier_values_are_normalised(connection: asyncpg.Connection, loaded: DemoSummary) -> None:
    rows = await connection.fetch("SELECT type, value FROM customer_identifiers")
    assert rows
    assert all(normalise(IdentifierType(row["type"]), row["value"]) == row["value"] for row in rows)
    types = {row["type"] for row in rows}
    assert types == {"MOBILE", "EMAIL", "EXTERNAL_ID", "CARD_NUMBER", "CUID"}


async def test_fleets_have_distinct_existing_primary_users_and_external_ids(
    connection: asyncpg.Connection, loaded: DemoSummary
) -> None:
    fleets = await connection.fetch(
        "SELECT f.org_id, f.external_id, f.primary_user_id, c.customer_id AS existing FROM fleets f"
        " LEFT JOIN customers c ON c.org_id = f.org_id AND c.customer_id = f.primary_user_id"
    )
    assert len(fleets) == loaded.fleets == CUSTOMERS // 50
    assert all(row["existing"] is not None for row in fleets)
    assert len({(row["org_id"], row["primary_user_id"]) for row in fleets}) == len(fleets)
    assert all(row["external_id"].startswith("FLEET-") for row in fleets)


async def test_balances_reference_existing_entities_and_programs_and_use_all_three_categories(
    connection: asyncpg.Connection, loaded: DemoSummary
) -> None:
    dangling = await connection.fetchval(
        "SELECT count(*) FROM balances b"
        " LEFT JOIN customers c ON b.entity_type = 'CUSTOMER' AND c.org_id = b.org_id AND c.customer_id = b.entity_id"
        " LEFT JOIN fleets f ON b.entity_type = 'FLEET' AND f.org_id = b.org_id AND f.fleet_id = b.entity_id"
        " LEFT JOIN programs p ON p.org_id = b.org_id AND p.program_id = b.program_id"
        " WHERE (c.customer_id IS NULL AND f.fleet_id IS NULL) OR p.program_id IS NULL"
    )
    assert dangling == 0
    rows = await connection.fetch("SELECT * FROM balances")
    assert len(rows) == loaded.balances
    assert 1.6 <= sum(row["entity_type"] == "CUSTOMER" for row in rows) / CUSTOMERS <= 2.4
    assert {row["entity_type"] for row in rows} == {"CUSTOMER", "FLEET"}
    for category in ("main_points", "delayed_accrual_points", "external_trigger_points"):
        amounts = [row[category] for row in rows]
        assert all(isinstance(amount, Decimal) and amount.as_tuple().exponent == -3 for amount in amounts)
        assert any(amount == 0 for amount in amounts), category
        assert any(amount > 0 for amount in amounts), category
        assert any(amount % 1 != 0 for amount in amounts), f"{category} has thousandths"


async def test_most_customers_hold_a_balance_in_their_default_program(
    connection: asyncpg.Connection, loaded: DemoSummary
) -> None:
    share = await connection.fetchval(
        "SELECT avg((EXISTS (SELECT FROM balances b JOIN programs p USING (org_id, program_id)"
        " WHERE p.is_default AND b.org_id = c.org_id AND b.entity_type = 'CUSTOMER'"
        " AND b.entity_id = c.customer_id))::int) FROM customers c"
    )
    assert 0.85 <= share < 1


async def test_example_lookup_finds_a_customer_with_a_default_program_balance(
    connection: asyncpg.Connection, loaded: DemoSummary
) -> None:
    for org in loaded.orgs:
        example = org.example
        if org.dual_eligibility:
            assert example.type is org.primary_identifier
        matches = await connection.fetch(
            "SELECT customer_id FROM customer_identifiers WHERE org_id = $1 AND source = $2 AND account_id = $3"
            " AND type = $4 AND value = $5",
            org.org_id,
            example.source.value,
            example.account_id or "",
            example.type.value,
            normalise(example.type, example.value),
        )
        assert [row["customer_id"] for row in matches] == [example.customer_id]
        balance = await connection.fetchval(
            "SELECT main_points FROM balances WHERE org_id = $1 AND entity_type = 'CUSTOMER' AND entity_id = $2"
            " AND program_id = $3",
            org.org_id,
            example.customer_id,
            org.default_program_id,
        )
        assert balance is not None


async def test_loading_restores_dropped_indexes_and_foreign_keys_and_gathers_statistics(
    connection: asyncpg.Connection,
) -> None:
    before = await _schema_objects(connection)
    await load_demo_data(connection, customers=CUSTOMERS, progress=False)
    assert await _schema_objects(connection) == before
    invalid = await connection.fetchval("SELECT count(*) FROM pg_constraint WHERE NOT convalidated")
    assert invalid == 0
    analysed = await connection.fetchval(
        "SELECT count(DISTINCT tablename) FROM pg_stats WHERE tablename = ANY($1)", _TABLES
    )
    assert analysed == len(_TABLES)


async def test_loading_twice_adds_new_orgs_above_the_existing_ones(connection: asyncpg.Connection) -> None:
    first = await load_demo_data(connection, customers=CUSTOMERS, progress=False)
    # The second load goes into non-empty tables: indexes and foreign keys stay in place.
    second = await load_demo_data(connection, customers=CUSTOMERS, progress=False)
    assert first.showcase_org_ids == (100_737, 100_738)
    assert first.org_ids == (100_739, 100_740, 100_741)
    assert min(second.showcase_org_ids) > max(first.org_ids)
    assert min(second.org_ids) > max(second.showcase_org_ids)
    assert min(second.orgs[0].program_ids) > max(first.orgs[-1].program_ids)
    loaded_once = CUSTOMERS + sum(len(org.customers) for org in showcase.ORGS)
    assert first.customers == second.customers == loaded_once
    assert await connection.fetchval("SELECT count(*) FROM customers") == 2 * loaded_once
    first_ids = {org.example.customer_id for org in first.orgs}
    second_ids = {org.example.customer_id for org in second.orgs}
    assert min(second_ids) > max(first_ids)


async def test_loaded_rows_are_the_generated_rows_in_primary_key_order(connection: asyncpg.Connection) -> None:
    # Streams in key order are what makes the load fast: every index insert appends to the rightmost leaf.
    await load_demo_data(connection, customers=CUSTOMERS, seed=3, progress=False, showcase=False)
    plan = plan_demo(CUSTOMERS, seed=3)
    queries = {
        "SELECT org_id, customer_id FROM customers ORDER BY 1, 2": customer_rows(plan),
        "SELECT org_id, source, account_id, type, value, customer_id FROM customer_identifiers"
        " ORDER BY 1, 2, 3, 4, 5, 6": identifier_rows(plan),
        "SELECT org_id, fleet_id, external_id, primary_user_id FROM fleets ORDER BY 1, 2": fleet_rows(plan),
        "SELECT org_id, entity_type, entity_id, program_id, main_points, delayed_accrual_points,"
        " external_trigger_points FROM balances ORDER BY 1, 2, 3, 4": balance_rows(plan),
    }
    for query, generated in queries.items():
        assert [tuple(row) for row in await connection.fetch(query)] == list(generated), query


def test_the_same_seed_generates_the_same_rows_and_another_seed_other_rows() -> None:
    def everything(seed: int) -> list[tuple[object, ...]]:
        plan = plan_demo(300, seed=seed)
        streams = (org_rows, program_rows, customer_rows, identifier_rows, fleet_rows, balance_rows)
        return [row for stream in streams for row in stream(plan)]

    assert everything(5) == everything(5)
    assert everything(5) != everything(6)


def test_ticks_count_every_customer_once_per_stream() -> None:
    plan = plan_demo(25_003)
    for stream in (customer_rows, identifier_rows, balance_rows):
        ticks: list[int] = []
        for _ in stream(plan, ticks.append):
            pass
        assert sum(ticks) == 25_003, stream.__name__


def test_tiny_loads_get_fewer_orgs_and_no_fleets() -> None:
    assert len(plan_demo(1).orgs) == 1
    assert [org.customers for org in plan_demo(4).orgs] == [2, 1, 1]
    assert plan_demo(49).fleets == 0
    with pytest.raises(ValueError):
        plan_demo(0)


def test_identifier_mix_looks_like_real_registrations() -> None:
    rows = list(identifier_rows(plan_demo(2_000)))
    by_kind = Counter((source, account_id, type_) for _, source, account_id, type_, _, _ in rows)
    # MOBILE and EMAIL under INSTORE dominate; WeChat has two accounts.
    assert by_kind.most_common(2)[0][0][0] == "INSTORE"
    assert by_kind[("WECHAT", "wx-1", "CUID")] > 0 and by_kind[("WECHAT", "wx-2", "CUID")] > 0
    emails = [value for _, _, _, type_, value, _ in rows if type_ == "EMAIL"]
    assert all(value.count("@") == 1 and value.split("@")[0].count(".") == 1 for value in emails)
    mobiles = [value for _, source, _, type_, value, _ in rows if type_ == "MOBILE" and source == "INSTORE"]
    assert all(value.isdigit() and value[:2] in ("44", "81") for value in mobiles)


async def test_every_load_starts_with_the_documented_example_orgs(connection: asyncpg.Connection) -> None:
    loaded = await load_demo_data(connection, customers=CUSTOMERS, progress=False)
    assert loaded.showcase_org_ids == (100_737, 100_738)
    orgs = await connection.fetch("SELECT org_id, name, primary_identifier FROM orgs WHERE org_id < 100739")
    assert sorted(tuple(row) for row in orgs) == [(100_737, "Acme", None), (100_738, "Beta", "MOBILE")]
    programs = await connection.fetch("SELECT program_id, name, is_default FROM programs WHERE org_id < 100739")
    assert sorted(tuple(row) for row in programs) == [
        (973, "Acme Rewards", True),
        (974, "Acme Fuel", False),
        (975, "Beta Points", True),
    ]
    shared = await connection.fetch(
        "SELECT customer_id FROM customer_identifiers WHERE org_id = 100738 AND type = 'EMAIL'"
        " AND value = 'sawyers@example.com'"
    )
    assert len(shared) == 2, "in the dual-eligibility example org, a family shares one email"
    # Stored normalised, as the importer would store them.
    tom = await connection.fetch(
        "SELECT source, account_id, type, value FROM customer_identifiers WHERE org_id = 100737 AND customer_id = $1"
        " ORDER BY 1, 3",
        565_039_505,
    )
    assert [tuple(row) for row in tom] == [
        ("INSTORE", "", "EMAIL", "tom@example.com"),
        ("INSTORE", "", "MOBILE", "447700900123"),
        ("WECHAT", "wx-1", "CUID", "o6_bmjrPTlm6"),
    ]
    balance = await connection.fetchrow(
        "SELECT main_points, delayed_accrual_points, external_trigger_points FROM balances"
        " WHERE org_id = 100737 AND entity_type = 'CUSTOMER' AND entity_id = 565039505 AND program_id = 973"
    )
    assert tuple(balance) == (Decimal("8500.000"), Decimal("0.000"), Decimal("12.500"))
    fleet = await connection.fetchrow("SELECT fleet_id, external_id, primary_user_id FROM fleets WHERE org_id = 100737")
    assert tuple(fleet) == (9001, "FLEET-9001", 565_039_505)
