"""`loyalty-gateway import --follow`: the real command, fed one line at a time on its standard input."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from decimal import Decimal

import asyncpg
import pytest

from gateway.db.importing import IMPORT_LOCK
from tests.importer import balance, customer, identifier
from tests.importer.feeds import CUSTOMERS, ORG, PROGRAM, Feed, main_points, seed, visible_after


@pytest.fixture
def feed(database_url: str) -> Iterator[Feed]:
    running = Feed(database_url)
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


async def test_each_line_is_visible_within_a_bounded_time(connection, feed, tmp_path):
    await seed(connection, tmp_path)
    delays = []
    for step, customer_id in enumerate(CUSTOMERS, start=1):
        feed.write(balance(ORG, customer_id, PROGRAM, main=f"{step}.5"))
        delays.append(await visible_after(connection, customer_id, Decimal(f"{step}.5")))
    status, out, err = feed.close()
    assert status == 0, err
    assert len(out.splitlines()) == len(CUSTOMERS)  # one batch a line, each reported
    assert "1 of 1 records applied" in out.splitlines()[0]
    print(
        f"visible after {sorted(delays)[len(delays) // 2] * 1000:.0f} ms (median), {max(delays) * 1000:.0f} ms at most"
    )


async def test_a_bad_line_fails_its_batch_alone_with_its_line_number(connection, feed, tmp_path):
    await seed(connection, tmp_path)
    first, second, third = CUSTOMERS[:3]
    feed.write(balance(ORG, first, PROGRAM, main="1"))  # line 1
    await visible_after(connection, first, Decimal("1.000"))
    # Lines 2 and 3 in one batch; line 3 names a program that does not exist.
    feed.write(balance(ORG, second, PROGRAM, main="2"), balance(ORG, third, 999, main="3"))
    await asyncio.sleep(0.3)
    feed.write(balance(ORG, third, PROGRAM, main="4"))  # line 4: its own batch, applied
    await visible_after(connection, third, Decimal("4.000"))
    status, _, err = feed.close()
    assert status == 1  # some batch failed
    assert "lines 2-3 not applied: line 3:" in err and "program 999" in err, err
    assert await main_points(connection, second) is None  # nothing of the failed batch


async def test_a_replayed_older_change_is_skipped(connection, feed, tmp_path):
    await seed(connection, tmp_path)
    customer_id = CUSTOMERS[0]
    newer = {**balance(ORG, customer_id, PROGRAM, main="20"), "asOf": "2026-12-02T10:00:00.000002Z"}
    older = {**balance(ORG, customer_id, PROGRAM, main="10"), "asOf": "2026-12-02T10:00:00.000001Z"}
    feed.write(newer)
    await visible_after(connection, customer_id, Decimal("20.000"))
    feed.write(older)
    status, out, err = feed.close()
    assert status == 0, err
    assert "0 of 1 records applied, 1 skipped: not newer than stored" in out.splitlines()[-1]
    assert await main_points(connection, customer_id) == Decimal("20.000")


async def test_sigterm_applies_what_was_read_and_ends(connection, feed, tmp_path):
    await seed(connection, tmp_path)
    feed.write(balance(ORG, CUSTOMERS[0], PROGRAM, main="7"))
    await visible_after(connection, CUSTOMERS[0], Decimal("7.000"))
    feed.process.send_signal(signal.SIGTERM)
    assert feed.process.wait(15) == 0


async def test_a_growing_file_is_followed_as_it_grows(connection, database_url, tmp_path):
    await seed(connection, tmp_path)
    path = tmp_path / "feed.jsonl"
    path.write_text("")
    following = Feed(database_url, str(path))
    try:
        line = json.dumps(balance(ORG, CUSTOMERS[0], PROGRAM, main="11"))
        with path.open("a") as file:
            file.write(line[:40])  # half a line, then the rest
            file.flush()
            await asyncio.sleep(0.2)
            file.write(line[40:] + "\n")
        await visible_after(connection, CUSTOMERS[0], Decimal("11.000"))
        following.process.send_signal(signal.SIGTERM)
        status, out, err = following.close()
    finally:
        if following.process.poll() is None:
            following.process.kill()
            following.process.wait()
    assert status == 0, err
    assert "1 of 1 records applied" in out


async def test_balances_do_not_wait_for_a_bulk_import_that_does_not_write_them(
    connection, database_url, feed, tmp_path
):
    """A bulk import in its check-and-apply phase holds the import lock to its commit, and the row locks of
    the balances it wrote. A batch of balances alone waits for neither, except on a balance both write; a
    batch with other records waits for the lock."""
    await seed(connection, tmp_path)
    first, second, third = CUSTOMERS[:3]
    bulk = await asyncpg.connect(database_url)
    try:
        async with bulk.transaction():
            await bulk.execute(IMPORT_LOCK)
            await bulk.execute(
                "INSERT INTO balances VALUES ($1, 'CUSTOMER', $2, $3, 500, 0, 0, NULL)", ORG, first, PROGRAM
            )
            feed.write(balance(ORG, second, PROGRAM, main="2"))  # line 1
            await visible_after(connection, second, Decimal("2.000"))
            feed.write(balance(ORG, first, PROGRAM, main="1"))  # line 2: the balance the bulk import wrote
            await asyncio.sleep(0.5)
            assert await main_points(connection, first) is None
        await visible_after(connection, first, Decimal("1.000"))  # applied after the bulk import's 500
        async with bulk.transaction():
            await bulk.execute(IMPORT_LOCK)
            feed.write(customer(third, ORG, identifier("EXTERNAL_ID", "moved")))  # line 3: waits for the lock
            await asyncio.sleep(0.5)
            assert await identifier_values(connection, third) == [f"ext-{third}"]
    finally:
        await bulk.close()
    status, out, err = feed.close()
    assert status == 0, err
    assert await identifier_values(connection, third) == ["moved"]
    assert [line.split(":")[0] for line in out.splitlines()] == ["lines 1-1", "lines 2-2", "lines 3-3"]


async def identifier_values(connection: asyncpg.Connection, customer_id: int) -> list[str]:
    rows = await connection.fetch(
        "SELECT value FROM customer_identifiers WHERE org_id = $1 AND customer_id = $2", ORG, customer_id
    )
    return [row["value"] for row in rows]
