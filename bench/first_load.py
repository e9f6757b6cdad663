"""First load: `loyalty-gateway import FILE` of N customers into an empty database, against COPY alone.

Run as `python bench/run.py --first-load [--customers 1000000] [--rounds 1] [--quiet-wait 60]`.

The file is bench/make_import_file.py's for --customers customers (about 3.54 lines each), written to
bench/.work/first-load/. Every load gets a fresh embedded PostgreSQL (bench/.work/first-load-db/, a new data
directory each time), migrated with `loyalty-gateway migrate` before the clock starts; then, once the machine is
quiet:

- **import**: `loyalty-gateway import FILE --no-progress --database-url URL`, the current gateway (the working
  tree's code as copied at the start of the run), timed from its start to its exit. Meanwhile its backend's
  activity is sampled (pg_stat_activity, every SAMPLE_SECONDS), which says where its time goes;
- **COPY alone**: the same rows, from the same file parsed once beforehand by the importer's own parser (outside
  the timing), loaded by the bench's process into the real tables in one transaction: secondary indexes and
  foreign keys dropped (gateway.db.bulk.defer_indexes), a binary COPY per table (copy_rows), indexes built and
  foreign keys added again (restore_indexes), ANALYZE (analyze), commit: the goal's baseline;
- **COPY alone, primary keys deferred too**: the same, with the primary keys an import's first load drops and
  builds after (bulk.FIRST_LOAD_PRIMARY_KEYS) dropped and built after too.

Both databases must then hold the same rows (per table, a count and an order-independent hash of the rows).
Reported per load: wall seconds, import ÷ COPY (the goal: at most 2), the loading client's CPU (the import
process's; for COPY the bench's own process), PostgreSQL's CPU (the postmaster and every process of its),
the WAL written and the database's size. With --rounds N the order reverses from one round to the next.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import resource
import shutil
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

import make_import_file
from checkout import GatewaySource, code_state_lines, current_gateway, gateway_env
from database import WORK_DIR, Postgres, embedded_postgres
from dataset import gateway_command
from report import opening_sections, write_markdown
from wrk import cpu_seconds, run_with_usage, wait_for_quiet

IMPORT, COPY, COPY_KEYS = "import", "COPY alone", "COPY alone, primary keys deferred too"
DIRECTORY = WORK_DIR / "first-load"  # the import file
DATABASE = "first-load-db"  # bench/.work/first-load-db/: the database, a new one for every load
GOAL = 2.0  # import ÷ COPY, at most
SAMPLE_SECONDS = 0.1
# Parents first: the rows' foreign keys are only added after the load, but this is the order the import applies.
TABLES = ("orgs", "programs", "customers", "customer_identifiers", "fleets", "balances")

Rows = dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]  # table -> (its columns, its rows)


@dataclass(slots=True)
class Load:
    name: str
    round: int
    seconds: float = 0.0  # wall
    client_user_cpu: float = 0.0
    client_system_cpu: float = 0.0
    postgres_cpu: float = 0.0
    wal_bytes: int = 0
    database_bytes: int = 0
    steps: dict[str, float] = field(default_factory=dict)  # COPY: seconds per step; import: sampled seconds
    contents: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (rows, hash of the rows)
    output: str = ""


def write_file(customers: int) -> Path:
    path = DIRECTORY / f"import-{customers}.jsonl"
    DIRECTORY.mkdir(parents=True, exist_ok=True)
    print(f"writing the import file for {customers:,} customers ...", flush=True)
    make_import_file.main([str(path), "--customers", str(customers)])
    return path


def table_rows(path: Path) -> Rows:
    """The file's rows, as the tables hold them: each line parsed and turned into staging rows by the importer's
    own code (gateway.importer.jsonl), then each staging row cut down to its table's columns."""
    from gateway.db import bulk
    from gateway.db.importing import StagingTable
    from gateway.importer.jsonl import ADDERS, StagedRows, parse_record

    staged: StagedRows = {table: [] for table in StagingTable}
    with path.open("rb") as file:
        for line, raw in enumerate(file, start=1):
            record = parse_record(raw, line)
            if record is not None:
                ADDERS[type(record)](staged, line, record)
    targets = {
        "orgs": (StagingTable.ORGS, bulk.ORG_COLUMNS),
        "programs": (StagingTable.PROGRAMS, bulk.PROGRAM_COLUMNS),
        "customers": (StagingTable.CUSTOMERS, bulk.CUSTOMER_COLUMNS),
        "customer_identifiers": (StagingTable.IDENTIFIERS, bulk.IDENTIFIER_COLUMNS),
        "fleets": (StagingTable.FLEETS, bulk.FLEET_COLUMNS),
        "balances": (StagingTable.BALANCES, bulk.BALANCE_COLUMNS),
    }
    rows: Rows = {}
    for table in TABLES:
        staging, columns = targets[table]
        at = [staging.columns.index(column) for column in columns]
        rows[table] = (columns, [tuple([row[i] for i in at]) for row in staged.pop(staging)])
    return rows


