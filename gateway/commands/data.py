"""migrate, import, demo-data: the schema and the data."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from gateway.commands import connect, migrated
from gateway.config import Settings


async def migrate(settings: Settings) -> int:
    from gateway.db.migrations import migrate as apply_migrations

    connection = await connect(settings)
    try:
        applied = await apply_migrations(connection)
    finally:
        await connection.close()
    for migration in applied:
        print(f"applied {migration.version:03d}_{migration.name}")
    if not applied:
        print("the database schema is up to date")
    return 0


async def import_file(settings: Settings, path: Path, *, progress: bool, metrics_file: Path | None = None) -> int:
    import time

    from gateway.db.migrations import migrate as apply_migrations
    from gateway.importer.jsonl import ImportFailed
    from gateway.importer.jsonl import import_file as run_import
    from gateway.observability.metrics import count_import, write_import_metrics

    started = time.monotonic()
    summary = None
    try:
        connection = await connect(settings)
        try:
            await apply_migrations(connection)
            summary = await run_import(connection, path, progress=progress)
        except ImportFailed as failure:
            print(f"error: {path}: {failure}", file=sys.stderr)
            print("nothing was imported", file=sys.stderr)
            return 1
        finally:
            await connection.close()
    finally:
        count_import(summary, time.monotonic() - started)
        if metrics_file is not None:
            write_import_metrics(str(metrics_file))
    print(
        f"imported {path}: {summary.orgs:,} orgs, {summary.programs:,} programs, {summary.customers:,} customers "
        f"({summary.identifiers:,} identifiers), {summary.fleets:,} fleets, {summary.balances:,} balances"
        + (f" ({summary.skipped:,} records skipped: not newer than stored)" if summary.skipped else "")
    )
    return 0


async def follow_feed(settings: Settings, path: Path | None, *, batch_lines: int, batch_wait: float) -> int:
    """`import --follow`: apply the lines of standard input (or a growing file) in micro-batches until it ends;
    one line per batch on standard output, failed batches on standard error. 1 if some batch failed."""
    from gateway.importer.follow import BatchOutcome, follow, open_source, read_lines
    from gateway.importer.jsonl import ImportFailed

    try:
        source = open_source(path)
    except ImportFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    async with migrated(settings):
        pass  # the schema brought up to date once, before the first batch

    def report(outcome: BatchOutcome) -> None:  # printed at once: a feed's log is read as it goes
        lines = f"lines {outcome.first_line}-{outcome.last_line}"
        if outcome.failure is not None:
            print(f"error: {lines} not applied: {outcome.failure}", file=sys.stderr, flush=True)
            return
        skipped = f", {outcome.skipped:,} skipped: not newer than stored" if outcome.skipped else ""
        applied = f"{outcome.records - outcome.skipped:,} of {outcome.records:,} records applied{skipped}"
        print(f"{lines}: {applied} in {outcome.seconds * 1000:.1f} ms", flush=True)

    from_stdin = source is sys.stdin.buffer
    # Standard input is left open: its reader thread may be inside readline(), which closing would wait for.
    with contextlib.nullcontext() if from_stdin else source:
        queue = read_lines(source, follow_growth=not from_stdin)
        # SIGTERM or Ctrl-C: the lines read so far are applied, then the command ends (and with it, the
        # embedded database's use).
        loop = asyncio.get_running_loop()
        for stop in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop, queue.put_nowait, None)
        applied = await follow(
            lambda: connect(settings), queue, batch_lines=batch_lines, batch_wait=batch_wait, report=report
        )
    return 0 if applied else 1


async def demo_data(settings: Settings, *, customers: int, seed: int, progress: bool) -> int:
    from gateway.importer.demo import load_demo_data

    async with migrated(settings) as connection:
        summary = await load_demo_data(connection, customers=customers, seed=seed, progress=progress)
    print(
        f"loaded {summary.customers:,} customers, {summary.identifiers:,} identifiers, {summary.fleets:,} fleets "
        f"and {summary.balances:,} balances in {summary.seconds:.1f} s"
    )
    if summary.showcase_org_ids:
        ids = ", ".join(str(org_id) for org_id in summary.showcase_org_ids)
        print(f"  orgs {ids}: the examples that the README and docs/ show")
    for org in summary.orgs:
        dual = (
            f"dual eligibility on {org.primary_identifier.value}" if org.primary_identifier else "dual eligibility off"
        )
        print(f"  org {org.org_id} {org.name}: {org.customers:,} customers, {org.fleets:,} fleets, {dual}")
    return 0
