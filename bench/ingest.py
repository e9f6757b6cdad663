"""Ingestion: how stale balances are, `import --follow` against one `import` a second; and what ingestion costs
the query path.

Run as `python bench/run.py --ingest [--customers 1000000] [--duration 15] [--warmup 3] [--pool-size 2] [--reuse]`.

Changes to real balances of the bench's data (each a new `mainPoints` and an `asOf` of the moment it is
sent) are fed at a steady rate, either line by line to one `loyalty-gateway import --follow` process, or
gathered for a second and loaded with one `loyalty-gateway import FILE` per second (each run waits for the
previous one). Every tenth change goes to one of a few probe balances, which a separate connection reads
every 2 ms: a probe change's staleness is the time from when it was sent to when a read first sees it.
Reported per mode and rate: staleness p50/p99, changes applied per second, and the WAL written per change.

Then the query path: the gateway (1 worker) answers single lookups driven by wrk at c=32 as in the comparison
(bench/run.py), measured (a) with nothing else running, (b) while `import --follow` is fed 500 changes a second,
(c) while `import FILE` of a delta of 100,000 balances (new points, a fresh asOf each time) runs in a loop, one
import after the other, and (a) again; with --rounds N, N times in that order. Reported per phase (its round least
disturbed by other work): requests/s and p99 as ratios to (a), the mean of the runs with nothing else beside
them that other work disturbed least; the CPU of the importers, and of other work on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
import psutil

from checkout import code_state_lines, current_gateway, gateway_env
from database import Postgres, embedded_postgres
from dataset import Dataset, gateway_command, prepare, sample_balance_keys
from measure import drive, make_workloads
from report import opening_sections, write_markdown
from servers import check_answers, free_port, gateway, running
from wrk import QUIET_TOLERANCE, LoadResult, cpu_seconds, require_wrk, wait_for_quiet

RATES = (50, 500)
PROBES = 10
PROBE_EVERY = 10
KEYS = 2_000
POLL_SECONDS = 0.002


@dataclass(frozen=True, slots=True)
class Outcome:
    mode: str
    rate: int
    staleness_ms: list[float]
    sent: int
    seconds: float
    wal_bytes: int

    def percentile(self, p: float) -> float:
        ordered = sorted(self.staleness_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


Key = tuple[int, str, int, int]


async def balance_keys(url: str) -> list[Key]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT org_id, entity_type, entity_id, program_id FROM balances TABLESAMPLE SYSTEM (1) LIMIT $1",
            KEYS + PROBES,
        )
    finally:
        await connection.close()
    return [(row["org_id"], row["entity_type"], row["entity_id"], row["program_id"]) for row in rows]


def change(key: Key, value: int, as_of: str | None = None) -> bytes:
    """A balance line with new points and an asOf: `as_of`, or the moment it is made."""
    org_id, entity_type, entity_id, program_id = key
    record = {
        "kind": "balance", "orgId": org_id, "entityType": entity_type, "entityId": entity_id,
        "programId": program_id, "mainPoints": f"{value}.000", "delayedAccrualPoints": "0",
        "externalTriggerBasedPoints": "0", "asOf": as_of or now(),
    }  # fmt: skip
    return orjson.dumps(record) + b"\n"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Probes:
    """The probe balances' pending changes (value, sent at), and how stale each was once seen."""

    def __init__(self, keys: list[Key]) -> None:
        self.keys = keys
        self.pending: dict[Key, list[tuple[int, float]]] = {key: [] for key in keys}
        self.staleness_ms: list[float] = []

    def sent(self, key: Key, value: int) -> None:
        self.pending[key].append((value, time.monotonic()))

    def seen(self, key: Key, value: int, at: float) -> None:
        waiting = self.pending[key]
        while waiting and waiting[0][0] <= value:
            _, sent = waiting.pop(0)
            self.staleness_ms.append(1000 * (at - sent))

    def waiting(self) -> bool:
        return any(self.pending.values())


async def poll(url: str, probes: Probes, stop: asyncio.Event) -> None:
    connection = await asyncpg.connect(url)
    query = (
        "SELECT b.org_id, b.entity_type, b.entity_id, b.program_id, b.main_points FROM balances b "
        "JOIN unnest($1::bigint[], $2::text[], $3::bigint[], $4::int[]) AS k(o, t, e, p) "
        "ON b.org_id = k.o AND b.entity_type = k.t AND b.entity_id = k.e AND b.program_id = k.p"
    )
    columns = [list(column) for column in zip(*probes.keys, strict=True)]
    try:
        while not stop.is_set() or probes.waiting():
            for row in await connection.fetch(query, *columns):
                key = (row["org_id"], row["entity_type"], row["entity_id"], row["program_id"])
                probes.seen(key, int(row["main_points"]), time.monotonic())
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await connection.close()


