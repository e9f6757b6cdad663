"""The importer's SQL: staging tables filled with COPY, set-based checks, apply.

The whole import runs in the caller's transaction. Rows are staged in
temporary tables that keep each row's file line, so that every check below is
one statement over the whole file and can still name the line at fault.
Nothing here knows JSON: rows arrive as tuples in the staging tables' column
order (see StagingTable).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from importlib.resources import files
from typing import Any

import asyncpg

from gateway.db import bulk
from gateway.db.bulk import BALANCE_COLUMNS, CUSTOMER_COLUMNS, FLEET_COLUMNS, ORG_COLUMNS, PROGRAM_COLUMNS


def _load(name: str) -> str:
    return files("gateway.db.sql").joinpath(f"{name}.sql").read_text(encoding="utf-8")


IMPORT_STAGING = _load("import_staging")
IMPORT_LOCK = _load("import_lock")
IMPORT_ANALYZE_STAGING = _load("import_analyze_staging")
IMPORT_FIND_DUPLICATE_KEYS = _load("import_find_duplicate_keys")
IMPORT_FIND_UNKNOWN_REFERENCES = _load("import_find_unknown_references")
IMPORT_FIND_DEFAULT_PROGRAM_PROBLEMS = _load("import_find_default_program_problems")
IMPORT_FIND_FLEET_CONFLICTS = _load("import_find_fleet_conflicts")
IMPORT_FIND_CHANGED_ORG_SETTINGS = _load("import_find_changed_org_settings")
IMPORT_APPLY_ORGS = _load("import_apply_orgs")
IMPORT_CLEAR_DEFAULTS = _load("import_clear_defaults")
IMPORT_APPLY_PROGRAMS = _load("import_apply_programs")
IMPORT_APPLY_CUSTOMERS = _load("import_apply_customers")
IMPORT_UPDATE_CUSTOMER_VERSIONS = _load("import_update_customer_versions")
IMPORT_DELETE_IDENTIFIERS = _load("import_delete_identifiers")
IMPORT_INSERT_IDENTIFIERS = _load("import_insert_identifiers")
IMPORT_DELETE_CHANGED_FLEETS = _load("import_delete_changed_fleets")
IMPORT_INSERT_FLEETS = _load("import_insert_fleets")
IMPORT_WRITE_BALANCES = _load("import_write_balances")
IMPORT_INSERT_BALANCES = _load("import_insert_balances")
IMPORT_FIND_IDENTIFIER_CONFLICTS = _load("import_find_identifier_conflicts")
IMPORT_FIND_SHARED_IDENTIFIERS = _load("import_find_shared_identifiers")
FIRST_LOAD_FIND_PROBLEMS = _load("first_load_find_problems")


class StagingTable(Enum):
    """A staging table and its columns, in the order of the tuples staged into it."""

    # Each is its table's columns (gateway/db/bulk.py) led by the line they came from,
    # except identifiers, which stage in the order their records are read.
    ORGS = ("import_orgs", ("line", *ORG_COLUMNS))
    PROGRAMS = ("import_programs", ("line", *PROGRAM_COLUMNS))
    CUSTOMERS = ("import_customers", ("line", *CUSTOMER_COLUMNS, "as_of"))
    IDENTIFIERS = (
        "import_identifiers",
        ("line", "org_id", "customer_id", "source", "account_id", "type", "value"),
    )
    FLEETS = ("import_fleets", ("line", *FLEET_COLUMNS, "as_of"))
    BALANCES = ("import_balances", ("line", *BALANCE_COLUMNS, "as_of"))

    @property
    def table_name(self) -> str:
        return str(self.value[0])

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.value[1])


@dataclass(frozen=True, slots=True)
class Problem:
    """Why the staged file cannot be applied; line is None when no line can be named."""

    line: int | None
    reason: str


async def begin_import(connection: asyncpg.Connection) -> None:
    """Create the staging tables, dropped with the transaction; call inside one."""
    if not connection.is_in_transaction():
        raise RuntimeError("an import must run inside a transaction")
    await connection.execute(IMPORT_STAGING)


async def create_session_staging(connection: asyncpg.Connection) -> None:
    """Create the staging tables once for the connection, emptied by every commit (import --follow)."""
    await connection.execute(IMPORT_STAGING.replace("ON COMMIT DROP", "ON COMMIT DELETE ROWS"))


async def drop_outdated(connection: asyncpg.Connection, versioned: Iterable[StagingTable]) -> int:
    """Drop the staged records of the versioned tables that are not newer than another of the file or than
    what is stored (both versioned); returns how many."""
    dropped = 0
    for table in versioned:
        for statement in _DROP_OUTDATED[table]:
            dropped += await connection.fetchval(statement)
    return dropped


def has_versions(table: StagingTable, rows: Iterable[tuple[Any, ...]]) -> bool:
    """Whether some of these staging rows carry a version (asOf), making drop_outdated's work for the table."""
    return table in _DROP_OUTDATED and any(row[-1] is not None for row in rows)


