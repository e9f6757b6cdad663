"""Scale: the gateway's latency at two data sizes (default 10k and 1M customers) at low concurrency.

Run as `python bench/run.py --scale [--scale-sizes 10000,1000000] [--scale-concurrency 1,8] [--rounds 3]
[--reuse]`. Both databases run side by side (one server each); rounds alternate between them and the
quietest round is reported. Lookups follow index-only paths, so p50 should barely move with the
data size. At c=1 p50 is the latency of one request alone; at c=8 the server is already busy.
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from datetime import datetime

from database import Postgres, embedded_postgres
from dataset import Dataset, prepare
from measure import make_workloads, measure_levels, timing_from
from report import machine_facts, write_markdown
from servers import free_port, gateway
from wrk import LoadResult, require_wrk


def run_scale(args: argparse.Namespace, command_line: str) -> int:
    require_wrk()
    stamp = datetime.now()
    pool_size = args.pool_size or 2
    levels = args.scale_concurrency
    rounds = args.rounds or 3
    results: dict[tuple[int, int], list[LoadResult]] = {(s, c): [] for s in args.scale_sizes for c in levels}
    with ExitStack() as stack:
        databases: dict[int, tuple[Postgres, Dataset]] = {}
        for size in args.scale_sizes:
            postgres = stack.enter_context(embedded_postgres(f"pg-{size}", fresh=not args.reuse))
            databases[size] = (postgres, prepare(postgres, size, samples=args.samples, reuse=args.reuse))
        workloads = {size: make_workloads(dataset, f"c{size}").gateway for size, (_, dataset) in databases.items()}
        for round_number in range(1, rounds + 1):
            sizes = args.scale_sizes if round_number % 2 else list(reversed(args.scale_sizes))
            for size in sizes:
                postgres = databases[size][0]
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
    print("\n".join(table))
    sections = [
        ("Command", [f"`{command_line}`"]),
        ("Machine", [f"- {fact}" for fact in machine_facts(version, None)]),
        (
            "Setup",
            [
                f"- gateway, 1 worker, pool {pool_size}; wrk at c = {', '.join(map(str, levels))}, "
                f"{args.duration:.0f} s each after {args.warmup:.0f} s of warm-up; {rounds} rounds "
                "alternating between the sizes; each row is the quietest round (the least CPU used by other work)",
            ],
        ),
        ("p50 by data size", table),
    ]
    path = write_markdown(f"Scale {stamp:%Y-%m-%d %H:%M}", sections, stamp, "scale")
    print(f"\nwritten to {path}")
    return 0


def scale_table(results: dict[tuple[int, int], list[LoadResult]], sizes: list[int], levels: list[int]) -> list[str]:
    """Per size and concurrency, the quietest round (least other CPU, as in run.py) and every round's p50."""
    lines = [
        "| c | customers | p50 ms | p99 ms | req/s | other CPU s | p50 ÷ smallest | p50 ms (other CPU s) per round |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for concurrency in levels:
        quietest = {size: min(results[(size, concurrency)], key=lambda r: r.other_cpu) for size in sizes}
        base = quietest[sizes[0]].p50_ms
        for size in sizes:
            q = quietest[size]
            rounds = ", ".join(f"{r.p50_ms:.2f} ({r.other_cpu:.1f})" for r in results[(size, concurrency)])
            lines.append(
                f"| {concurrency} | {size:,} | {q.p50_ms:.2f} | {q.p99_ms:.2f} | {q.rps:,.0f} | {q.other_cpu:.1f} "
                f"| {q.p50_ms / base:.3f} | {rounds} |"
            )
    return lines