async def feed(rate: int, seconds: float, keys: list[Key], probes: Probes | None, write: object) -> int:
    """Send rate changes a second for seconds; with probes, every PROBE_EVERY-th to a probe balance."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    count = int(rate * seconds)
    value = int(time.time())  # larger than anything an earlier run wrote
    for number in range(count):
        await asyncio.sleep(max(0.0, start + number / rate - loop.time()))
        value += 1
        if probes is not None and number % PROBE_EVERY == 0:
            key = probes.keys[(number // PROBE_EVERY) % len(probes.keys)]
            probes.sent(key, value)
        else:
            key = keys[number % len(keys)]
        await write(change(key, value))  # type: ignore[operator]
    return count


async def start_follow(url: str, stdout: int = asyncio.subprocess.DEVNULL) -> asyncio.subprocess.Process:
    """`loyalty-gateway import --follow` of the current gateway, reading its standard input."""
    source = current_gateway()
    process = await asyncio.create_subprocess_exec(
        *gateway_command("import", "--follow", "--database-url", url),
        stdin=asyncio.subprocess.PIPE, stdout=stdout, stderr=asyncio.subprocess.PIPE,
        env=gateway_env(source), cwd=source.path,
    )  # fmt: skip
    assert process.stdin is not None
    return process


async def import_file(url: str, path: Path) -> bytes:
    """`loyalty-gateway import FILE` of the current gateway, to its end; returns what it printed."""
    source = current_gateway()
    run = await asyncio.create_subprocess_exec(
        *gateway_command("import", str(path), "--database-url", url, "--no-progress"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=gateway_env(source), cwd=source.path,
    )  # fmt: skip
    out, err = await run.communicate()
    if run.returncode != 0:
        raise RuntimeError(f"import failed: {err.decode()}")
    return out


async def follow_mode(url: str, rate: int, seconds: float, keys: list[Key], probe_keys: list[Key]) -> Outcome:
    process = await start_follow(url)
    await asyncio.sleep(2)  # started and connected
    return await _measure("import --follow", url, rate, seconds, keys, probe_keys, writer(process), process)


def writer(process: asyncio.subprocess.Process) -> Callable[[bytes], Awaitable[None]]:
    """What writes one line to the process's standard input."""

    async def write(line: bytes) -> None:
        process.stdin.write(line)  # type: ignore[union-attr]
        await process.stdin.drain()  # type: ignore[union-attr]

    return write


async def import_each_second_mode(
    url: str, rate: int, seconds: float, keys: list[Key], probe_keys: list[Key]
) -> Outcome:
    gathered: list[bytes] = []
    directory = Path(tempfile.mkdtemp(prefix="ingest-"))
    done = asyncio.Event()

    async def write(line: bytes) -> None:
        gathered.append(line)

    async def importer() -> None:
        number = 0
        while not done.is_set() or gathered:
            await asyncio.sleep(1.0)
            if not gathered:
                continue
            lines, gathered[:] = list(gathered), []
            number += 1
            path = directory / f"changes-{number}.jsonl"
            path.write_bytes(b"".join(lines))
            await import_file(url, path)

    running = asyncio.create_task(importer())
    outcome = await _measure("one import a second", url, rate, seconds, keys, probe_keys, write, None, done)
    await running
    return outcome


async def _measure(
    mode: str,
    url: str,
    rate: int,
    seconds: float,
    keys: list[Key],
    probe_keys: list[Key],
    write: object,
    process: asyncio.subprocess.Process | None,
    fed: asyncio.Event | None = None,
) -> Outcome:
    probes = Probes(probe_keys)
    stop = asyncio.Event()
    wal = await asyncpg.connect(url)
    try:
        before = await wal.fetchval("SELECT pg_current_wal_lsn()")
        polling = asyncio.create_task(poll(url, probes, stop))
        started = time.monotonic()
        sent = await feed(rate, seconds, keys, probes, write)
        if fed is not None:
            fed.set()
        if process is not None:
            assert process.stdin is not None
            process.stdin.close()
            _, err = await process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"import --follow failed: {err.decode()}")
        stop.set()
        await asyncio.wait_for(polling, 60)
        elapsed = time.monotonic() - started
        written = await wal.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", before)
    finally:
        await wal.close()
    return Outcome(mode, rate, probes.staleness_ms, sent, elapsed, int(written))


