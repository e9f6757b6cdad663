"""Scale: the gateway's latency at two data sizes (default 10k and 1M customers) at low concurrency.

Run as `python bench/run.py --scale [--scale-sizes 10000,1000000] [--scale-concurrency 1,8] [--rounds 3]
[--reuse]`. Both databases run side by side (one server each); rounds alternate between them, and
per size the median over the quiet rounds is reported (those whose "other CPU" is within
QUIET_TOLERANCE of the quietest). Lookups follow index-only paths, so p50 should barely move with
the data size. At c=1 p50 is the latency of one request alone; at c=8 the server is already busy.

The database's share is also measured on its own, free of HTTP and Python server noise: the round
trip of the gateway's prepared statement from one asyncpg connection, for the same identifiers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from contextlib import ExitStack
from datetime import datetime

import asyncpg

from database import Postgres, embedded_postgres
from dataset import Dataset, prepare
from floor import lookup_statement
from measure import make_workloads, measure_levels, timing_from
from report import opening_sections, write_markdown
from servers import free_port, gateway
from wrk import QUIET_TOLERANCE, LoadResult, require_wrk

STATEMENT_RUNS = 5000


async def statement_round_trips(postgres: Postgres, dataset: Dataset, runs: int = STATEMENT_RUNS) -> list[float]:
    """Microseconds per execution of the lookup statement (prepared, one connection), cycling over the samples."""
    connection = await asyncpg.connect(postgres.url, server_settings={"jit": "off"})
    try:
        # The statement the gateway runs for these lookups, with its arguments.
        chosen = [lookup_statement(s.org_id, [(s.source, "", [(s.type, s.value, None)])]) for s in dataset.samples]
        statement = await connection.prepare(chosen[0][0])
        arguments = [args for _, args in chosen]
        for args in arguments[:200]:  # past the five custom plans, and caches warm
            await statement.fetch(*args)
        timings = []
        for i in range(runs):
            started = time.perf_counter()
            await statement.fetch(*arguments[i % len(arguments)])
            timings.append(1e6 * (time.perf_counter() - started))
        return timings
    finally:
        await connection.close()


def run_scale(args: argparse.Namespace, command_line: str) -> int:
    require_wrk()
    stamp = datetime.now()
    pool_size = args.pool_size or 2
    levels = args.scale_concurrency
    rounds = args.rounds or 5
    results: dict[tuple[int, int], list[LoadResult]] = {(s, c): [] for s in args.scale_sizes for c in levels}
    statements: dict[int, list[float]] = {size: [] for size in args.scale_sizes}
    with ExitStack() as stack:
        databases: dict[int, tuple[Postgres, Dataset]] = {}
        for size in args.scale_sizes:
            postgres = stack.enter_context(embedded_postgres(f"pg-{size}", fresh=not args.reuse))
            databases[size] = (postgres, prepare(postgres, size, samples=args.samples, reuse=args.reuse))
        workloads = {size: make_workloads(dataset, f"c{size}").gateway for size, (_, dataset) in databases.items()}
        for round_number in range(1, rounds + 1):
            sizes = args.scale_sizes if round_number % 2 else list(reversed(args.scale_sizes))
            for size in sizes:
                postgres, dataset = databases[size]
                statements[size].append(statistics.median(asyncio.run(statement_round_trips(postgres, dataset))))
                contender = gateway(postgres, workers=1, pool_size=pool_size, port=free_port())
                print(f"round {round_number}: {size:,} customers ...", flush=True)
                measured, _ = measure_levels(
                    postgres, contender, workloads[size], concurrencies=levels, timing=timing_from(args)
                )
                for concurrency, result in zip(levels, measured, strict=True):
                    print(f"  c={concurrency}: p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
                          f"{result.rps:,.0f} req/s", flush=True)  # fmt: skip
                    results[(size, concurrency)].append(result)
        version = databases[args.scale_sizes[0]][0].version()
    table = scale_table(results, args.scale_sizes, levels)
    database_table = statement_table(statements)
    print("\n".join([*table, "", *database_table]))
    setup = [
        f"- gateway, 1 worker, pool {pool_size}; wrk at c = {', '.join(map(str, levels))}, "
        f"{args.duration:.0f} s each after {args.warmup:.0f} s of warm-up; {rounds} rounds "
        "alternating between the sizes; each row: medians over the quiet rounds (those whose CPU used by "
        f"other work is within {QUIET_TOLERANCE} s of the least)",
    ]
    sections = [
        *opening_sections(command_line, version, setup),
        ("p50 by data size", table),
        (
            f"The database alone: the lookup statement's round trip, median of {STATEMENT_RUNS:,} executions per round",
            database_table,
        ),
    ]
    path = write_markdown(f"Scale {stamp:%Y-%m-%d %H:%M}", sections, stamp, "scale")
    print(f"\nwritten to {path}")
    return 0


def _quiet(rounds: list[LoadResult]) -> list[LoadResult]:
    """The rounds about as undisturbed as the quietest one (other CPU within QUIET_TOLERANCE of the least)."""
    least = min(r.other_cpu for r in rounds)
    return [r for r in rounds if r.other_cpu <= least + QUIET_TOLERANCE]


def scale_table(results: dict[tuple[int, int], list[LoadResult]], sizes: list[int], levels: list[int]) -> list[str]:
    """Per size and concurrency, medians over the quiet rounds, and every round's p50."""
    lines = [
        "| c | customers | p50 ms | p99 ms | req/s | quiet rounds | p50 ÷ smallest | p50 ms (other CPU s) per round |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for concurrency in levels:
        quiet = {size: _quiet(results[(size, concurrency)]) for size in sizes}
        p50 = {size: statistics.median(r.p50_ms for r in quiet[size]) for size in sizes}
        for size in sizes:
            q = quiet[size]
            rounds = ", ".join(f"{r.p50_ms:.2f} ({r.other_cpu:.1f})" for r in results[(size, concurrency)])
            lines.append(
                f"| {concurrency} | {size:,} | {p50[size]:.2f} | {statistics.median(r.p99_ms for r in q):.2f} "
                f"| {statistics.median(r.rps for r in q):,.0f} | {len(q)} | {p50[size] / p50[sizes[0]]:.3f} "
                f"| {rounds} |"
            )
    return lines


def statement_table(statements: dict[int, list[float]]) -> list[str]:
    sizes = list(statements)
    base = statistics.median(statements[sizes[0]])
    lines = ["| customers | µs (median of rounds) | ÷ smallest | µs per round |", "|---:|---:|---:|---|"]
    for size in sizes:
        median = statistics.median(statements[size])
        per_round = ", ".join(f"{value:.0f}" for value in statements[size])
        lines.append(f"| {size:,} | {median:.0f} | {median / base:.3f} | {per_round} |")
    return lines
