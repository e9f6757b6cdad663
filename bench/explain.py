"""EXPLAIN (ANALYZE, BUFFERS) of the gateway's lookup statement (gateway/db/sql/fetch_balances.sql).

    python bench/explain.py [--customers 1000000] [--lookups 1] [--database-url URL]

Without --database-url it starts the bench's database for that size (bench/.work/pg-N, loaded by an
earlier `python bench/run.py --customers N`) and stops it afterwards. It picks real identifiers, runs
the statement a few times to warm the caches, then prints the plan twice: as planned for these
parameter values (custom plan) and as the generic plan a prepared statement settles on after five
executions (forced with plan_cache_mode = force_generic_plan), which is what the gateway runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from contextlib import ExitStack

import asyncpg

from database import WORK_DIR, embedded_postgres, install_signal_handlers
from floor import FETCH_BALANCES, fetch_arguments

_PICK = """
SELECT i.org_id, i.source, i.type, i.value
FROM customer_identifiers i
JOIN orgs o ON o.org_id = i.org_id
WHERE i.account_id = '' AND (NOT o.dual_eligibility OR i.type = o.primary_identifier)
  AND i.org_id = (SELECT min(org_id) FROM orgs WHERE NOT dual_eligibility)
ORDER BY i.customer_id DESC
LIMIT $1
"""


async def explain(url: str, lookups: int) -> str:
    connection = await asyncpg.connect(url, server_settings={"jit": "off"})
    try:
        rows = await connection.fetch(_PICK, lookups)
        if len(rows) < lookups:
            raise SystemExit("not enough identifiers: is the database loaded?")
        args = fetch_arguments(rows[0]["org_id"], [(r["source"], "", [(r["type"], r["value"], None)]) for r in rows])
        shown = [f"-- {lookups} lookup(s), org {args[0]}: " + ", ".join(f"{r['type']} {r['value']}" for r in rows)]
        for _ in range(5):
            await connection.fetch(FETCH_BALANCES, *args)
        for mode in ("force_custom_plan", "force_generic_plan"):
            await connection.execute(f"SET plan_cache_mode = {mode}")
            plan = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + FETCH_BALANCES, *args)
            shown += ["", f"-- plan_cache_mode = {mode}", *(row[0] for row in plan)]
        return "\n".join(shown)
    finally:
        await connection.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000, help="which bench database (default 1000000)")
    parser.add_argument("--lookups", type=int, default=1, help="lookups in the batch (default 1)")
    parser.add_argument("--database-url", help="explain on this database instead")
    args = parser.parse_args(argv)
    install_signal_handlers()
    with ExitStack() as stack:
        url = args.database_url
        if url is None:
            if not (WORK_DIR / f"pg-{args.customers}" / "pgdata").exists():
                print(f"no bench database for {args.customers} customers: run bench/run.py first", file=sys.stderr)
                return 1
            url = stack.enter_context(embedded_postgres(f"pg-{args.customers}", fresh=False)).url
        print(asyncio.run(explain(url, args.lookups)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