def outcome_line(outcome: Outcome) -> str:
    return (
        f"| {outcome.mode} | {outcome.rate} | {outcome.percentile(50):.0f} | {outcome.percentile(99):.0f} "
        f"| {len(outcome.staleness_ms)} | {outcome.sent / outcome.seconds:,.0f} "
        f"| {outcome.wal_bytes / max(1, outcome.sent) / 1024:.1f} |"
    )


def run_ingest(args: argparse.Namespace, command_line: str) -> int:
    require_wrk()
    stamp = datetime.now()
    current = current_gateway()
    with embedded_postgres(f"pg-{args.customers}", fresh=not args.reuse) as postgres:
        dataset = prepare(postgres, args.customers, samples=args.samples, reuse=args.reuse)
        outcomes = asyncio.run(_all(postgres, args.duration))
        runs, bulk_lines = query_path(postgres, dataset, args)
        version = postgres.version()
    table = [
        "| path | changes/s | staleness p50 ms | p99 ms | probes seen | changes/s over the run, drain included "
        "| WAL KiB per change |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(outcome_line(outcome) for outcome in outcomes),
    ]
    queries = query_table(runs)
    print("\n".join(["", *table, "", *queries]))
    setup = [
        f"- {args.customers:,} customers; {KEYS:,} real balances changed in turn, every {PROBE_EVERY}th change to "
        f"one of {PROBES} probe balances read every {POLL_SECONDS * 1000:.0f} ms by another connection",
        f"- each change a new mainPoints and an asOf of when it was sent; {args.duration:.0f} s per mode and rate",
        "- `import --follow`: one process, lines written to its standard input as they come (defaults: batches "
        "of up to 1000 lines or 50 ms); one import a second: the second's changes written to a file and "
        "loaded with `loyalty-gateway import FILE` (a new process each time, one at a time)",
        f"- the query path: `loyalty-gateway serve`, 1 worker, pool {args.pool_size or QUERY_POOL_SIZE}; wrk at "
        f"c={QUERY_CONCURRENCY} cycling over {len(dataset.samples):,} sampled single lookups (answers checked "
        f"first), {args.warmup:.0f} s of warm-up then {args.duration:.0f} s measured, with the load beside it "
        "running throughout (started after a wait for the machine to go quiet); (b): the first "
        f"{KEYS:,} of the balances below changed in turn by one `import --follow`; (c): a delta of "
        f"{bulk_lines:,} real balances (pages sampled over the table"
        + (", all of them" if bulk_lines < BULK_LINES else "")
        + "), new points and one asOf of when the file was written, imported with `loyalty-gateway import FILE` "
        "again and again",
        "- PG CPU includes the importers' backends; importers' CPU: the `import` processes' and the bench's "
        "own (feeding, writing the files) over the measured run; other work's CPU: what the rest of the "
        "machine used meanwhile (the noise; the table shows each phase's round with the least); (a): the "
        f"mean of the runs with nothing beside them whose other work's CPU is within {QUIET_TOLERANCE} s of "
        "the least",
        "- `import --follow` and `import FILE` run the current gateway's code (below), as the server does",
        *code_state_lines(current),
    ]
    sections = [
        *opening_sections(command_line, version, setup),
        ("Staleness", table),
        ("The query path while ingestion runs", queries),
    ]
    path = write_markdown(f"Ingestion {stamp:%Y-%m-%d %H:%M}, {args.customers:,} customers", sections, stamp, "ingest")
    print(f"\nwritten to {path}")
    return 0


async def _all(postgres: Postgres, seconds: float) -> list[Outcome]:
    keys = await balance_keys(postgres.url)
    probe_keys, keys = keys[:PROBES], keys[PROBES:]
    outcomes = []
    for rate in RATES:
        for measure in (follow_mode, import_each_second_mode):
            outcome = await measure(postgres.url, rate, seconds, keys, probe_keys)
            print(f"  {outcome_line(outcome)}", flush=True)
            outcomes.append(outcome)
    return outcomes


# --- the query path while ingestion runs --------------------------------------------------------------------------

QUERY_CONCURRENCY = 32
QUERY_POOL_SIZE = 2  # what the comparison's calibration usually picks at c=32 (--pool-size overrides)
FOLLOW_RATE = 500
BULK_LINES = 100_000
_APPLIED = re.compile(rb"([\d,]+) of [\d,]+ records applied")
_SKIPPED = re.compile(rb"\(([\d,]+) records skipped")


