"""Versioned records (`asOf`): a change no newer than what is stored is skipped, so nothing moves back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.importer import ImportFailed, import_file
from tests.importer import balance, customer, fleet, identifier, org, program, write_jsonl

ORG, PROGRAM, TOM = 1, 10, 100
START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    """An asOf, `seconds` after START, in RFC 3339 with microseconds."""
    return (START + timedelta(seconds=seconds)).isoformat(timespec="microseconds").replace("+00:00", "Z")


def versioned(main: str, seconds: float | None, entity_id: int = TOM) -> dict[str, Any]:
    record = balance(ORG, entity_id, PROGRAM, main=main)
    if seconds is not None:
        record["asOf"] = at(seconds)
    return record


async def stored(connection: asyncpg.Connection, entity_id: int = TOM) -> tuple[Decimal | None, datetime | None]:
    row = await connection.fetchrow(
        "SELECT main_points, as_of FROM balances WHERE org_id = $1 AND entity_id = $2 AND program_id = $3",
        ORG,
        entity_id,
        PROGRAM,
    )
    return (row["main_points"], row["as_of"]) if row is not None else (None, None)


@pytest.fixture
async def world(connection: asyncpg.Connection, tmp_path: Path) -> None:
    lines = [org(ORG), program(PROGRAM, ORG)]
    lines += [customer(TOM + n, ORG, identifier("EXTERNAL_ID", f"ext-{TOM + n}")) for n in range(3)]
    await import_file(connection, write_jsonl(tmp_path / "world.jsonl", lines), progress=False)


async def test_an_older_batch_replayed_after_a_newer_one_changes_nothing(connection, world, tmp_path):
    newer = write_jsonl(tmp_path / "newer.jsonl", [versioned("200", 20)])
    older = write_jsonl(tmp_path / "older.jsonl", [versioned("100", 10)])
    assert (await import_file(connection, newer, progress=False)).skipped == 0
    summary = await import_file(connection, older, progress=False)
    assert (summary.balances, summary.skipped) == (1, 1)
    assert await stored(connection) == (Decimal("200.000"), START + timedelta(seconds=20))
    # The same version again: a retry, skipped too.
    assert (await import_file(connection, newer, progress=False)).skipped == 1
    # Microseconds count.
    just_newer = write_jsonl(tmp_path / "just-newer.jsonl", [versioned("201", 20.000001)])
    assert (await import_file(connection, just_newer, progress=False)).skipped == 0
    assert (await stored(connection))[0] == Decimal("201.000")


async def test_a_record_without_as_of_replaces_the_balance_as_before(connection, world, tmp_path):
    await import_file(connection, write_jsonl(tmp_path / "a.jsonl", [versioned("200", 20)]), progress=False)
    await import_file(connection, write_jsonl(tmp_path / "b.jsonl", [versioned("50", None)]), progress=False)
    assert await stored(connection) == (Decimal("50.000"), None)
    # Unversioned now: any versioned record is newer.
    await import_file(connection, write_jsonl(tmp_path / "c.jsonl", [versioned("60", 1)]), progress=False)
    assert (await stored(connection))[0] == Decimal("60.000")


async def test_within_one_file_the_newest_version_wins(connection, world, tmp_path):
    lines = [versioned("300", 30), versioned("100", 10), versioned("200", 20)]
    summary = await import_file(connection, write_jsonl(tmp_path / "three.jsonl", lines), progress=False)
    assert summary.skipped == 2
    assert await stored(connection) == (Decimal("300.000"), START + timedelta(seconds=30))


async def test_two_records_of_one_balance_without_a_newest_are_still_an_error(connection, world, tmp_path):
    for lines in ([versioned("1", None), versioned("2", None)], [versioned("1", 5), versioned("2", 5)]):
        with pytest.raises(ImportFailed) as failure:
            await import_file(connection, write_jsonl(tmp_path / "twice.jsonl", lines), progress=False)
        assert failure.value.line == 2 and "already defined on line 1" in failure.value.reason


async def test_as_of_must_be_rfc_3339_with_its_offset(connection, world, tmp_path):
    for bad in ("2026-12-02T09:00:00", "2026-12-02 09:00:00Z", "2026-12-02T09:00:00.1234567Z", 1764666000):
        record = {**versioned("1", None), "asOf": bad}
        with pytest.raises(ImportFailed) as failure:
            await import_file(connection, write_jsonl(tmp_path / "bad.jsonl", [record]), progress=False)
        assert failure.value.line == 1 and 'field "asOf" must be an RFC 3339 timestamp' in failure.value.reason


async def test_concurrent_feeders_never_move_a_balance_backwards(database_url, connection, world, tmp_path):
    """Two feeders write the same balances at once, one of them replaying its changes newest first; a
    reader watches throughout: each balance's version only ever grows, and the newest change wins."""
    entities = [TOM, TOM + 1, TOM + 2]
    changes = 30

    async def feeder(name: str, offsets: list[int]) -> None:
        feed = await asyncpg.connect(database_url)
        try:
            for step in offsets:
                # main points mirror the version, so a reader can tell the pair is consistent.
                lines = [versioned(f"{step}", step, entity) for entity in entities]
                path = write_jsonl(tmp_path / f"{name}-{step}.jsonl", lines)
                await import_file(feed, path, progress=False)
        finally:
            await feed.close()

    seen: dict[int, list[datetime]] = {entity: [] for entity in entities}
    stop = asyncio.Event()

    async def reader() -> None:
        watch = await asyncpg.connect(database_url)
        try:
            while not stop.is_set():
                for entity in entities:
                    main, as_of = await stored(watch, entity)
                    if as_of is not None:
                        assert main == Decimal((as_of - START).total_seconds()), "a torn balance"
                        seen[entity].append(as_of)
                await asyncio.sleep(0)
        finally:
            await watch.close()

    watching = asyncio.create_task(reader())
    odd = [step for step in range(1, changes * 2, 2)]
    even_newest_first = sorted(range(2, changes * 2 + 1, 2), reverse=True)
    await asyncio.gather(feeder("odd", odd), feeder("even", even_newest_first))
    stop.set()
    await watching
    for entity in entities:
        versions = seen[entity]
        assert versions, "the reader saw nothing"
        assert versions == sorted(versions), f"balance of {entity} moved backwards"
        assert await stored(connection, entity) == (Decimal(changes * 2), START + timedelta(seconds=changes * 2))


