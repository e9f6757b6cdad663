"""Staleness of balances: `import --follow` against one `import` per second, at 50 and 500 changes a second.

Run as `python bench/run.py --ingest [--customers 1000000] [--duration 15] [--reuse]`.

Changes to real balances of the bench's data (each a new `mainPoints` and an `asOf` of the moment it is
sent) are fed at a steady rate, either line by line to one `loyalty-gateway import --follow` process, or
gathered for a second and loaded with one `loyalty-gateway import FILE` per second (each run waits for the
previous one). Every tenth change goes to one of a few probe balances, which a separate connection reads
every 2 ms: a probe change's staleness is the time from when it was sent to when a read first sees it.
Reported per mode and rate: staleness p50/p99, changes applied per second, and the WAL written per change.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson

from checkout import code_state_lines, current_gateway
from database import Postgres, embedded_postgres
from dataset import gateway_command, prepare
from report import opening_sections, write_markdown

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


def change(key: Key, value: int) -> bytes:
    org_id, entity_type, entity_id, program_id = key
    record = {
        "kind": "balance", "orgId": org_id, "entityType": entity_type, "entityId": entity_id,
        "programId": program_id, "mainPoints": f"{value}.000", "delayedAccrualPoints": "0",
        "externalTriggerBasedPoints": "0", "asOf": datetime.now(UTC).isoformat(timespec="microseconds"),
    }  # fmt: skip
    return orjson.dumps(record) + b"\n"


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


async def feed(rate: int, seconds: float, keys: list[Key], probes: Probes, write: object) -> int:
    """Send rate changes a second for seconds; every PROBE_EVERY-th to a probe balance."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    count = int(rate * seconds)
    value = int(time.time())  # larger than anything an earlier run wrote
    for number in range(count):
        await asyncio.sleep(max(0.0, start + number / rate - loop.time()))
        value += 1
        if number % PROBE_EVERY == 0:
            key = probes.keys[(number // PROBE_EVERY) % len(probes.keys)]
            probes.sent(key, value)
        else:
            key = keys[number % len(keys)]
        await write(change(key, value))  # type: ignore[operator]
    return count


async def follow_mode(url: str, rate: int, seconds: float, keys: list[Key], probe_keys: list[Key]) -> Outcome:
    process = await asyncio.create_subprocess_exec(
        *gateway_command("import", "--follow", "--database-url", url),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None

    async def write(line: bytes) -> None:
        process.stdin.write(line)  # type: ignore[union-attr]
        await process.stdin.drain()  # type: ignore[union-attr]

    await asyncio.sleep(2)  # started and connected
    return await _measure("import --follow", url, rate, seconds, keys, probe_keys, write, process)


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
            run = await asyncio.create_subprocess_exec(
                *gateway_command("import", str(path), "--database-url", url, "--no-progress"),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await run.communicate()
            if run.returncode != 0:
                raise RuntimeError(f"import failed: {err.decode()}")

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
    stamp = datetime.now()
    current = current_gateway()
    with embedded_postgres(f"pg-{args.customers}", fresh=not args.reuse) as postgres:
        prepare(postgres, args.customers, samples=args.samples, reuse=args.reuse)
        outcomes = asyncio.run(_all(postgres, args.duration))
        version = postgres.version()
    table = [
        "| path | changes/s | staleness p50 ms | p99 ms | probes seen | changes/s over the run, drain included "
        "| WAL KiB per change |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(outcome_line(outcome) for outcome in outcomes),
    ]
    print("\n".join(["", *table]))
    setup = [
        f"- {args.customers:,} customers; {KEYS:,} real balances changed in turn, every {PROBE_EVERY}th change to "
        f"one of {PROBES} probe balances read every {POLL_SECONDS * 1000:.0f} ms by another connection",
        f"- each change a new mainPoints and an asOf of when it was sent; {args.duration:.0f} s per mode and rate",
        "- `import --follow`: one process, lines written to its standard input as they come (defaults: batches "
        "of up to 1000 lines or 50 ms); one import a second: the second's changes written to a file and "
        "loaded with `loyalty-gateway import FILE` (a new process each time, one at a time)",
        *code_state_lines(current),
    ]
    sections = [*opening_sections(command_line, version, setup), ("Staleness", table)]
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