@dataclass(slots=True)
class Work:
    """What ran beside the lookups during one measurement (warm-up included)."""

    seconds: float = 0.0
    sent: int = 0  # follow: changes written to its standard input
    applied: int = 0  # balances applied (follow: as its batches said; bulk: lines less those skipped)
    imports: list[float] = field(default_factory=list)  # bulk: the seconds of each import that ran to its end

    def describe(self) -> str:
        if not self.seconds:
            return "—"
        applied = f"{self.applied / self.seconds:,.0f} balances applied/s"
        if self.imports:
            each = ", ".join(f"{seconds:.1f}" for seconds in self.imports)
            return f"{len(self.imports)} imports ({each} s), {applied}"
        return f"{self.sent / self.seconds:,.0f} changes sent/s, {applied}"


@dataclass(frozen=True, slots=True)
class QueryRun:
    name: str
    result: LoadResult
    work: Work
    alone: bool  # nothing else ran
    # CPU seconds of the bench's own side of the load beside the lookups over the measured run: the importers
    # (and the bench's feeding); the rest of result.other_cpu is other work on the machine.
    background_cpu: float
    round: int = 1

    @property
    def outside_cpu(self) -> float:
        """CPU seconds other work on the machine took during the measured run: the noise."""
        return max(0.0, self.result.other_cpu - self.background_cpu)


