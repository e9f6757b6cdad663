"""What a delta costs by its size and the data's: the write's plan and times for 1, 1k and 100k changed balances.

Run as `python bench/run.py --deltas [--customers 1000,10000,1000000] [--reuse]`.

For each database size (one bench database each, bench/.work/pg-N, loaded or reused as the other modes do) and
each delta size, real balances of the bench's data get new points: the rows are staged, checked and written
exactly as `import` does it (gateway.db.importing), inside a transaction that is rolled back, with
`EXPLAIN (ANALYZE, BUFFERS)` of the statement that writes balances. A delta larger than the balances the database
holds changes all of them. Reported per database and delta size: the time of each step, whether the write reads
all of `balances`, and the shared buffers it touched; and the plans of the largest database.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from checkout import code_state_lines, current_gateway
from database import embedded_postgres
from dataset import prepare, sample_balance_keys
from report import opening_sections, write_markdown

SIZES = (1, 1_000, 100_000)
_SHARED_BUFFERS = re.compile(r"\bshared((?: [a-z]+=\d+)+)")


@dataclass(frozen=True, slots=True)
class Delta:
    customers: int
    asked: int  # the delta's size
    changed: int  # balances changed: all the database holds when it holds fewer than asked
    held: int  # balances the database holds
    times: dict[str, float]  # stage, check, write: seconds
    plan: list[str]  # of the write, as EXPLAIN printed it

    @property
    def reads_all_balances(self) -> bool:
        return any("Seq Scan on balances" in line for line in self.plan)

    @property
    def buffers(self) -> dict[str, int]:
        """The write's shared buffers (hit, read, dirtied, written) as its plan's top node counts them: the
        whole statement's, its children included."""
        for line in self.plan:
            if line.strip().startswith("Planning"):
                break
            if (found := _SHARED_BUFFERS.search(line)) is not None:
                return {name: int(count) for name, count in (pair.split("=") for pair in found[1].split())}
        return {}

    def size_text(self) -> str:
        if self.changed == self.asked:
            return f"{self.asked:,}"
        return f"{self.asked:,} → {self.changed:,} (all)"


async def measure(url: str, customers: int, size: int) -> Delta:
    from gateway.db.importing import (
        _CHECK_MEMORY,  # the work_mem a large import checks and writes with
        IMPORT_ANALYZE_STAGING,
        IMPORT_WRITE_BALANCES,
        StagingTable,
        begin_import,
        check_staged,
        stage,
    )
    from gateway.importer.follow import LARGE_FROM_LINES

    connection = await asyncpg.connect(url)
    times: dict[str, float] = {}
    try:
        keys, held = await sample_balance_keys(connection, size)
        rows = [
            (line, key["org_id"], key["entity_type"], key["entity_id"], key["program_id"],
             Decimal(line), Decimal(0), Decimal(0), None)
            for line, key in enumerate(keys, start=1)
        ]  # fmt: skip
        transaction = connection.transaction()
        await transaction.start()
        try:
            started = time.perf_counter()
            await begin_import(connection)
            await stage(connection, StagingTable.BALANCES, rows)
            times["stage"] = time.perf_counter() - started
            started = time.perf_counter()
            if len(rows) >= LARGE_FROM_LINES:  # as check_and_apply does for a large batch (and any file)
                await connection.execute(_CHECK_MEMORY)
                await connection.execute(IMPORT_ANALYZE_STAGING)
            await check_staged(connection)
            times["check"] = time.perf_counter() - started
            started = time.perf_counter()
            plan = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {IMPORT_WRITE_BALANCES}")
            times["write"] = time.perf_counter() - started
        finally:
            await transaction.rollback()
    finally:
        await connection.close()
    return Delta(customers, size, len(rows), held, times, [row[0] for row in plan])


async def migrated(url: str) -> int:
    """Bring the database's schema up to the current code's (a reused database may be older: its triggers and
    indexes are part of a write's cost); returns the latest migration's version."""
    from gateway.db.migrations import applied_versions, migrate

    connection = await asyncpg.connect(url)
    try:
        await migrate(connection)
        return max(await applied_versions(connection))
    finally:
        await connection.close()


def delta_line(delta: Delta) -> str:
    buffers = delta.buffers
    touched = buffers.get("hit", 0) + buffers.get("read", 0)
    return (
        f"| {delta.customers:,} | {delta.held:,} | {delta.size_text()} | {delta.times['stage'] * 1000:.1f} "
        f"| {delta.times['check'] * 1000:.1f} | {delta.times['write'] * 1000:.1f} "
        f"| {'yes' if delta.reads_all_balances else 'no'} | {touched:,} | {buffers.get('read', 0):,} |"
    )


def run_deltas(args: argparse.Namespace, command_line: str) -> int:
    from gateway.importer.follow import LARGE_FROM_LINES

    stamp = datetime.now()
    current = current_gateway()
    deltas: list[Delta] = []
    version, schema = "", 0
    for customers in args.customers:
        with embedded_postgres(f"pg-{customers}", fresh=not args.reuse) as postgres:
            prepare(postgres, customers, samples=args.samples, reuse=args.reuse)
            schema = asyncio.run(migrated(postgres.url))
            for size in SIZES:
                delta = asyncio.run(measure(postgres.url, customers, size))
                deltas.append(delta)
                print(f"  {delta_line(delta)}", flush=True)
            version = postgres.version()
    table = [
        "| customers | balances held | changed balances | stage ms | check ms | write ms | write reads all of "
        "`balances` | write's shared buffers hit+read | of which read |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        *(delta_line(delta) for delta in deltas),
    ]
    largest = max(args.customers)
    plan_lines = [
        "```",
        *(
            line
            for delta in deltas
            if delta.customers == largest
            for line in (f"write, {delta.size_text()} changed balances:", *(f"    {row}" for row in delta.plan))
        ),
        "```",
    ]
    print("\n".join(["", *table]))
    setup = [
        f"- {', '.join(f'{customers:,}' for customers in args.customers)} customers: one bench database each "
        f"(bench/.work/pg-N, demo data); for each delta size ({', '.join(f'{size:,}' for size in SIZES)}), that "
        "many real balances (TABLESAMPLE over the table) get new points; a delta larger than the balances held "
        'changes them all ("→ N (all)")',
        "- staged, checked and written as `import` does balances alone (gateway.db.importing: "
        "IMPORT_WRITE_BALANCES, the one upsert that writes balances; from "
        f"{LARGE_FROM_LINES:,} lines on, as a large batch: work_mem raised and the staging tables ANALYZEd "
        "first), in a transaction rolled back afterwards, on a schema migrated to the current code's "
        f"(migration {schema:03d}: the triggers on balances, if any, fire within the write); "
        "the write under EXPLAIN (ANALYZE, BUFFERS): its time includes EXPLAIN's own overhead; its buffers are "
        "its plan's top node's (the whole statement's), hit+read counting every page it touched",
        *code_state_lines(current),
    ]
    sections = [
        *opening_sections(command_line, version, setup),
        ("Times", table),
        (f"Plans of the write at {largest:,} customers (the other sizes' are left out to keep this readable)",
         plan_lines),
    ]  # fmt: skip
    sizes = ", ".join(f"{customers:,}" for customers in args.customers)
    path = write_markdown(f"Deltas {stamp:%Y-%m-%d %H:%M}, {sizes} customers", sections, stamp, "deltas")
    print(f"\nwritten to {path}")
    return 0
