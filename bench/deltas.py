"""What a delta costs by its size: the apply statements' plans and times for 1, 1k and 100k changed balances.

Run as `python bench/run.py --deltas [--customers 1000000] [--reuse]`.

For each size, real balances of the bench's data get new points: the rows are staged, locked, checked and
applied exactly as `import` does it (gateway.db.importing), inside a transaction that is rolled back, with
`EXPLAIN (ANALYZE, BUFFERS)` of the two statements that write balances. Reported per size: the time of each
step, and the plans: whether they read the changed rows by index or all of `balances`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime
from decimal import Decimal

import asyncpg

from checkout import code_state_lines, current_gateway
from database import embedded_postgres
from dataset import prepare
from report import opening_sections, write_markdown

SIZES = (1, 1_000, 100_000)


async def measure(url: str, size: int) -> tuple[dict[str, float], list[str]]:
    from gateway.db.importing import IMPORT_WRITE_BALANCES, StagingTable, begin_import, check_staged, stage

    connection = await asyncpg.connect(url)
    times: dict[str, float] = {}
    plans: list[str] = []
    try:
        keys = await connection.fetch(
            "SELECT org_id, entity_type, entity_id, program_id FROM balances TABLESAMPLE SYSTEM (20) LIMIT $1", size
        )
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
            if size >= 5_000:  # as check_and_apply does for a large batch
                await connection.execute("ANALYZE import_balances")
            await check_staged(connection)
            times["check"] = time.perf_counter() - started
            started = time.perf_counter()
            plan = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {IMPORT_WRITE_BALANCES}")
            times["write"] = time.perf_counter() - started
            plans += [f"write, {size:,} lines:", *(f"    {row[0]}" for row in plan)]
        finally:
            await transaction.rollback()
    finally:
        await connection.close()
    return times, plans


def run_deltas(args: argparse.Namespace, command_line: str) -> int:
    stamp = datetime.now()
    current = current_gateway()
    results = {}
    with embedded_postgres(f"pg-{args.customers}", fresh=not args.reuse) as postgres:
        prepare(postgres, args.customers, samples=args.samples, reuse=args.reuse)
        for size in SIZES:
            results[size] = asyncio.run(measure(postgres.url, size))
            times = results[size][0]
            print(f"  {size:,} lines: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in times.items()), flush=True)
        version = postgres.version()
    table = [
        "| changed balances | stage ms | check ms | write ms | reads all of `balances` |",
        "|---:|---:|---:|---:|---|",
    ]
    for size, (times, plans) in results.items():
        full_scan = any("Seq Scan on balances" in line for line in plans)
        table.append(
            f"| {size:,} | {times['stage'] * 1000:.1f} | {times['check'] * 1000:.1f} | {times['write'] * 1000:.1f} "
            f"| {'yes' if full_scan else 'no'} |"
        )
    plan_lines = ["```", *(line for _, plans in results.values() for line in plans), "```"]
    print("\n".join(["", *table]))
    setup = [
        f"- {args.customers:,} customers; for each size, that many real balances (TABLESAMPLE) get new points",
        "- staged, checked and applied as `import` does a file of balances (gateway.db.importing), in a "
        "transaction rolled back afterwards; the statement that writes balances under EXPLAIN (ANALYZE, "
        "BUFFERS): its time includes EXPLAIN's own overhead",
        *code_state_lines(current),
    ]
    sections = [*opening_sections(command_line, version, setup), ("Times", table), ("Plans", plan_lines)]
    path = write_markdown(f"Deltas {stamp:%Y-%m-%d %H:%M}, {args.customers:,} customers", sections, stamp, "deltas")
    print(f"\nwritten to {path}")
    return 0