def statement_names() -> dict[str, str]:
    """The importer's statements (gateway.db.importing's and bulk's public SQL constants), by their text's start."""
    from gateway.db import bulk, importing

    return {
        _start(text): name.removeprefix("IMPORT_").lower()
        for module in (importing, bulk)
        for name, text in vars(module).items()
        if name.isupper() and not name.startswith("_") and isinstance(text, str) and len(text) > 40
    }


def _start(sql: str) -> str:
    return " ".join(sql.split())[:300]


def activity_label(row: asyncpg.Record | None, names: dict[str, str]) -> str:
    """What the import's backend is doing, in words."""
    if row is None:
        return "no connection (starting, connecting, exiting)"
    if row["state"] == "idle in transaction":
        return "the client: reading, parsing, converting the file"
    if row["state"] != "active":
        return f"the client, outside a transaction ({row['state']})"
    query = _start(row["query"] or "")
    if query.upper().startswith("COPY"):
        label = "COPY from the client (into the staging tables, or straight into the tables)"
    else:
        found = [name for start, name in names.items() if start.startswith(query[:200]) or query.startswith(start)]
        label = found[0] if found else f"statement: {query[:70]}"
    waiting = f" (waiting: {row['wait_event_type']})" if row["wait_event_type"] not in (None, "") else ""
    return f"SQL {label}{waiting}" if not label.startswith("COPY") else label + waiting


async def sample_activity(url: str, stop: asyncio.Event) -> dict[str, int]:
    """Samples of what every other client backend of the database is doing, until stopped."""
    names = statement_names()
    counts: dict[str, int] = {}
    connection = await asyncpg.connect(url)
    try:
        while not stop.is_set():
            rows = await connection.fetch(
                "SELECT state, wait_event_type, query FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
            for label in [activity_label(row, names) for row in rows] or [activity_label(None, names)]:
                counts[label] = counts.get(label, 0) + 1
            await asyncio.sleep(SAMPLE_SECONDS)
    finally:
        await connection.close()
    return counts


async def run_import(postgres: Postgres, *, source: GatewaySource, path: Path, load: Load) -> None:
    command = gateway_command("import", str(path), "--no-progress", "--database-url", postgres.url)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sample_activity(postgres.url, stop))
    try:
        done = await asyncio.to_thread(run_with_usage, command, env=gateway_env(source), cwd=source.path)
    finally:
        stop.set()
        counts = await sampling
    if done.returncode != 0:
        raise RuntimeError(f"import failed ({done.returncode}):\n{done.stdout.decode()}\n{done.stderr.decode()}")
    load.seconds = done.wall_seconds
    load.client_user_cpu, load.client_system_cpu = done.user_cpu, done.system_cpu
    total = sum(counts.values())
    load.steps = {label: done.wall_seconds * n / total for label, n in sorted(counts.items(), key=lambda i: -i[1])}
    load.output = done.stdout.decode().strip()


async def run_copy(postgres: Postgres, rows: Rows, load: Load, *, primary_keys: bool = False) -> None:
    """The rows COPYed into the tables, their secondary indexes and foreign keys (and with `primary_keys` the
    primary keys an import's first load defers too: bulk.FIRST_LOAD_PRIMARY_KEYS) dropped first and built
    after."""
    from gateway.db import bulk

    connection = await asyncpg.connect(postgres.url)
    try:
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = last = time.perf_counter()

        def step(name: str) -> None:
            nonlocal last
            now = time.perf_counter()
            load.steps[name] = now - last
            last = now

        async with connection.transaction():
            keys = bulk.FIRST_LOAD_PRIMARY_KEYS if primary_keys else ()
            deferred = await bulk.defer_indexes(connection, primary_keys_of=keys)
            step(f"bulk.defer_indexes ({len(deferred.restore_statements)} statements to restore)")
            for table, (columns, table_rows_) in rows.items():
                await bulk.copy_rows(connection, table, columns, table_rows_)
                step(f"COPY {table} ({len(table_rows_):,} rows)")
            await bulk.restore_indexes(connection, deferred)
            step("bulk.restore_indexes")
            await bulk.analyze(connection)
            step("ANALYZE")
        step("commit")
        load.seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        load.client_user_cpu = after.ru_utime - before.ru_utime
        load.client_system_cpu = after.ru_stime - before.ru_stime
    finally:
        await connection.close()