Background = Callable[[str, list[Key], Work], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def nothing_else(url: str, keys: list[Key], work: Work) -> AsyncIterator[None]:
    yield


@asynccontextmanager
async def follow_feed(url: str, keys: list[Key], work: Work) -> AsyncIterator[None]:
    """`import --follow` fed FOLLOW_RATE changes a second, over the first KEYS balances in turn."""
    process = await start_follow(url, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    send = writer(process)

    async def count_applied(stdout: asyncio.StreamReader) -> None:
        async for line in stdout:
            if (found := _APPLIED.search(line)) is not None:
                work.applied += int(found[1].replace(b",", b""))

    async def counted(line: bytes) -> None:
        work.sent += 1
        await send(line)

    reading = asyncio.create_task(count_applied(process.stdout))
    errors = asyncio.create_task(process.stderr.read())
    await asyncio.sleep(2)  # started and connected
    started = time.monotonic()
    feeding = asyncio.create_task(feed(FOLLOW_RATE, 24 * 3600, keys[:KEYS], None, counted))
    try:
        yield
    finally:
        feeding.cancel()
        with suppress(asyncio.CancelledError):
            await feeding
        work.seconds = time.monotonic() - started
        assert process.stdin is not None
        process.stdin.close()
        await process.wait()
        await reading
        if process.returncode != 0:
            raise RuntimeError(f"import --follow failed ({process.returncode}): {(await errors).decode()}")


@asynccontextmanager
async def bulk_imports(url: str, keys: list[Key], work: Work) -> AsyncIterator[None]:
    """`import FILE` of a delta of every key's balance (new points, an asOf of when the file was written), one
    after the other; the one under way when the block ends runs to its end."""
    directory = Path(tempfile.mkdtemp(prefix="ingest-bulk-"))
    path = directory / "delta.jsonl"
    stop = asyncio.Event()

    async def loop() -> None:
        value = int(time.time())
        while not stop.is_set():
            value += 1
            as_of = now()
            path.write_bytes(b"".join(change(key, value, as_of) for key in keys))
            started = time.monotonic()
            output = await import_file(url, path)
            work.imports.append(time.monotonic() - started)
            skipped = _SKIPPED.search(output)
            work.applied += len(keys) - (int(skipped[1].replace(b",", b"")) if skipped else 0)

    started = time.monotonic()
    importing = asyncio.create_task(loop())
    try:
        yield
    finally:
        stop.set()
        await importing
        work.seconds = time.monotonic() - started
        shutil.rmtree(directory)


async def under(
    name: str, background: Background, url: str, keys: list[Key], measure: Callable[[], tuple[LoadResult, float]]
) -> QueryRun:
    """`measure` (in a thread) while `background` runs."""
    work = Work()
    async with background(url, keys, work):
        result, background_cpu = await asyncio.to_thread(measure)
    return QueryRun(name, result, work, background is nothing_else, background_cpu)


async def query_keys(url: str) -> tuple[list[Key], int]:
    connection = await asyncpg.connect(url)
    try:
        rows, held = await sample_balance_keys(connection, BULK_LINES)
    finally:
        await connection.close()
    return [(row["org_id"], row["entity_type"], row["entity_id"], row["program_id"]) for row in rows], held


def query_path(postgres: Postgres, dataset: Dataset, args: argparse.Namespace) -> tuple[list[QueryRun], int]:
    """The gateway's single lookups (wrk, as the comparison drives it), alone, beside `import --follow`, beside
    bulk imports in a loop, and alone again; and how many balances the bulk imports changed each."""
    workload = make_workloads(dataset, f"c{args.customers}").gateway
    keys, _ = asyncio.run(query_keys(postgres.url))
    phases: list[tuple[str, Background]] = [
        ("(a) nothing else, before", nothing_else),
        (f"(b) `import --follow` fed {FOLLOW_RATE} changes/s", follow_feed),
        (f"(c) `import FILE` of {len(keys):,} balance lines, in a loop", bulk_imports),
        ("(a) nothing else, after", nothing_else),
    ]
    contender = gateway(postgres, workers=1, pool_size=args.pool_size or QUERY_POOL_SIZE, port=free_port())
    runs = []
    bench = psutil.Process()
    with running(contender, workload.requests[0]) as server:
        check_answers(server, workload.requests)
        postmaster = postgres.postmaster()

        def measure() -> tuple[LoadResult, float]:
            """The measured run, and the CPU the bench's process tree used meanwhile beside the server and wrk
            (its children: the server, wrk, the importers; wrk reaped by then)."""
            if args.warmup > 0:
                drive(server, postmaster, workload, QUERY_CONCURRENCY, args.warmup)
            before = cpu_seconds(bench)
            result = drive(server, postmaster, workload, QUERY_CONCURRENCY, args.duration)
            return result, cpu_seconds(bench) - before - result.server_cpu - result.wrk_cpu

        for round_number in range(1, (args.rounds or 1) + 1):
            for name, background in phases:
                wait_for_quiet(args.quiet_wait)  # before the background starts: it keeps the machine busy
                print(f"query path, round {round_number}: {name} ...", flush=True)
                run = asyncio.run(under(name, background, postgres.url, keys, measure))
                runs.append(replace(run, round=round_number))
                print(f"  {query_line(run, None)}", flush=True)
    return runs, len(keys)


def query_line(run: QueryRun, alone: tuple[float, float] | None, rounds: str = "") -> str:
    """The run's row; with `alone` (req/s, p99 ms with nothing else running), its ratios to those."""
    r = run.result
    rps = f"**{r.rps / alone[0]:.2f}**" if alone else "—"
    p99 = f"**{r.p99_ms / alone[1]:.2f}**" if alone else "—"
    return (
        f"| {run.name} | {r.rps:,.0f} | {rps} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {p99} "
        f"| {r.server_ms_per_request:.3f} | {r.postgres_ms_per_request:.3f} | {run.background_cpu:.1f} "
        f"| {run.outside_cpu:.1f} | {run.work.describe()} |" + (f" {rounds} |" if rounds else "")
    )


def quiet(runs: Sequence[QueryRun]) -> list[QueryRun]:
    """The runs about as undisturbed by other work as the quietest (within QUIET_TOLERANCE of its CPU)."""
    least = min(run.outside_cpu for run in runs)
    return [run for run in runs if run.outside_cpu <= least + QUIET_TOLERANCE]


def query_table(runs: list[QueryRun]) -> list[str]:
    """Per phase its quietest round; req/s and p99 as ratios to (a): the mean of the quiet runs with nothing else
    (before and after, every round)."""
    alone_runs = [run.result for run in quiet([run for run in runs if run.alone])]
    alone = (statistics.mean(r.rps for r in alone_runs), statistics.mean(r.p99_ms for r in alone_runs))
    several = max(run.round for run in runs) > 1
    per_round = (" req/s (other work's CPU s) per round |", "---|") if several else ("", "")
    lines = [
        "| beside the lookups | req/s | req/s ÷ (a) | p50 ms | p99 ms | p99 ÷ (a) | server CPU ms/req | PG CPU ms/req "
        "| importers' CPU s | other work's CPU s | what ran beside |" + per_round[0],
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|" + per_round[1],
    ]
    for name in dict.fromkeys(run.name for run in runs):
        phase = [run for run in runs if run.name == name]
        chosen = min(phase, key=lambda run: run.outside_cpu)
        rounds = ", ".join(f"{run.result.rps:,.0f} ({run.outside_cpu:.1f})" for run in phase) if several else ""
        lines.append(query_line(chosen, alone, rounds))
    return lines
