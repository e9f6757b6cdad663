"""Bulk loading: binary COPY from row streams, with index maintenance deferred while tables are empty.

The statements here name tables and indexes, which cannot be $n parameters; the names come from the fixed
table list below or from the catalog (quoted by format('%I')), never from input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import asyncpg

ORG_COLUMNS = ("org_id", "name", "dual_eligibility", "primary_identifier")
PROGRAM_COLUMNS = ("org_id", "program_id", "name", "is_default")
CUSTOMER_COLUMNS = ("org_id", "customer_id")
IDENTIFIER_COLUMNS = ("org_id", "source", "account_id", "type", "value", "customer_id")
FLEET_COLUMNS = ("org_id", "fleet_id", "external_id", "primary_user_id")
BALANCE_COLUMNS = (
    "org_id",
    "entity_type",
    "entity_id",
    "program_id",
    "main_points",
    "delayed_accrual_points",
    "external_trigger_points",
)
# The tables that grow with the number of customers: the only ones worth deferring indexes on.
ENTITY_TABLES = ("customers", "customer_identifiers", "fleets", "balances")

# The big tables whose primary keys a first load builds after loading; its statements for them must then
# not rely on the key (no ON CONFLICT). Fleets keep theirs: few rows, and their insert relies on it.
FIRST_LOAD_PRIMARY_KEYS = ("customers", "customer_identifiers", "balances")

# Any fixed number: two bulk loads take turns, so each sees the other's ids when choosing its own.
_BULK_LOAD_LOCK = 7_311_120_002

_LOCK_BULK_LOAD = "SELECT pg_advisory_xact_lock($1)"
# Writers would race the emptiness check and the deferred indexes; readers may go on.
_LOCK_ENTITY_TABLES = "LOCK TABLE customers, customer_identifiers, fleets, balances IN SHARE ROW EXCLUSIVE MODE"
_HIGHEST_IDS = """
SELECT (SELECT coalesce(max(org_id), 0) FROM orgs) AS org_id,
       (SELECT coalesce(max(program_id), 0) FROM programs) AS program_id,
       (SELECT coalesce(max(customer_id), 0) FROM customers) AS customer_id,
       (SELECT coalesce(max(fleet_id), 0) FROM fleets) AS fleet_id,
       NOT EXISTS (SELECT FROM customers) AND NOT EXISTS (SELECT FROM customer_identifiers)
           AND NOT EXISTS (SELECT FROM fleets) AND NOT EXISTS (SELECT FROM balances) AS entities_empty
"""
# Indexes that back no constraint of their own table (primary keys stay), and foreign keys; each with the
# statement that drops it and the one that builds it again.
_SECONDARY_INDEXES = """
SELECT format('DROP INDEX %s', i.indexrelid::regclass) AS drop_statement,
       pg_get_indexdef(i.indexrelid) AS create_statement
FROM pg_index i
WHERE i.indrelid = ANY($1::text[]::regclass[])
  AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid)
ORDER BY i.indexrelid
"""
# Triggers of the gateway's own (the change announcements of live subscriptions): a load into empty tables
# has no subscriber to tell, and capturing millions of rows for them is not free.
_TRIGGERS = """
SELECT format('ALTER TABLE %s DISABLE TRIGGER %I', t.tgrelid::regclass, t.tgname) AS drop_statement,
       format('ALTER TABLE %s ENABLE TRIGGER %I', t.tgrelid::regclass, t.tgname) AS create_statement
FROM pg_trigger t
WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND t.tgrelid = ANY($1::text[]::regclass[])
ORDER BY t.oid
"""
# Constraints of one type ($2: 'p' primary keys, 'f' foreign keys) of the tables $1.
_CONSTRAINTS = """
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname) AS drop_statement,
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid))
           AS create_statement
FROM pg_constraint c
WHERE c.contype::text = $2 AND c.conrelid = ANY($1::text[]::regclass[])
ORDER BY c.oid
"""
ENTITIES_EMPTY = """
SELECT NOT EXISTS (SELECT FROM customers) AND NOT EXISTS (SELECT FROM customer_identifiers)
       AND NOT EXISTS (SELECT FROM fleets) AND NOT EXISTS (SELECT FROM balances)
