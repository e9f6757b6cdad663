"""Read replicas: lookups/s with a streaming replica taking the reads, against the primary alone, in one run.

Run as `python bench/run.py --replicas [--customers 100000] [--concurrency 8,32,64] [--workers 2] [--rounds 1]`.

The bench's primary (bench/.work/pg-N) gets a streaming replica made with the wheel's own pg_basebackup -R
(bench/.work/pg-N-replica, Unix socket only, the same server settings), started with the wheel's pg_ctl and
caught up before any measurement. The same gateway (`serve`, --workers, the bench's pool) is then driven with
wrk by the bench's single lookups at each concurrency, twice per round: "primary only" (no --replica-url) and
"replica reads" (--replica-url to the replica, which answers the lookups while API keys are read from the
primary), in alternating order. Every answer is checked first; wrk's run must be free of errors. Reported per
concurrency: requests/s and latency, the gateway's CPU per request, each PostgreSQL server's CPU per request,
how many of the run's statements the replica ran, and replica reads ÷ primary only.

On one machine the two servers share its cores: what a replica adds here is where the database's work goes
(the primary's CPU per lookup falls), not more cores; on hosts of their own the primary's share is what the
replica frees.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import psutil

from checkout import code_state_lines, current_gateway
from database import SERVER_OPTIONS, WORK_DIR, Postgres, embedded_postgres
from dataset import gateway_requests, prepare, write_requests
from report import opening_sections, write_markdown
from servers import Running, check_answers, free_port, gateway, running
from wrk import LoadResult, cpu_seconds, require_wrk, run_wrk, wait_for_quiet

_SYSTEM_USER = "embedded_postgres"
# Contenders, in the table's order.
PRIMARY_ONLY = "primary only"
REPLICA_READS = "replica reads"


@dataclass(frozen=True, slots=True)
class Replica:
    """The replica's server (its data directory, socket and psql) and the URL of the primary's database on it."""

    server: Postgres
    url: str
    postmaster: psutil.Process


@dataclass(frozen=True, slots=True)
class Measured:
    reads: str
    result: LoadResult
    replica_cpu: float  # CPU seconds of the replica's postmaster and children over the run
    replica_statements: int  # transactions the replica committed over the run (its lookups)


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root: then the wheel's own user runs it (bench/database.py does the same)."""
    return _SYSTEM_USER if os.geteuid() == 0 else None


def _run_as_postgres(command: list[str]) -> None:
    done = subprocess.run(command, user=_system_user(), capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stderr.strip()}")


