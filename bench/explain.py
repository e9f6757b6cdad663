"""The database's side of a lookup: EXPLAIN of the gateway's statement, or its cost per execution.

    python bench/explain.py [--customers 1000000] [--lookups 1] [--general] [--database-url URL]
    python bench/explain.py --compare [--runs 5000] [--rounds 3] [--customers 1000000]
    python bench/explain.py --groups [--runs 5000] [--rounds 3] [--customers 1000000]

Without --database-url it starts the bench's database for that size (bench/.work/pg-N, loaded by an
earlier `python bench/run.py --customers N`) and stops it afterwards. It picks real identifiers (one
per lookup, no account, default program: the bench's request).

By default it prints EXPLAIN (ANALYZE, BUFFERS) of the statement the gateway runs for that batch
(fetch_customer_balance.sql for one lookup, fetch_balances.sql for more; --general: always the
latter), twice: as planned for these parameter values (custom plan) and as the generic plan, the
one the gateway runs (its connections set plan_cache_mode = force_generic_plan). The generic plan
is shown through PREPARE and EXPLAIN EXECUTE: an EXPLAIN with bound parameters is always planned
for their values.

--compare times the one-lookup case instead: fetch_balances.sql against fetch_customer_balance.sql and
against the simplest statement that answers the common case alike (SIMPLEST, checked on every sampled
identifier first),
each prepared on one connection (jit off) and run --runs times per round over sampled identifiers,
rounds alternating. Per statement it reports the median round trip (µs) and the server backend's
CPU per execution (user + system time of its process, read with psutil: so run it on the
database's machine), and how many generic and custom plans PostgreSQL made for it.

--groups times what lookups waiting for a connection together cost (gateway.db.lookup_groups): the single
lookup's fetch_customer_balance.sql against fetch_customer_balances.sql answering groups of 1 to 32 lookups of
one org, on one connection with the pool's settings (generic plans, jit off). Per lookup it reports the round
trip (µs, the group's median divided by its size), this client's CPU (asyncpg's work for the statement:
process time) and the server backend's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from importlib.resources import files

import asyncpg
import psutil

from database import WORK_DIR, embedded_postgres, install_signal_handlers
from floor import (
    FETCH_BALANCES,
    FETCH_CUSTOMER_BALANCE,
    SentIdentifier,
    customer_balance_arguments,
    fetch_arguments,
    lookup_statement,
)

_PICK = """
SELECT i.org_id, i.source, i.type, i.value
FROM customer_identifiers i
JOIN orgs o ON o.org_id = i.org_id
WHERE i.account_id = '' AND (NOT o.dual_eligibility OR i.type = o.primary_identifier)
  AND i.org_id = (SELECT min(org_id) FROM orgs WHERE NOT dual_eligibility)
