"""A first load (an import into a database without customers, fleets or balances) copies those rows straight
into their tables and builds their keys afterwards; every other import leaves lookups alone."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest

from gateway.importer import ImportFailed, import_file, jsonl
from tests.importer import DUMPED_TABLES, balance, customer, identifier, org, program, synthetic_lines, write_jsonl

CUSTOMERS = 2_000
# Every index, constraint and trigger of the tables a first load rebuilds, as the catalog defines them.
SCHEMA = """
SELECT array_agg(definition ORDER BY definition) FROM (
    SELECT pg_get_indexdef(indexrelid) AS definition FROM pg_index
    WHERE indrelid = ANY('{customers,customer_identifiers,fleets,balances}'::text[]::regclass[])
    UNION ALL
    SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
    WHERE conrelid = ANY('{customers,customer_identifiers,fleets,balances}'::text[]::regclass[])
    UNION ALL
    SELECT pg_get_triggerdef(oid) || ' ' || tgenabled::text FROM pg_trigger
    WHERE NOT tgisinternal AND tgrelid = ANY('{customers,customer_identifiers,fleets,balances}'::text[]::regclass[])
) definitions
"""


def versioned_lines() -> list[Any]:
    """The synthetic file, with versions on some records (versions are columns a first load copies too)."""
    stamp = "2026-12-02T10:00:00.000001Z"
    extra_org, extra_program = 7, 70
    return [
        *synthetic_lines(CUSTOMERS),
        org(extra_org),
        program(extra_program, extra_org),
        {**customer(1, extra_org, identifier("EMAIL", "a@example.com")), "asOf": stamp},
        {**balance(extra_org, 1, extra_program, main="12.5"), "asOf": stamp},
    ]


async def everything(connection: asyncpg.Connection) -> dict[str, list[Any]]:
    """Every row of every imported table, versions included."""
    return {
        table: [tuple(row) for row in await connection.fetch(f"SELECT * FROM {table} ORDER BY {table}")]
        for table in DUMPED_TABLES
    }


async def test_a_first_load_leaves_what_the_usual_import_leaves(connection, tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "first.jsonl", versioned_lines())
    schema = await connection.fetchval(SCHEMA)
    await jsonl._import(connection, path, progress=False, first_load=False)
    usual = await everything(connection)
    await connection.execute(f"TRUNCATE {', '.join(DUMPED_TABLES)} CASCADE")

    passes: list[bool] = []
    usual_import = jsonl._import

    async def watched(*args: Any, first_load: bool, **kwargs: Any) -> jsonl.ImportSummary:
        passes.append(first_load)
        return await usual_import(*args, first_load=first_load, **kwargs)

    monkeypatch.setattr(jsonl, "_import", watched)
    await import_file(connection, path, progress=False)
    assert passes == [True]  # one pass: the first load held
    assert await everything(connection) == usual
    assert await connection.fetchval(SCHEMA) == schema  # every key, index and foreign key built again
    # Planner statistics gathered for the loaded size.
    assert await connection.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'customers'") >= CUSTOMERS


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        (balance(1000, 999, 10000, main="1"), "unknown entity: org 1000 has no customer 999"),
        (customer(5, 1000, identifier("MOBILE", "+91 9800000000")), 'identifier MOBILE "919800000000"'),
        (customer(10_000_000, 1000), "customer 10000000 of org 1000 is already defined"),
        (balance(1000, 10_000_000, 10000, main="2"), "the balance of CUSTOMER 10000000 in program 10000"),
    ],
    ids=["balance-of-nobody", "shared-identifier", "repeated-customer", "repeated-balance"],
)
async def test_a_first_load_that_breaks_a_rule_fails_as_the_usual_import_does(connection, tmp_path, bad, rule):
    """Rules the first load checks on the tables rather than on the staged lines: the file is imported again
    the usual way to find the line, and the database is left as it was, keys and all."""
    lines = [*synthetic_lines(CUSTOMERS), bad]
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
    schema = await connection.fetchval(SCHEMA)
    with pytest.raises(ImportFailed) as usual:
        await jsonl._import(connection, path, progress=False, first_load=False)
    with pytest.raises(ImportFailed) as failure:
        await import_file(connection, path, progress=False)
    assert (failure.value.line, failure.value.reason) == (usual.value.line, usual.value.reason)
    assert failure.value.line == len(lines) and rule in failure.value.reason
    assert await connection.fetchval("SELECT count(*) FROM customers") == 0
    assert await connection.fetchval(SCHEMA) == schema


async def test_a_re_import_never_blocks_lookups_nor_shows_half_of_itself(connection, database_url, tmp_path):
    """While a large re-import changes every balance, a lookup answers at once, from wholly the old data or
    wholly the new."""
    await import_file(connection, write_jsonl(tmp_path / "old.jsonl", synthetic_lines(CUSTOMERS)), progress=False)
    old = await connection.fetchval("SELECT sum(main_points) FROM balances")
    again = [line.replace('"mainPoints":"', '"mainPoints":"1') for line in synthetic_lines(CUSTOMERS)]
    importer = await asyncpg.connect(database_url)
    try:
        reimport = asyncio.create_task(
            import_file(importer, write_jsonl(tmp_path / "new.jsonl", again), progress=False)
        )
        seen, slowest = set(), 0.0
        while not reimport.done():
            started = time.monotonic()
            seen.add(await connection.fetchval("SELECT sum(main_points) FROM balances"))
            slowest = max(slowest, time.monotonic() - started)
            await asyncio.sleep(0.01)
        await reimport
    finally:
        await importer.close()
    new = await connection.fetchval("SELECT sum(main_points) FROM balances")
    assert new != old and seen <= {old, new}, "a lookup saw part of the import"
    assert old in seen and slowest < 1.0, f"a lookup waited {slowest:.2f} s"