"""
# Index builds are the long part of restoring; the default 64MB makes them spill to disk.
_MAINTENANCE_MEMORY = "SET LOCAL maintenance_work_mem = '256MB'"
# Losing the last moments of a demo load in a crash is harmless; waiting for its WAL flush is not free.
_ASYNCHRONOUS_COMMIT = "SET LOCAL synchronous_commit = off"
_ANALYZE = "ANALYZE orgs, programs, customers, customer_identifiers, fleets, balances"


@dataclass(frozen=True, slots=True)
class HighestIds:
    """The highest ids in use (0 when none), and whether the entity tables hold no rows at all."""

    org_id: int
    program_id: int
    customer_id: int
    fleet_id: int
    entities_empty: bool


@dataclass(frozen=True, slots=True)
class DeferredIndexes:
    """What was dropped for a load, as the statements that restore it (indexes first, then foreign keys)."""

    restore_statements: tuple[str, ...]


async def begin_bulk_load(connection: asyncpg.Connection) -> HighestIds:
    """Serialise bulk loads and block other writers to the entity tables; call inside the load's transaction."""
    await connection.execute(_LOCK_BULK_LOAD, _BULK_LOAD_LOCK)
    await connection.execute(_LOCK_ENTITY_TABLES)
    await connection.execute(_ASYNCHRONOUS_COMMIT)
    row = await connection.fetchrow(_HIGHEST_IDS)
    assert row is not None
    return HighestIds(row["org_id"], row["program_id"], row["customer_id"], row["fleet_id"], row["entities_empty"])


async def copy_rows(
    connection: asyncpg.Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[object, ...]]
) -> int:
    """Binary COPY of a row stream, consumed as it is sent; returns the number of rows copied."""
    status = await connection.copy_records_to_table(table, records=rows, columns=list(columns))
    return int(status.rsplit(" ", 1)[-1])


async def defer_indexes(
    connection: asyncpg.Connection, tables: Sequence[str] = ENTITY_TABLES, *, primary_keys_of: Sequence[str] = ()
) -> DeferredIndexes:
    """Drop the secondary indexes and foreign keys of tables, and the primary keys of primary_keys_of (whose
    loads then need no conflict handling), and disable their triggers; only sound while they are empty."""
    indexes = await connection.fetch(_SECONDARY_INDEXES, list(tables))
    foreign_keys = await connection.fetch(_CONSTRAINTS, list(tables), "f")
    primary_keys = await connection.fetch(_CONSTRAINTS, list(primary_keys_of), "p") if primary_keys_of else []
    triggers = await connection.fetch(_TRIGGERS, list(tables))
    # Foreign keys first: they need the primary keys they point at, which are built first again.
    dropped = (*triggers, *foreign_keys, *primary_keys, *indexes)
    for row in dropped:
        await connection.execute(row["drop_statement"])
    restored = (*primary_keys, *indexes, *foreign_keys, *triggers)
    return DeferredIndexes(tuple(row["create_statement"] for row in restored))


async def defer_indexes_if_empty(connection: asyncpg.Connection) -> DeferredIndexes | None:
    """For an import into a database that holds no customers, fleets or balances yet (a first load): lock
    the entity tables against other writers and drop their secondary indexes and foreign keys, and the
    primary keys of FIRST_LOAD_PRIMARY_KEYS, to be built once over the loaded rows (restore_indexes). None,
    and nothing locked, when they hold rows.

    Dropping takes the tables' exclusive lock, so lookups wait until the load commits; they would find
    nothing before it anyway. An import into tables that hold rows never does this."""
    if not await connection.fetchval(ENTITIES_EMPTY):
        return None
    await connection.execute(_LOCK_ENTITY_TABLES)
    if not await connection.fetchval(ENTITIES_EMPTY):  # filled meanwhile
        return None
    return await defer_indexes(connection, primary_keys_of=FIRST_LOAD_PRIMARY_KEYS)


async def restore_indexes(
    connection: asyncpg.Connection, deferred: DeferredIndexes, done: Callable[[int], object] | None = None
) -> None:
    """Build the dropped indexes once over the loaded rows and validate the foreign keys in one pass each."""
    await connection.execute(_MAINTENANCE_MEMORY)
    for statement in deferred.restore_statements:
        await connection.execute(statement)
        if done:
            done(1)


async def analyze(connection: asyncpg.Connection) -> None:
    """Fresh planner statistics: without them the planner guesses on millions of rows as if on none."""
    await connection.execute(_ANALYZE)