# For each kind of record that may carry a version (its last staging column): the statements that drop the
# records another of the file supersedes, then those no newer than what is stored.
_DROP_OUTDATED = {
    table: (_load(f"import_drop_superseded_{name}"), _load(f"import_drop_stale_{name}"))
    for table, name in (
        (StagingTable.CUSTOMERS, "customers"),
        (StagingTable.FLEETS, "fleets"),
        (StagingTable.BALANCES, "balances"),
    )
}


async def stage(
    connection: asyncpg.Connection, table: StagingTable, rows: Iterable[tuple[Any, ...]], *, straight: bool = False
) -> None:
    """Copy one batch of rows into a staging table, or, `straight` (a first load, see begin_first_load), the
    rows of customers, identifiers and balances into their own tables."""
    if straight and table in _STRAIGHT:
        target, columns = _STRAIGHT[table]
        await connection.copy_records_to_table(target, records=[row[1:] for row in rows], columns=columns)
    else:
        await connection.copy_records_to_table(table.table_name, records=rows, columns=table.columns)


# What a first load copies straight into the tables: each staging row, less its line.
_STRAIGHT = {
    table: (target, table.columns[1:])
    for table, target in (
        (StagingTable.CUSTOMERS, "customers"),
        (StagingTable.IDENTIFIERS, "customer_identifiers"),
        (StagingTable.BALANCES, "balances"),
    )
}


async def begin_first_load(connection: asyncpg.Connection) -> bulk.DeferredIndexes | None:
    """Before a file is read: when the database holds no customers, fleets or balances, take the import lock
    and get the tables ready for a first load (see bulk.defer_indexes_if_empty); None when it holds some.

    A first load stages customers, identifiers and balances straight into their tables (stage(straight=
    True)): the rows that grow with the data are written once, at COPY's pace. check_and_apply(first_load=)
    then checks the staged records as always, builds the keys, and first_load_holds checks the rest."""
    if not await connection.fetchval(bulk.ENTITIES_EMPTY):
        return None
    await connection.execute(IMPORT_LOCK)
    return await bulk.defer_indexes_if_empty(connection)


async def first_load_holds(connection: asyncpg.Connection) -> bool:
    """After check_and_apply(first_load=) found no problem: whether the rows copied straight into their tables
    keep the rules that no key checks. When not, the caller rolls back and imports the file again the
    usual way, which names the line at fault."""
    return not await connection.fetchval(FIRST_LOAD_FIND_PROBLEMS)


async def check_and_apply(
    connection: asyncpg.Connection,
    *,
    versioned: Iterable[StagingTable],
    balances_only: bool,
    large: bool,
    first_load: bulk.DeferredIndexes | None = None,
) -> tuple[int, Problem | None]:
    """Check and apply what is staged, in the caller's transaction: returns the versioned records skipped as
    not newer, and the first problem (then the caller must roll back, nothing of the file being applied).

    `balances_only` (nothing else staged) skips the import lock and the rules about the other records;
    `large` gathers the staging tables' statistics first and gives the checks room, so that a large file's
    plans fit its size (a small batch does without, and writes no statistics rows); a large file into a
    database without customers, fleets or balances builds their indexes after loading. `first_load` is
    begin_first_load's answer, for a file staged straight into the tables."""
    deferred = first_load
    if not balances_only:
        # Wait for the other imports to apply theirs; held to the end of the transaction.
        await connection.execute(IMPORT_LOCK)
        if large and deferred is None:
            deferred = await bulk.defer_indexes_if_empty(connection)
    if large:
        await connection.execute(_CHECK_MEMORY)
    skipped = await drop_outdated(connection, versioned)
    if large:
        await connection.execute(IMPORT_ANALYZE_STAGING)
    problem = await check_staged(connection)
    if problem is None and not balances_only:
        problem = await _apply_entities(connection)
    if problem is None:
        # Into the first load's keyless table, a plain insert: nobody else can write it meanwhile.
        problem = await _applied(connection, IMPORT_WRITE_BALANCES if deferred is None else IMPORT_INSERT_BALANCES)
    if problem is None and deferred is not None:
        problem = await _restored(connection, deferred)
    return skipped, problem