async def contents(url: str) -> dict[str, tuple[int, int]]:
    """Per table: its rows and an order-independent hash of them (a sum of each row's hash)."""
    connection = await asyncpg.connect(url)
    try:
        found = {}
        for table in TABLES:
            row = await connection.fetchrow(f"SELECT count(*), coalesce(sum(hashtext(t::text)), 0) FROM {table} t")
            assert row is not None
            found[table] = (int(row[0]), int(row[1]))
        return found
    finally:
        await connection.close()


def fresh_database(source: GatewaySource, load: Load, run: Callable[[Postgres], Awaitable[None]], quiet: float) -> str:
    """A fresh, migrated database; `run` loads it, timed, with PostgreSQL's CPU and WAL measured around it.
    Returns PostgreSQL's version."""
    with embedded_postgres(DATABASE, fresh=True) as postgres:
        migrated = run_with_usage(
            gateway_command("migrate", "--database-url", postgres.url), env=gateway_env(source), cwd=source.path
        )
        if migrated.returncode != 0:
            raise RuntimeError(f"migrate failed: {migrated.stderr.decode()}")
        postgres.psql("CHECKPOINT")
        wait_for_quiet(quiet)
        lsn = postgres.psql("SELECT pg_current_wal_lsn()")
        postmaster = postgres.postmaster()
        cpu_before = cpu_seconds(postmaster)
        asyncio.run(run(postgres))
        time.sleep(0.5)  # the loading backend gone and reaped: its CPU counted in the postmaster's children's
        load.postgres_cpu = cpu_seconds(postmaster) - cpu_before
        load.wal_bytes = int(float(postgres.psql(f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn}')")))
        load.database_bytes = int(postgres.psql("SELECT pg_database_size(current_database())"))
        load.contents = asyncio.run(contents(postgres.url))
        return postgres.version()


def load_line(load: Load, copy: Load | None) -> str:
    ratio = f"**{load.seconds / copy.seconds:.2f}**" if copy is not None and copy is not load else "1.00"
    return (
        f"| {load.round} | {load.name} | {load.seconds:.1f} | {ratio} | {load.client_user_cpu:.1f} "
        f"| {load.client_system_cpu:.1f} | {load.postgres_cpu:.1f} | {load.wal_bytes / 2**20:,.0f} "
        f"| {load.database_bytes / 2**20:,.0f} |"
    )


def verdict_line(loads: Sequence[Load], baseline: str) -> str:
    """import ÷ the baseline, round by round (the median of the rounds), against the goal."""
    base = {load.round: load.seconds for load in loads if load.name == baseline}
    ratios = [load.seconds / base[load.round] for load in loads if load.name == IMPORT]
    ratio = statistics.median(ratios)
    rounds = f" (median of {len(ratios)} rounds: {', '.join(f'{r:.2f}' for r in ratios)})" if len(ratios) > 1 else ""
    mark = "met" if ratio <= GOAL else "**not met**"
    return f"- import ÷ {baseline}: **{ratio:.2f}**{rounds}; goal ≤ {GOAL:g}: {mark}"


def steps_lines(loads: Sequence[Load]) -> list[str]:
    lines = []
    for load in loads:
        how = "sampled from pg_stat_activity" if load.name == IMPORT else "timed"
        lines += [f"{load.name}, round {load.round} ({how}):", ""]
        lines += [f"- {label}: {seconds:.1f} s" for label, seconds in load.steps.items()]
        lines.append("")
    return lines


def run_first_load(args: argparse.Namespace, command_line: str) -> int:
    stamp = datetime.now()
    source = current_gateway()
    rounds = args.rounds or 1
    path = write_file(args.customers)
    print("parsing it once for COPY ...", flush=True)
    started = time.perf_counter()
    rows = table_rows(path)
    parse_seconds = time.perf_counter() - started
    print(f"  {sum(len(r) for _, r in rows.values()):,} rows in {parse_seconds:.0f} s", flush=True)
    loads: list[Load] = []
    quiet, version = args.quiet_wait, ""
    for round_number in range(1, rounds + 1):
        order = (IMPORT, COPY, COPY_KEYS) if round_number % 2 else (COPY_KEYS, COPY, IMPORT)
        for name in order:
            load = Load(name, round_number)
            print(f"round {round_number}: {name} ...", flush=True)
            if name == IMPORT:
                run = functools.partial(run_import, source=source, path=path, load=load)
            else:
                run = functools.partial(run_copy, rows=rows, load=load, primary_keys=name == COPY_KEYS)
            version = fresh_database(source, load, run, quiet)
            print(f"  {load.seconds:.1f} s; client CPU {load.client_user_cpu:.1f} s user, PostgreSQL CPU "
                  f"{load.postgres_cpu:.1f} s", flush=True)  # fmt: skip
            loads.append(load)
    shutil.rmtree(WORK_DIR / DATABASE, ignore_errors=True)  # the last database: over 1 GB at 1M customers
    reference = loads[0].contents
    for load in loads[1:]:
        if load.contents != reference:
            raise RuntimeError(f"{load.name} (round {load.round}) loaded other rows: {load.contents} != {reference}")
    copies = {load.round: load for load in loads if load.name == COPY}
    table = [
        "| round | load | wall s | ÷ COPY alone | client user CPU s | client system CPU s | PostgreSQL CPU s "
        "| WAL MiB | database MiB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        *(
            load_line(load, copies[load.round])
            for load in sorted(loads, key=lambda done: (done.round, (IMPORT, COPY, COPY_KEYS).index(done.name)))
        ),
    ]
    verdict = [verdict_line(loads, COPY), verdict_line(loads, COPY_KEYS)]
    counts = ", ".join(f"{table} {n:,}" for table, (n, _) in reference.items())
    print("\n".join(["", *table, "", *verdict]))
    setup = [
        f"- {args.customers:,} customers: `python bench/make_import_file.py FILE --customers {args.customers}` "
        f"({path.stat().st_size / 2**20:,.0f} MiB); every load held the same rows: {counts}",
        f"- each load into a fresh embedded PostgreSQL (a new data directory), migrated by `loyalty-gateway "
        f"migrate` before the clock starts; then a wait (up to {args.quiet_wait:.0f} s) for the machine to go quiet",
        "- import: `loyalty-gateway import FILE --no-progress --database-url URL` (the current gateway, its own "
        "process), wall time from start to exit; client CPU: that process's (os.wait4)",
        "- COPY alone: the file parsed once beforehand by the importer's own parser (gateway.importer.jsonl, "
        f"{parse_seconds:.0f} s, not timed) into each table's rows; then, in one transaction from the bench's "
        "process: gateway.db.bulk.defer_indexes (the secondary indexes and foreign keys of customers, "
        "customer_identifiers, fleets, balances, and whatever else the gateway's code defers with them: see "
        "the steps below), copy_rows (binary COPY) into each table, restore_indexes, analyze, commit; client "
        "CPU: the bench's process's over that time. The baseline of the goal",
        "- COPY alone, primary keys deferred too: the same, the primary keys an import's first load defers "
        "(bulk.FIRST_LOAD_PRIMARY_KEYS) dropped first and built after as well: the fastest load of these rows "
        "the gateway's helpers allow",
        "- PostgreSQL CPU: the postmaster and all its processes (backends, checkpointer, WAL writer, autovacuum), "
        "user + system; WAL: pg_current_wal_lsn() before and after",
        f"- {rounds} round(s); the order reverses from one round to the next",
        *code_state_lines(source),
    ]
    sections = [
        *opening_sections(command_line, version, setup),
        ("Results", table),
        ("Against the goal", verdict),
        ("Where the time goes", steps_lines(loads)),
    ]
    out = write_markdown(
        f"First load {stamp:%Y-%m-%d %H:%M}, {args.customers:,} customers", sections, stamp, "first-load"
    )
    print(f"\nwritten to {out}")
    return 0
