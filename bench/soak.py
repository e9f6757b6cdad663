"""Soak: steady load on the gateway for a number of minutes, reported minute by minute.

    python bench/soak.py [--minutes 10] [--customers 100000] [--concurrency 32] [--workers 1] [--reuse]

Per minute: requests, errors (non-2xx, socket errors and answers carrying GraphQL errors), p50/p99
and the gateway's resident memory (all its processes); at the end, RSS growth from the first minute
to the last. Results go to bench/results/ as Markdown too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime

import psutil

from database import embedded_postgres, install_signal_handlers
from dataset import prepare
from measure import make_workloads
from report import opening_sections, write_markdown
from servers import check_answers, free_port, gateway, running
from wrk import LoadResult, require_wrk, run_wrk


def rss_bytes(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def soak_table(minutes: Sequence[tuple[LoadResult, int]]) -> list[str]:
    lines = [
        "| minute | requests | req/s | errors | p50 ms | p99 ms | RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for number, (r, rss) in enumerate(minutes, start=1):
        lines.append(
            f"| {number} | {r.requests:,} | {r.rps:,.0f} | {r.errors} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {rss / 2**20:.1f} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=10, help="minutes of load (default 10)")
    parser.add_argument("--customers", type=int, default=100_000, help="demo data size (default 100000)")
    parser.add_argument("--concurrency", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes (default 1)")
    parser.add_argument("--pool-size", type=int, default=2, help="database connections per process (default 2)")
    parser.add_argument("--samples", type=int, default=5000, help="distinct identifiers (default 5000)")
    parser.add_argument("--reuse", action="store_true", help="reuse a loaded database of the same size")
    args = parser.parse_args(argv)
    install_signal_handlers()
    require_wrk()
    stamp = datetime.now()
    minutes: list[tuple[LoadResult, int]] = []
    start_rss = 0
    try:
        with embedded_postgres(f"pg-{args.customers}", fresh=not args.reuse) as postgres:
            dataset = prepare(postgres, args.customers, samples=args.samples, reuse=args.reuse)
            workload = make_workloads(dataset, f"c{args.customers}").gateway
            contender = gateway(postgres, workers=args.workers, pool_size=args.pool_size, port=free_port())
            with running(contender, workload.requests[0]) as server:
                check_answers(server, workload.requests)
                start_rss = rss_bytes(server.psutil)
                print(f"gateway RSS before the load: {start_rss / 2**20:.1f} MiB", flush=True)
                for minute in range(1, args.minutes + 1):
                    result = run_wrk(
                        server.url,
                        workload.file,
                        concurrency=args.concurrency,
                        duration=60,
                        server=server.psutil,
                        postmaster=postgres.postmaster(),
                        check_bodies=True,
                    )
                    rss = rss_bytes(server.psutil)
                    minutes.append((result, rss))
                    print(
                        f"minute {minute}: {result.requests:,} requests, {result.errors} errors, "
                        f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, RSS {rss / 2**20:.1f} MiB",
                        flush=True,
                    )
            version = postgres.version()
    except KeyboardInterrupt:
        print("\ninterrupted; every process the soak started has been stopped", file=sys.stderr)
        if not minutes:
            return 130
        version = "?"
    table = soak_table(minutes)
    first_rss, last_rss = minutes[0][1], minutes[-1][1]
    growth = 100 * (last_rss - first_rss) / first_rss
    errors = sum(r.errors for r, _ in minutes)
    summary = [
        f"- RSS before the load {start_rss / 2**20:.1f} MiB; after minute 1 {first_rss / 2**20:.1f} MiB; "
        f"after minute {len(minutes)} {last_rss / 2**20:.1f} MiB: growth {growth:+.1f} % from minute 1",
        f"- {sum(r.requests for r, _ in minutes):,} requests, {errors} errors",
    ]
    print("\n".join(table + summary))
    command_line = f"python bench/soak.py {' '.join(sys.argv[1:] if argv is None else argv)}"
    setup = [
        f"- {args.customers:,} customers; gateway, {args.workers} worker(s), pool {args.pool_size}; "
        f"wrk c={args.concurrency}, one 60 s run per minute, every answer's body checked for errors",
    ]
    sections = [
        *opening_sections(command_line, version, setup),
        ("Minute by minute", table),
        ("Summary", summary),
    ]
    path = write_markdown(f"Soak {stamp:%Y-%m-%d %H:%M}, {len(minutes)} minutes", sections, stamp, "soak")
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