async def identifier_values(connection: asyncpg.Connection, customer_id: int) -> list[str]:
    rows = await connection.fetch(
        "SELECT value FROM customer_identifiers WHERE org_id = $1 AND customer_id = $2 ORDER BY value",
        ORG,
        customer_id,
    )
    return [row["value"] for row in rows]


def customer_at(seconds: float | None, *values: str) -> dict[str, Any]:
    record = customer(TOM, ORG, *(identifier("EXTERNAL_ID", value) for value in values))
    if seconds is not None:
        record["asOf"] = at(seconds)
    return record


async def test_an_older_identifier_set_never_replaces_a_newer_one(connection, world, tmp_path):
    await import_file(connection, write_jsonl(tmp_path / "new.jsonl", [customer_at(20, "new")]), progress=False)
    summary = await import_file(
        connection, write_jsonl(tmp_path / "old.jsonl", [customer_at(10, "old-a", "old-b")]), progress=False
    )
    assert (summary.customers, summary.skipped) == (1, 1)
    assert await identifier_values(connection, TOM) == ["new"]
    # Within one file the newest wins, its identifiers with it; the older record's identifiers are not
    # checked against anything (they would clash with another customer's here).
    lines = [customer_at(40, "newest"), customer_at(30, f"ext-{TOM + 1}")]
    summary = await import_file(connection, write_jsonl(tmp_path / "two.jsonl", lines), progress=False)
    assert summary.skipped == 1
    assert await identifier_values(connection, TOM) == ["newest"]
    # Unversioned: replaces as before, and leaves the customer unversioned.
    await import_file(connection, write_jsonl(tmp_path / "plain.jsonl", [customer_at(None, "plain")]), progress=False)
    assert await identifier_values(connection, TOM) == ["plain"]
    assert await connection.fetchval("SELECT as_of FROM customers WHERE customer_id = $1", TOM) is None
    await import_file(connection, write_jsonl(tmp_path / "any.jsonl", [customer_at(1, "any")]), progress=False)
    assert await identifier_values(connection, TOM) == ["any"]


async def test_an_older_fleet_never_replaces_a_newer_one(connection, world, tmp_path):
    def fleet_at(seconds: float, external_id: str, primary_user_id: int) -> dict[str, Any]:
        return {**fleet(900, ORG, external_id, primary_user_id), "asOf": at(seconds)}

    await import_file(connection, write_jsonl(tmp_path / "a.jsonl", [fleet_at(20, "F-NEW", TOM)]), progress=False)
    summary = await import_file(
        connection, write_jsonl(tmp_path / "b.jsonl", [fleet_at(10, "F-OLD", TOM + 1)]), progress=False
    )
    assert (summary.fleets, summary.skipped) == (1, 1)
    row = await connection.fetchrow("SELECT external_id, primary_user_id, as_of FROM fleets WHERE fleet_id = 900")
    assert tuple(row) == ("F-NEW", TOM, START + timedelta(seconds=20))
    # A newer version applies, even with nothing else changed.
    await import_file(connection, write_jsonl(tmp_path / "c.jsonl", [fleet_at(30, "F-NEW", TOM)]), progress=False)
    assert await connection.fetchval("SELECT as_of FROM fleets WHERE fleet_id = 900") == START + timedelta(seconds=30)
