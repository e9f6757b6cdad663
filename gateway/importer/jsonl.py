"""`loyalty-gateway import FILE`: a JSON Lines file into the database, all or nothing.

The file is streamed: each line is parsed and validated on its own
(gateway.importer.records), turned into staging rows and copied to the
database in batches, so memory stays bounded whatever the file's size. Once
the whole file is staged, set-based checks and the apply run in the same
transaction (gateway.db.importing); any problem rolls everything back.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg
from tqdm import tqdm

from gateway.db.importing import (
    StagingTable,
    begin_first_load,
    begin_import,
    check_and_apply,
    first_load_holds,
    has_versions,
    stage,
)

# The fast path to records.parse_line: the same records and messages, about twice as fast.
from gateway.importer.fast_records import parse_line
from gateway.importer.progress import progress_bar
from gateway.importer.records import (
    BalanceRecord,
    CustomerRecord,
    FleetRecord,
    OrgRecord,
    ProgramRecord,
    Record,
    RecordError,
)

# Rows per COPY: big enough to amortise a round trip, small enough to keep
# memory flat (a few MB per staging table).
BATCH_ROWS = 20_000
# Look for full batches (and update the progress bar) every so many lines.
CHECK_EVERY = 1_000


class ImportFailed(Exception):
    """The file was not imported; nothing of it was applied."""

    def __init__(self, line: int | None, reason: str) -> None:
        super().__init__(f"line {line}: {reason}" if line is not None else reason)
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """How many records of each kind the file held (identifiers: within customers)."""

    orgs: int = 0
    programs: int = 0
    customers: int = 0
    identifiers: int = 0
    fleets: int = 0
    balances: int = 0
    # Versioned records skipped: not newer than another of the file, or than what is stored.
    skipped: int = 0
    # Lines read, blank ones included (for the import metrics; not part of what the file holds).
    lines: int = field(default=0, compare=False)


async def import_file(connection: asyncpg.Connection, path: Path, *, progress: bool = True) -> ImportSummary:
    """Import a JSON Lines file in one transaction; raises ImportFailed naming the line at fault."""
    try:
        return await _import(connection, path, progress=progress, first_load=True)
    except _Unplaced:
        # A first load found a problem it cannot place (see begin_first_load): the usual way names its line.
        return await _import(connection, path, progress=progress, first_load=False)


class _Unplaced(Exception):
    """A first load's file breaks a rule, on a line yet to be found; nothing of it was applied."""


async def _import(connection: asyncpg.Connection, path: Path, *, progress: bool, first_load: bool) -> ImportSummary:
    file, size = _open(path)
    with (
        file,
        progress_bar(size, f"import {path.name}", enabled=progress, unit="B", binary=True) as bar,
    ):
        async with connection.transaction():
            await begin_import(connection)
            deferred = await begin_first_load(connection) if first_load else None
            summary, versioned = await _stage_file(connection, file, bar, straight=deferred is not None)
            # Read and staged without the import lock (but for a first load): only checking and applying
            # make other imports wait.
            balances_only = not (summary.orgs or summary.programs or summary.customers or summary.fleets)
            bar.set_postfix_str("checking" if balances_only else "waiting for other imports, then checking")
            skipped, problem = await check_and_apply(
                connection, versioned=versioned, balances_only=balances_only, large=True, first_load=deferred
            )
            if deferred is not None and (problem is not None or not await first_load_holds(connection)):
                raise _Unplaced
            if problem is not None:
                raise ImportFailed(problem.line, problem.reason)
            bar.set_postfix_str("done")
    return replace(summary, skipped=skipped)


def _open(path: Path) -> tuple[BinaryIO, int]:
    # Binary: lines are split on b"\n" only, so line numbers are physical lines
    # whatever other separators the text holds.
    try:
        file = path.open("rb")
    except OSError as error:
        raise ImportFailed(None, f"cannot read {path}: {error.strerror}") from None
    return file, os.fstat(file.fileno()).st_size


_Batch = tuple[StagingTable, list[tuple[Any, ...]]]