ORDER BY i.customer_id DESC
LIMIT $1
"""

# Identifiers of every org, spread over the table (the bench's samples are drawn the same way).
_SAMPLE = """
SELECT i.org_id, i.source, i.type, i.value
FROM customer_identifiers i TABLESAMPLE SYSTEM (1) REPEATABLE (7)
JOIN orgs o ON o.org_id = i.org_id
WHERE i.account_id = '' AND (NOT o.dual_eligibility OR i.type = o.primary_identifier)
LIMIT $1
"""


async def explain(url: str, lookups: int, general: bool) -> str:
    connection = await asyncpg.connect(url, server_settings={"jit": "off"})
    try:
        rows = await connection.fetch(_PICK, lookups)
        if len(rows) < lookups:
            raise SystemExit("not enough identifiers: is the database loaded?")
        batch = [(r["source"], "", [(r["type"], r["value"], None)]) for r in rows]
        org_id = rows[0]["org_id"]
        statement, args = (
            (FETCH_BALANCES, fetch_arguments(org_id, batch)) if general else lookup_statement(org_id, batch)
        )
        name = "fetch_balances.sql" if statement is FETCH_BALANCES else "fetch_customer_balance.sql"
        shown = [
            f"-- {name}, {lookups} lookup(s), org {org_id}: " + ", ".join(f"{r['type']} {r['value']}" for r in rows)
        ]
        prepared = await connection.prepare(statement)
        for _ in range(5):
            await prepared.fetch(*args)
        plan = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *args)
        shown += ["", "-- custom plan (for these values)", *(row[0] for row in plan)]
        # Typed literals of the same values, for EXECUTE (which takes no bound parameters).
        types = [
            await connection.fetchval("SELECT format_type($1::oid, NULL)", t.oid) for t in prepared.get_parameters()
        ]
        literals = [
            await connection.fetchval(f"SELECT quote_nullable($1::{type_})", value)
            for type_, value in zip(types, args, strict=True)
        ]
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        await connection.execute(f"PREPARE lookup ({', '.join(types)}) AS {statement}")
        values = ", ".join(f"{literal}::{type_}" for literal, type_ in zip(literals, types, strict=True))
        plan = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE lookup ({values})")
        shown += ["", "-- generic plan (what a prepared statement runs)", *(row[0] for row in plan)]
        return "\n".join(shown)
    finally:
        await connection.close()


@dataclass(frozen=True, slots=True)
class Cost:
    round_trip_us: float  # median
    backend_cpu_us: float  # per execution
    generic_plans: int
    custom_plans: int


async def _time(url: str, statement: str, arguments: Sequence[Sequence[object]], runs: int) -> Cost:
    connection = await asyncpg.connect(url, server_settings={"jit": "off"})
    try:
        backend = psutil.Process(await connection.fetchval("SELECT pg_backend_pid()"))
        prepared = await connection.prepare(statement)
        for args in arguments[:200]:  # past the five custom plans, and caches warm
            await prepared.fetch(*args)
        timings = []
        before = backend.cpu_times()
        for i in range(runs):
            started = time.perf_counter()
            await prepared.fetch(*arguments[i % len(arguments)])
            timings.append(1e6 * (time.perf_counter() - started))
        after = backend.cpu_times()
        cpu = (after.user + after.system) - (before.user + before.system)
        plans = await connection.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", statement
        )
        assert plans is not None
        return Cost(statistics.median(timings), 1e6 * cpu / runs, plans["generic_plans"], plans["custom_plans"])
    finally:
        await connection.close()


# The simplest statement that answers the common case the same: one identifier matching one customer, no
# account, the default program, an org without dual eligibility (or the primary type's identifier). It checks
# nothing else (a shared identifier matching several customers, an ID, a missing org or program): a yardstick
# for the lean statement's cost, not something the gateway could run.
SIMPLEST = """
SELECT i.customer_id AS entity_id, p.program_id, p.name AS program_name, p.is_default,
       b.main_points, b.delayed_accrual_points, b.external_trigger_points
FROM customer_identifiers i
JOIN programs p ON p.org_id = $1 AND p.is_default
LEFT JOIN balances b
  ON b.org_id = $1 AND b.entity_type = 'CUSTOMER' AND b.entity_id = i.customer_id AND b.program_id = p.program_id