async def _restored(connection: asyncpg.Connection, deferred: bulk.DeferredIndexes) -> Problem | None:
    """The first load's indexes and foreign keys built again, and the statistics for its size gathered."""
    try:
        await bulk.restore_indexes(connection, deferred)
    except asyncpg.IntegrityConstraintViolationError as error:
        return _broken_rule(error)
    await bulk.analyze(connection)
    return None


# Room for the set-based checks' hashes and sorts over a large file.
_CHECK_MEMORY = "SET LOCAL work_mem = '256MB'"


async def check_staged(connection: asyncpg.Connection) -> Problem | None:
    """The first problem the staged file has before anything is applied, or None."""
    # In this order: a duplicate record would make the later checks name the
    # wrong line, and a missing reference would make the rules below moot.
    for statement in (
        IMPORT_FIND_DUPLICATE_KEYS,
        IMPORT_FIND_UNKNOWN_REFERENCES,
        IMPORT_FIND_DEFAULT_PROGRAM_PROBLEMS,
        IMPORT_FIND_FLEET_CONFLICTS,
    ):
        row = await connection.fetchrow(statement)
        if row is not None:
            return Problem(row["line"], row["reason"])
    return None


async def _apply_entities(connection: asyncpg.Connection) -> Problem | None:
    """Apply the staged orgs, programs, customers and fleets, then return the first identifier-uniqueness
    problem, or None.

    The rules are checked against the state after applying, which is simplest to get by applying. Balances
    come after, last of all: their rows, which `import --follow` writes too, are then locked only from
    their write to the commit."""
    changed = await connection.fetch(IMPORT_FIND_CHANGED_ORG_SETTINGS)
    # Parents before children: the foreign keys are checked row by row.
    for statement in (
        IMPORT_APPLY_ORGS,
        IMPORT_CLEAR_DEFAULTS,
        IMPORT_APPLY_PROGRAMS,
        IMPORT_APPLY_CUSTOMERS,
        IMPORT_UPDATE_CUSTOMER_VERSIONS,
        IMPORT_DELETE_IDENTIFIERS,
        IMPORT_INSERT_IDENTIFIERS,
        IMPORT_DELETE_CHANGED_FLEETS,
        IMPORT_INSERT_FLEETS,
    ):
        if problem := await _applied(connection, statement):
            return problem

    problems = [await connection.fetchrow(IMPORT_FIND_IDENTIFIER_CONFLICTS)]
    if changed:
        problems.append(
            await connection.fetchrow(
                IMPORT_FIND_SHARED_IDENTIFIERS,
                [record["org_id"] for record in changed],
                [record["line"] for record in changed],
            )
        )
    found = [Problem(row["line"], row["reason"]) for row in problems if row is not None]
    return min(found, key=lambda problem: problem.line or 0, default=None)


async def _applied(connection: asyncpg.Connection, statement: str) -> Problem | None:
    try:
        await connection.execute(statement)
    except asyncpg.IntegrityConstraintViolationError as error:
        return _broken_rule(error)
    return None


def _broken_rule(error: asyncpg.IntegrityConstraintViolationError) -> Problem:
    # The checks are meant to make this impossible; should a rule of the
    # schema still be broken, say which one rather than fail blindly.
    constraint = getattr(error, "constraint_name", None) or type(error).__name__
    return Problem(None, f"the file breaks the database rule {constraint}")