class _Reader:
    """Reads the file a batch at a time, turning lines into staging rows.

    Used from one worker thread at a time: while it parses the next batch,
    the event loop copies the previous one, so Python and PostgreSQL work
    side by side instead of in turns.
    """

    def __init__(self, file: BinaryIO, bar: tqdm[Any]) -> None:
        self._lines = enumerate(file, start=1)
        self._bar = bar
        self._rows: StagedRows = {table: [] for table in StagingTable}
        self._done = False
        self.counts: dict[type[Any], int] = dict.fromkeys(ADDERS, 0)
        self.identifiers = 0
        self.lines = 0

    def next_batches(self) -> list[_Batch] | None:
        """The staging tables whose batch is full (all of them at the end), or None once all is read."""
        if self._done:
            return None
        rows = self._rows
        unreported = 0
        try:
            for line, raw in self._lines:
                self.lines = line
                unreported += len(raw)
                record = parse_record(raw, line)
                if record is not None:
                    kind = type(record)
                    self.counts[kind] += 1
                    self.identifiers += ADDERS[kind](rows, line, record)
                if line % CHECK_EVERY == 0:
                    full = [table for table, staged in rows.items() if len(staged) >= BATCH_ROWS]
                    if full:
                        self._bar.update(unreported)
                        return [self._take(table) for table in full]
        except OSError as error:
            raise ImportFailed(None, f"cannot read the file: {error.strerror or error}") from None
        self._bar.update(unreported)
        self._done = True
        return [self._take(table) for table, staged in rows.items() if staged]

    def _take(self, table: StagingTable) -> _Batch:
        staged = self._rows[table]
        self._rows[table] = []
        return table, staged

    def summary(self) -> ImportSummary:
        return ImportSummary(
            orgs=self.counts[OrgRecord],
            programs=self.counts[ProgramRecord],
            customers=self.counts[CustomerRecord],
            identifiers=self.identifiers,
            fleets=self.counts[FleetRecord],
            balances=self.counts[BalanceRecord],
            lines=self.lines,
        )


async def _stage_file(
    connection: asyncpg.Connection, file: BinaryIO, bar: tqdm[Any], *, straight: bool
) -> tuple[ImportSummary, set[StagingTable]]:
    """Stage the whole file; returns what it holds and the staging tables that received versioned rows."""
    reader = _Reader(file, bar)
    versioned: set[StagingTable] = set()
    reading = asyncio.ensure_future(asyncio.to_thread(reader.next_batches))
    try:
        while (batches := await reading) is not None:
            reading = asyncio.ensure_future(asyncio.to_thread(reader.next_batches))
            for table, rows in batches:
                if table not in versioned and has_versions(table, rows):
                    versioned.add(table)
                await stage(connection, table, rows, straight=straight)
    finally:
        # Should a COPY fail, the reader must be done with the file before it is closed.
        if not reading.done():
            await asyncio.wait([reading])
        if not reading.cancelled():
            reading.exception()  # retrieved, so that asyncio does not log it as lost
    return reader.summary(), versioned


def parse_record(raw: bytes, line: int) -> Record | None:
    """The record on one physical line, None for a blank line; raises ImportFailed."""
    try:
        # A byte-order mark is tolerated at the start of the file only.
        text = raw.decode("utf-8-sig" if line == 1 else "utf-8")
    except UnicodeDecodeError as error:
        raise ImportFailed(line, f"not UTF-8 (byte {error.start + 1} of the line)") from None
    if not text.strip():
        return None
    try:
        return parse_line(text)
    except RecordError as error:
        raise ImportFailed(line, error.reason) from None


StagedRows = dict[StagingTable, list[tuple[Any, ...]]]


def _add_org(rows: StagedRows, line: int, record: OrgRecord) -> int:
    primary = record.primary_identifier.value if record.primary_identifier is not None else None
    rows[StagingTable.ORGS].append((line, record.id, record.name, record.dual_eligibility, primary))
    return 0


def _add_program(rows: StagedRows, line: int, record: ProgramRecord) -> int:
    rows[StagingTable.PROGRAMS].append((line, record.org_id, record.id, record.name, record.default))
    return 0


def _add_customer(rows: StagedRows, line: int, record: CustomerRecord) -> int:
    rows[StagingTable.CUSTOMERS].append((line, record.org_id, record.id, record.as_of))
    staged = rows[StagingTable.IDENTIFIERS]
    for identifier in record.identifiers:
        staged.append(
            (
                line,
                record.org_id,
                record.id,
                identifier.source.value,
                identifier.account_id,
                identifier.type.value,
                identifier.value,
            )
        )
    return len(record.identifiers)


def _add_fleet(rows: StagedRows, line: int, record: FleetRecord) -> int:
    rows[StagingTable.FLEETS].append(
        (line, record.org_id, record.id, record.external_id, record.primary_user_id, record.as_of)
    )
    return 0


def _add_balance(rows: StagedRows, line: int, record: BalanceRecord) -> int:
    rows[StagingTable.BALANCES].append(
        (
            line,
            record.org_id,
            record.entity_type.value,
            record.entity_id,
            record.program_id,
            record.main_points,
            record.delayed_accrual_points,
            record.external_trigger_based_points,
            record.as_of,
        )
    )
    return 0


# Each adder appends a record's staging rows and returns its identifier count.
ADDERS: dict[type[Any], Callable[[StagedRows, int, Any], int]] = {
    OrgRecord: _add_org,
    ProgramRecord: _add_program,
    CustomerRecord: _add_customer,
    FleetRecord: _add_fleet,
    BalanceRecord: _add_balance,
}
