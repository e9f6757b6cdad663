"""Demo data into the database: generated rows streamed into COPY in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

import asyncpg
from tqdm import tqdm

from gateway.db import bulk
from gateway.importer.demo.plan import (
    FIRST_CUSTOMER_ID,
    FIRST_FLEET_ID,
    FIRST_ORG_ID,
    FIRST_PROGRAM_ID,
    IdStart,
    plan_demo,
)
from gateway.importer.demo.rows import (
    balance_rows,
    customer_rows,
    fleet_rows,
    identifier_rows,
    org_rows,
    program_rows,
)
from gateway.importer.demo.showcase import Showcase, place_showcase
from gateway.importer.demo.summary import DemoSummary, summarise
from gateway.importer.progress import progress_bar

Row = tuple[object, ...]


async def load_demo_data(
    connection: asyncpg.Connection, *, customers: int, seed: int = 1, progress: bool = True, showcase: bool = True
) -> DemoSummary:
    """Generate and COPY demo data in one transaction, as new orgs with ids above those in the database:
    first the documented example org (unless `showcase` is off), then `customers` synthetic customers.

    Into empty tables, secondary indexes and foreign keys are dropped and built once at the end (primary
    keys stay). Progress bars, counted in customers, go to stderr.
    """
    started = time.perf_counter()
    async with connection.transaction():
        highest = await bulk.begin_bulk_load(connection)
        start = _start_above(highest)
        example, start = place_showcase(start) if showcase else (None, start)
        plan = plan_demo(customers, seed=seed, start=start)

        def rows(of_showcase: Callable[[Showcase], Iterable[Row]], synthetic: Iterable[Row]) -> Iterable[Row]:
            return chain(sorted(of_showcase(example)) if example else (), synthetic)

        await bulk.copy_rows(connection, "orgs", bulk.ORG_COLUMNS, rows(Showcase.org_rows, org_rows(plan)))
        await bulk.copy_rows(
            connection, "programs", bulk.PROGRAM_COLUMNS, rows(Showcase.program_rows, program_rows(plan))
        )
        deferred = await bulk.defer_indexes(connection) if highest.entities_empty else None
        with _bar(plan.customers, "customers", progress) as bar:
            copied_customers = await bulk.copy_rows(
                connection,
                "customers",
                bulk.CUSTOMER_COLUMNS,
                rows(Showcase.customer_rows, customer_rows(plan, bar.update)),
            )
        with _bar(plan.customers, "identifiers", progress) as bar:
            identifiers = await bulk.copy_rows(
                connection,
                "customer_identifiers",
                bulk.IDENTIFIER_COLUMNS,
                rows(Showcase.identifier_rows, identifier_rows(plan, bar.update)),
            )
        fleets = await bulk.copy_rows(
            connection, "fleets", bulk.FLEET_COLUMNS, rows(Showcase.fleet_rows, fleet_rows(plan))
        )
        with _bar(plan.customers, "balances", progress) as bar:
            balances = await bulk.copy_rows(
                connection,
                "balances",
                bulk.BALANCE_COLUMNS,
                rows(Showcase.balance_rows, balance_rows(plan, bar.update)),
            )
        steps = len(deferred.restore_statements) if deferred else 0
        with _bar(steps + 1, "finishing", progress, unit=" steps") as bar:
            if deferred:
                await bulk.restore_indexes(connection, deferred, bar.update)
            await bulk.analyze(connection)
            bar.update(1)
    return summarise(
        plan,
        showcase_org_ids=example.org_ids if example else (),
        customers=copied_customers,
        identifiers=identifiers,
        fleets=fleets,
        balances=balances,
        seconds=time.perf_counter() - started,
    )


def _bar(total: int, description: str, enabled: bool, unit: str = " customers") -> tqdm[Any]:
    return progress_bar(total, f"{description:<11}", enabled=enabled, unit=unit)


def _start_above(highest: bulk.HighestIds) -> IdStart:
    return IdStart(
        org_id=max(FIRST_ORG_ID, highest.org_id + 1),
        program_id=max(FIRST_PROGRAM_ID, highest.program_id + 1),
        customer_id=max(FIRST_CUSTOMER_ID, _round_up(highest.customer_id + 1)),
        fleet_id=max(FIRST_FLEET_ID, _round_up(highest.fleet_id + 1)),
    )


def _round_up(entity_id: int) -> int:
    """The next round million: ids of separate loads are easy to tell apart."""
    return -(-entity_id // 1_000_000) * 1_000_000