@contextmanager
def streaming_replica(postgres: Postgres) -> Iterator[Replica]:
    """A base backup of the primary with -R (standby.signal, primary_conninfo), started; stopped at the end."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    server = Postgres(postgres.data_dir.with_name(postgres.data_dir.name + "-replica"), database=postgres.database)
    data_dir, pgdata = server.data_dir, server.pgdata
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    if (user := _system_user()) is not None:
        shutil.chown(data_dir, user)  # pg_basebackup and the server write here as that user
    bin_dir = POSTGRES_BIN_PATH
    _run_as_postgres(
        [str(bin_dir / "pg_basebackup"), "-D", str(pgdata), "-R", "-X", "stream", "--checkpoint=fast",
         "-d", f"host={postgres.socket_dir} user=postgres"]
    )  # fmt: skip
    # The primary's socket lives in its data directory: the backup copied its lock file along.
    for stale in pgdata.glob(".s.PGSQL.*"):
        stale.unlink()
    settings = " ".join(f"-c {name}={value}" for name, value in SERVER_OPTIONS.items())
    log = data_dir / "postgres.log"
    _run_as_postgres(
        [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "120", "-o", f"-h '' -k {pgdata} {settings}",
         "-l", str(log), "start"]
    )  # fmt: skip
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        replica = Replica(server, server.url, psutil.Process(pid))
        _wait_until_replayed(postgres, replica)
        yield replica
    finally:
        _run_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "60", "-m", "fast", "stop"])
        shutil.rmtree(data_dir, ignore_errors=True)


def _wait_until_replayed(postgres: Postgres, replica: Replica, within: float = 300.0) -> None:
    target = postgres.psql("SELECT pg_current_wal_flush_lsn()")
    deadline = time.monotonic() + within
    while replica.server.psql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") != "t":
        if time.monotonic() > deadline:
            raise RuntimeError("the replica did not catch up with the primary")
        time.sleep(0.2)


def _replica_transactions(replica: Replica) -> int:
    return int(replica.server.psql("SELECT sum(xact_commit) FROM pg_stat_database"))


def _wait_for_healthy_replica(server: Running, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        databases = httpx.get(f"{server.origin}/readyz", timeout=5).json().get("databases") or []
        if any(database["state"] == "healthy" for database in databases[1:]):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway never found its replica healthy: {databases}")
        time.sleep(0.2)


def run_replicas(args: argparse.Namespace, command_line: str) -> int:
    require_wrk()
    stamp = datetime.now()
    current = current_gateway()
    rounds = args.rounds or 1
    pool_size = args.pool_size or 4
    measured: dict[tuple[int, str], list[Measured]] = {}
    with embedded_postgres(f"pg-{args.customers}", fresh=not args.reuse) as postgres:
        dataset = prepare(postgres, args.customers, samples=args.samples, reuse=args.reuse)
        requests = gateway_requests(dataset)
        requests_file = write_requests(requests, WORK_DIR / "requests" / "replicas" / "gateway.tsv")
        version = postgres.version()
        with streaming_replica(postgres) as replica:
            for round_number in range(1, rounds + 1):
                print(f"round {round_number}", flush=True)
                order = [PRIMARY_ONLY, REPLICA_READS]
                if round_number % 2 == 0:
                    order.reverse()
                for reads in order:
                    extra = ["--env", "production"]
                    if reads == REPLICA_READS:
                        extra += ["--replica-url", replica.url]
                    contender = gateway(
                        postgres, workers=args.workers, pool_size=pool_size, port=free_port(), extra=extra,
                        name=f"gateway-{args.workers}w, {reads}",
                    )  # fmt: skip
                    with running(contender, requests[0]) as server:
                        if reads == REPLICA_READS:
                            _wait_for_healthy_replica(server)
                        check_answers(server, requests)
                        for concurrency in args.concurrency:
                            run = _measure(server, postgres, replica, requests_file, concurrency, args)
                            measured.setdefault((concurrency, reads), []).append(run)
                            print(f"  c={concurrency} {reads}: {_line(run)}", flush=True)
    table = results_table(measured)
    print("\n".join(["", *table]))
    setup = [
        f"- {args.customers:,} customers; {len(requests):,} real identifiers, single lookups (the bench's "
        "GraphQL document), cycled over by wrk",
        "- primary: the bench's embedded PostgreSQL; replica: `pg_basebackup -R -X stream` of it, started with the "
        f"wheel's pg_ctl, same settings ({', '.join(f'{k}={v}' for k, v in SERVER_OPTIONS.items())}), Unix socket",
        f"- each gateway: `serve --env production`, {args.workers} worker(s), pool {pool_size} per database and "
        'worker; "replica reads" adds `--replica-url` (API keys still read from the primary)',
        f"- per concurrency: {args.warmup:.0f} s warm-up, {args.duration:.0f} s measured; {rounds} round(s), the "
        "two gateways in alternating order; the table shows the round with the most req/s per reads",
        "- both PostgreSQL servers and the gateway share this machine's cores",
        *code_state_lines(current),
    ]
    sections = [*opening_sections(command_line, version, setup), ("Results", table)]
    title = f"Read replicas {stamp:%Y-%m-%d %H:%M}, {args.customers:,} customers"
    path = write_markdown(title, sections, stamp, "replicas")
    print(f"\nwritten to {path}")
    return 0


def _measure(
    server: Running,
    postgres: Postgres,
    replica: Replica,
    requests_file: Path,
    concurrency: int,
    args: argparse.Namespace,
) -> Measured:
    primary = postgres.postmaster()
    if args.warmup > 0:
        run_wrk(
            server.url, requests_file, concurrency=concurrency, duration=args.warmup, server=server.psutil,
            postmaster=primary,
        )  # fmt: skip
    if args.quiet_wait > 0:
        wait_for_quiet(args.quiet_wait)
    replica_before, statements_before = cpu_seconds(replica.postmaster), _replica_transactions(replica)
    result = run_wrk(
        server.url, requests_file, concurrency=concurrency, duration=args.duration, server=server.psutil,
        postmaster=primary,
    )  # fmt: skip
    replica_cpu = cpu_seconds(replica.postmaster) - replica_before
    statements = _replica_transactions(replica) - statements_before
    if result.failure:
        raise RuntimeError(f"{server.contender.name} failed under load at c={concurrency}: {result.failure}")
    reads = REPLICA_READS if "--replica-url" in server.contender.command else PRIMARY_ONLY
    return Measured(reads, result, replica_cpu, statements)


def _line(run: Measured) -> str:
    r = run.result
    return (
        f"{r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms; CPU ms/req: gateway "
        f"{r.server_ms_per_request:.3f}, primary {r.postgres_ms_per_request:.3f}, replica "
        f"{1000 * run.replica_cpu / r.requests:.3f}; replica ran {run.replica_statements:,} statements"
    )


def results_table(measured: dict[tuple[int, str], list[Measured]]) -> list[str]:
    lines = [
        "| c | reads | req/s | p50 ms | p99 ms | gateway CPU ms/req | primary PG CPU ms/req | replica PG CPU ms/req "
        "| replica statements ÷ requests | req/s ÷ primary only | primary CPU/req ÷ primary only | other CPU s "
        "| req/s per round |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for concurrency in sorted({c for c, _ in measured}):
        best = {
            reads: max(measured[(concurrency, reads)], key=lambda run: run.result.rps)
            for reads in (PRIMARY_ONLY, REPLICA_READS)
            if (concurrency, reads) in measured
        }
        base = best.get(PRIMARY_ONLY)
        for reads, run in best.items():
            r = run.result
            ratio = f"{r.rps / base.result.rps:.2f}" if base else "—"
            cpu_ratio = (
                f"{r.postgres_ms_per_request / base.result.postgres_ms_per_request:.2f}"
                if base and base.result.postgres_ms_per_request
                else "—"
            )
            per_round = ", ".join(f"{m.result.rps:,.0f}" for m in measured[(concurrency, reads)])
            lines.append(
                f"| {concurrency} | {reads} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
                f"| {r.server_ms_per_request:.3f} | {r.postgres_ms_per_request:.3f} "
                f"| {1000 * run.replica_cpu / r.requests:.3f} | {run.replica_statements / r.requests:.2f} "
                f"| {ratio} | {cpu_ratio} | {r.other_cpu:.1f} | {per_round} |"
            )
    return lines
