"""Files larger than one COPY batch: streamed in batches, still all or nothing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway.importer import ImportFailed, ImportSummary, import_file
from gateway.importer.jsonl import BATCH_ROWS
from tests.importer import customer, dump, synthetic_lines, write_jsonl

CUSTOMERS = 20_000


async def test_a_file_of_20k_customers_imports(connection, tmp_path: Path):
    path = write_jsonl(tmp_path / "large.jsonl", synthetic_lines(CUSTOMERS))

    summary = await import_file(connection, path, progress=False)

    assert summary == ImportSummary(
        orgs=4, programs=8, customers=CUSTOMERS, identifiers=50_000, fleets=400, balances=2 * CUSTOMERS
    )
    # More rows than one batch: several COPYs per staging table took place.
    assert summary.identifiers > 2 * BATCH_ROWS
    counts = await connection.fetchrow(
        """
        SELECT (SELECT count(*) FROM customers) AS customers,
               (SELECT count(*) FROM customer_identifiers) AS identifiers,
               (SELECT count(*) FROM fleets) AS fleets,
               (SELECT count(*) FROM balances) AS balances,
               (SELECT sum(main_points) FROM balances) AS main_points
        """
    )
    assert dict(counts) == {
        "customers": CUSTOMERS,
        "identifiers": 50_000,
        "fleets": 400,
        "balances": 2 * CUSTOMERS,
        # Each customer n holds n % 100000 + (n % 1000) / 1000 main points in each of two programs.
        "main_points": 2 * sum(Decimal(n % 100_000) + Decimal(n % 1000) / 1000 for n in range(CUSTOMERS)),
    }
    mobile = await connection.fetchval(
        "SELECT value FROM customer_identifiers WHERE customer_id = 10000007 AND type = 'MOBILE'"
    )
    assert mobile == "919800000001"


async def test_a_bad_last_line_after_many_batches_applies_nothing(connection, tmp_path: Path):
    lines = [*synthetic_lines(CUSTOMERS), customer(10_000_000, 1000)]
    path = write_jsonl(tmp_path / "large.jsonl", lines)
    before = await dump(connection)

    with pytest.raises(ImportFailed) as failure:
        await import_file(connection, path, progress=False)

    assert failure.value.line == len(lines)
    assert failure.value.reason == "customer 10000000 of org 1000 is already defined on line 1"
    assert await dump(connection) == before