WHERE i.org_id = $1 AND i.source = $2 AND i.account_id = '' AND i.type = $3 AND i.value = $4
"""
_ANSWER = ("entity_id", "program_id", "main_points", "delayed_accrual_points", "external_trigger_points")


async def _same_answers(url: str, lean: Sequence[Sequence[object]], simplest: Sequence[Sequence[object]]) -> int:
    """How many of the identifiers the simplest statement answers differently from the lean one."""
    connection = await asyncpg.connect(url)
    try:
        differ = 0
        for lean_args, simple_args in zip(lean, simplest, strict=True):
            mine = [
                tuple(row[name] for name in _ANSWER)
                for row in await connection.fetch(FETCH_CUSTOMER_BALANCE, *lean_args)
            ]
            other = [tuple(row[name] for name in _ANSWER) for row in await connection.fetch(SIMPLEST, *simple_args)]
            differ += mine != other
        return differ
    finally:
        await connection.close()


async def _sampled(url: str, count: int) -> list[asyncpg.Record]:
    """Up to `count` identifiers spread over the table (_SAMPLE); at least 100, or the database is not loaded."""
    connection = await asyncpg.connect(url)
    try:
        rows: list[asyncpg.Record] = await connection.fetch(_SAMPLE, count)
    finally:
        await connection.close()
    if len(rows) < 100:
        raise SystemExit("not enough identifiers: is the database loaded?")
    return rows


async def compare(url: str, runs: int, rounds: int) -> str:
    rows = await _sampled(url, 5000)
    identifiers = [(r["org_id"], r["source"], (r["type"], r["value"], None)) for r in rows]
    lean = [customer_balance_arguments(o, s, "", i) for o, s, i in identifiers]
    simplest = [[o, s, i[0], i[1]] for o, s, i in identifiers]
    differ = await _same_answers(url, lean, simplest)
    contenders = {
        "fetch_balances.sql": (FETCH_BALANCES, [fetch_arguments(o, [(s, "", [i])]) for o, s, i in identifiers]),
        "fetch_customer_balance.sql": (FETCH_CUSTOMER_BALANCE, lean),
        "simplest (common case only)": (SIMPLEST, simplest),
    }
    costs: dict[str, list[Cost]] = {name: [] for name in contenders}
    for round_number in range(rounds):
        order = list(contenders) if round_number % 2 == 0 else list(reversed(contenders))
        for name in order:
            costs[name].append(await _time(url, *contenders[name], runs))
    shown = [
        f"-- one customer lookup, one identifier, default program: {len(identifiers)} identifiers, "
        f"{runs:,} executions x {rounds} rounds (medians over rounds)",
        f"-- the simplest statement answered {len(identifiers) - differ} of the {len(identifiers)} identifiers as "
        "fetch_customer_balance.sql does (entity, program, points)",
        f"{'statement':28}  {'round trip µs':>13}  {'backend CPU µs':>14}  plans (generic/custom)",
    ]
    for name, measured in costs.items():
        round_trip = statistics.median(c.round_trip_us for c in measured)
        cpu = statistics.median(c.backend_cpu_us for c in measured)
        plans = ", ".join(f"{c.generic_plans}/{c.custom_plans}" for c in measured)
        shown.append(f"{name:28}  {round_trip:13.1f}  {cpu:14.1f}  {plans}")
    return "\n".join(shown)


GROUP_SIZES = (1, 2, 4, 8, 16, 32)
FETCH_CUSTOMER_BALANCES = files("gateway.db.sql").joinpath("fetch_customer_balances.sql").read_text(encoding="utf-8")


def group_arguments(org_id: int, lookups: Sequence[tuple[str, SentIdentifier]]) -> list[object]:
    """fetch_customer_balances.sql's arguments for customer lookups (source, identifier) in the default program,
    no account, as the gateway builds them."""
    count = len(lookups)
    return [
        org_id, [source for source, _ in lookups], [""] * count, [None] * count, [False] * count,
        [identifier[0] for _, identifier in lookups], [identifier[1] for _, identifier in lookups],
        [identifier[2] for _, identifier in lookups], None,
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class LookupCost:
    round_trip_us: float  # median, per lookup
    client_cpu_us: float  # this process's, per lookup
    backend_cpu_us: float  # per lookup


async def _time_per_lookup(
    url: str, statement: str, groups: Sequence[Sequence[object]], size: int, runs: int
) -> LookupCost:
    """What one lookup costs when `statement` answers `size` lookups at a time (`runs` lookups in all)."""
    connection = await asyncpg.connect(url, server_settings={"jit": "off", "plan_cache_mode": "force_generic_plan"})
    try:
        backend = psutil.Process(await connection.fetchval("SELECT pg_backend_pid()"))
        prepared = await connection.prepare(statement)
        for args in groups[:100]:
            await prepared.fetch(*args)
        timings = []
        statements = max(1, runs // size)
        before, client_before = backend.cpu_times(), time.process_time()
        for i in range(statements):
            started = time.perf_counter()
            await prepared.fetch(*groups[i % len(groups)])
            timings.append(1e6 * (time.perf_counter() - started) / size)
        client = time.process_time() - client_before
        after = backend.cpu_times()
        cpu = (after.user + after.system) - (before.user + before.system)
        lookups = statements * size
        return LookupCost(statistics.median(timings), 1e6 * client / lookups, 1e6 * cpu / lookups)
    finally:
        await connection.close()


async def groups(url: str, runs: int, rounds: int) -> str:
    sampled = await _sampled(url, 20000)
    # The org with the most identifiers sampled: a group's lookups are one org's.
    org_id = Counter(r["org_id"] for r in sampled).most_common(1)[0][0]
    rows = [r for r in sampled if r["org_id"] == org_id]
    if len(rows) < 100:
        raise SystemExit("not enough identifiers: is the database loaded?")
    identifiers = [(r["source"], (r["type"], r["value"], None)) for r in rows]
    single = [customer_balance_arguments(org_id, source, "", identifier) for source, identifier in identifiers]
    contenders: dict[str, tuple[str, list[list[object]], int]] = {
        "fetch_customer_balance.sql": (FETCH_CUSTOMER_BALANCE, single, 1)
    }
    for size in GROUP_SIZES:
        chunks = [identifiers[start : start + size] for start in range(0, len(identifiers) - size + 1, size)]
        arguments = [group_arguments(org_id, chunk) for chunk in chunks]
        contenders[f"fetch_customer_balances.sql, {size}"] = (FETCH_CUSTOMER_BALANCES, arguments, size)
    costs: dict[str, list[LookupCost]] = {name: [] for name in contenders}
    for round_number in range(rounds):
        order = list(contenders) if round_number % 2 == 0 else list(reversed(contenders))
        for name in order:
            statement, arguments, size = contenders[name]
            costs[name].append(await _time_per_lookup(url, statement, arguments, size, runs))
    shown = [
        f"-- customer lookups of org {org_id}, one identifier each, default program: {runs:,} lookups per round x "
        f"{rounds} rounds (medians over rounds); per lookup",
        f"{'statement, lookups in it':36}  {'round trip µs':>13}  {'client CPU µs':>13}  {'backend CPU µs':>14}",
    ]
    for name, measured in costs.items():
        round_trip = statistics.median(c.round_trip_us for c in measured)
        client = statistics.median(c.client_cpu_us for c in measured)
        cpu = statistics.median(c.backend_cpu_us for c in measured)
        shown.append(f"{name:36}  {round_trip:13.1f}  {client:13.0f}  {cpu:14.1f}")
    return "\n".join(shown)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000, help="which bench database (default 1000000)")
    parser.add_argument("--lookups", type=int, default=1, help="lookups in the batch (default 1)")
    parser.add_argument("--general", action="store_true", help="explain fetch_balances.sql even for one lookup")
    parser.add_argument("--compare", action="store_true", help="time both statements for one lookup instead")
    parser.add_argument("--groups", action="store_true", help="time the statement of lookups waiting together")
    parser.add_argument("--runs", type=int, default=5000, help="--compare, --groups: per round (default 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="--compare, --groups: rounds (default 3)")
    parser.add_argument("--database-url", help="use this database instead")
    args = parser.parse_args(argv)
    install_signal_handlers()
    with ExitStack() as stack:
        url = args.database_url
        if url is None:
            if not (WORK_DIR / f"pg-{args.customers}" / "pgdata").exists():
                print(f"no bench database for {args.customers} customers: run bench/run.py first", file=sys.stderr)
                return 1
            url = stack.enter_context(embedded_postgres(f"pg-{args.customers}", fresh=False)).url
        if args.compare:
            print(asyncio.run(compare(url, args.runs, args.rounds)))
        elif args.groups:
            print(asyncio.run(groups(url, args.runs, args.rounds)))
        else:
            print(asyncio.run(explain(url, args.lookups, args.general)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
