"""`loyalty-gateway import --follow`: JSON Lines as the loyalty engine writes them, applied in micro-batches.

Lines come from standard input, or from a file that keeps growing (read as `tail -f` does), and are gathered
into batches: a batch is applied once it holds `batch_lines` lines, or once its first line has waited
`batch_wait` seconds, whichever comes first. Each batch is one transaction with the checks of `import`: a bad
line fails its own batch, named by its line number in the stream, and nothing of that batch is applied; the
next batch goes on. The staging tables are created once per connection (emptied by each commit), so a
batch creates no table. A batch of balances alone, the usual change, takes no import lock: a bulk `import`
running meanwhile holds it up only if both write the same balance, and then only from the bulk import's
write of its balances (its last step) to its commit. A batch with other records takes the import lock to
check and apply: it waits while a bulk import checks and applies, not while that import reads its file.

A lost connection (the database restarting) is opened again and the batch in flight applied again: it was
rolled back, or, had its commit happened, applying it again changes nothing (versioned balances are
skipped as not newer, the others set to the same values).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import asyncpg

from gateway.db.importing import StagingTable, check_and_apply, create_session_staging, has_versions, stage
from gateway.db.pool import CONNECTION_ERRORS
from gateway.importer.jsonl import ADDERS, ImportFailed, StagedRows, parse_record

# Batches this large are checked as a large file is (see check_and_apply), so that their plans fit their size.
LARGE_FROM_LINES = 5_000
# How long a growing file is left alone once its end is reached.
_POLL_SECONDS = 0.02
# Reconnecting after a lost connection: the first pause, the longest, and when to give up.
_RETRY_FIRST, _RETRY_LONGEST, RETRY_FOR = 0.1, 2.0, 300.0

_END = None
Line = tuple[int, bytes]


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    first_line: int
    last_line: int
    records: int
    skipped: int  # versioned balances not newer than stored (or than another of the batch)
    seconds: float
    failure: ImportFailed | None = None


def read_lines(source: BinaryIO, *, follow_growth: bool) -> asyncio.Queue[Line | None]:
    """The source's lines, numbered from 1, put on a queue by a thread; None once the source has ended
    (a growing file never ends)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Line | None] = asyncio.Queue()

    # Raw reads of the file descriptor, not the buffered file: a thread blocked in os.read holds no lock that
    # the interpreter's exit would wait for.
    descriptor = source.fileno()

    def read() -> None:
        number, partial = 0, b""
        while True:
            try:
                chunk = os.read(descriptor, 1 << 16)
            except OSError:  # closed: the command is ending, nobody reads on
                return
            if not chunk:
                if follow_growth:
                    time.sleep(_POLL_SECONDS)
                    continue
                if partial:  # a last line without its newline
                    number += 1
                    loop.call_soon_threadsafe(queue.put_nowait, (number, partial))
                loop.call_soon_threadsafe(queue.put_nowait, _END)
                return
            *lines, partial = (partial + chunk).split(b"\n")  # partial: what the writer has not finished yet
            for raw in lines:
                number += 1
                loop.call_soon_threadsafe(queue.put_nowait, (number, raw + b"\n"))

    threading.Thread(target=read, name="import-follow-reader", daemon=True).start()
    return queue


async def next_batch(queue: asyncio.Queue[Line | None], max_lines: int, max_wait: float) -> list[Line] | None:
    """Up to max_lines lines, waiting at most max_wait seconds after the first; None once the source ended."""
    first = await queue.get()
    if first is _END:
        return None
    batch = [first]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait
    while len(batch) < max_lines:
        try:
            item = queue.get_nowait()
        except asyncio.QueueEmpty:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                item = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                break
        if item is _END:
            queue.put_nowait(_END)  # for the next call
            break
        batch.append(item)
    return batch


def staged_rows(batch: list[Line]) -> tuple[StagedRows, int]:
    """The batch's staging rows and its record count; raises ImportFailed naming the bad line."""
    rows: StagedRows = {table: [] for table in StagingTable}
    records = 0
    for number, raw in batch:
        record = parse_record(raw, number)
        if record is not None:
            records += 1
            ADDERS[type(record)](rows, number, record)
    return rows, records


async def apply_batch(connection: asyncpg.Connection, rows: StagedRows, lines: int) -> int:
    """Stage, check and apply one batch in one transaction; returns the balances skipped as not newer.
    Raises ImportFailed (nothing applied) or a connection error."""
    async with connection.transaction():
        for table, staged in rows.items():
            if staged:
                await stage(connection, table, staged)
        skipped, problem = await check_and_apply(
            connection,
            versioned=[table for table, staged in rows.items() if has_versions(table, staged)],
            balances_only=not any(staged for table, staged in rows.items() if table is not StagingTable.BALANCES),
            large=lines >= LARGE_FROM_LINES,
        )
        if problem is not None:
            raise ImportFailed(problem.line, problem.reason)
    return skipped


async def follow(
    connect: Callable[[], Awaitable[asyncpg.Connection]],
    queue: asyncio.Queue[Line | None],
    *,
    batch_lines: int,
    batch_wait: float,
    report: Callable[[BatchOutcome], None],
) -> bool:
    """Apply batches until the source ends; True when every batch was applied."""
    connection = await _connected(connect, None)
    all_applied = True
    try:
        while (batch := await next_batch(queue, batch_lines, batch_wait)) is not None:
            started = time.perf_counter()
            first, last = batch[0][0], batch[-1][0]
            try:
                rows, records = staged_rows(batch)
            except ImportFailed as failure:
                report(BatchOutcome(first, last, 0, 0, time.perf_counter() - started, failure))
                all_applied = False
                continue
            while True:
                try:
                    skipped = await apply_batch(connection, rows, len(batch))
                except ImportFailed as failure:
                    report(BatchOutcome(first, last, records, 0, time.perf_counter() - started, failure))
                    all_applied = False
                    break
                except CONNECTION_ERRORS as error:
                    connection = await _connected(connect, error)
                    continue
                report(BatchOutcome(first, last, records, skipped, time.perf_counter() - started))
                break
    finally:
        connection.terminate()
    return all_applied


async def _connected(
    connect: Callable[[], Awaitable[asyncpg.Connection]], lost: BaseException | None
) -> asyncpg.Connection:
    """A connection with the session's staging tables, retrying while the database cannot be reached."""
    if lost is not None:
        print(f"the database connection was lost ({type(lost).__name__}); reconnecting", file=sys.stderr)
    pause, deadline = _RETRY_FIRST, time.monotonic() + RETRY_FOR
    while True:
        try:
            connection = await connect()
            await create_session_staging(connection)
            return connection
        except CONNECTION_ERRORS:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(pause)
            pause = min(_RETRY_LONGEST, pause * 2)


def open_source(path: Path | None) -> BinaryIO:
    """Standard input for None (or "-"), else the file, read from its start."""
    if path is None or str(path) == "-":
        return sys.stdin.buffer
    try:
        return path.open("rb")
    except OSError as error:
        raise ImportFailed(None, f"cannot read {path}: {error.strerror}") from None
