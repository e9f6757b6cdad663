"""What the operations layer costs per request: metrics, the request log line, the DB-time hook.

    python bench/observability_overhead.py [--requests 2000] [--rounds 5]

Runs the real app in process (httpx ASGITransport, one lookup per request, sequentially) in three
variants, interleaved round by round: "bare" (the GraphQL endpoint without the observing wrapper),
"quiet" (wrapper, metrics off, request log below its level) and "full" (the defaults: metrics on,
one JSON log line per request, written to a file). Then times the wrapper's own work in a tight loop,
without HTTP. Prints medians in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
import timeit
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from gateway.app import create_app
from gateway.config import Settings
from gateway.db.api_keys import insert_api_key
from gateway.db.migrations import migrate
from gateway.domain.api_keys import generate_key
from gateway.observability.logs import configure_logging
from gateway.observability.requests import ObservedEndpoint, RequestObserver

from database import embedded_postgres

QUERY = """
query Balance($id: String!) {
  pointsBalance(identifiers: [{type: ID, value: $id}], source: INSTORE) { entityId mainPoints totalPoints }
}
"""


async def seed(url: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        await migrate(connection)
        await connection.execute("INSERT INTO orgs (org_id, name, dual_eligibility) VALUES (1, 'Org', false)")
        await connection.execute("INSERT INTO programs (org_id, program_id, name, is_default) VALUES (1, 1, 'P', true)")
        await connection.execute("INSERT INTO customers (org_id, customer_id) VALUES (1, 42)")
        await connection.execute(
            "INSERT INTO balances (org_id, entity_type, entity_id, program_id, main_points,"
            " delayed_accrual_points, external_trigger_points) VALUES (1, 'CUSTOMER', 42, 1, 10, 0, 0)"
        )
        key = generate_key()
        await insert_api_key(connection, 1, key.prefix, key.key_hash, "bench")
        return key.key
    finally:
        await connection.close()


async def per_request_us(settings: Settings, key: str, requests: int, *, bare: bool) -> float:
    app = create_app(settings)
    if bare:
        assert isinstance(app.graphql, ObservedEndpoint)
        app.graphql = app.graphql.app
    body = {"query": QUERY, "variables": {"id": "42"}}
    headers = {"authorization": f"Bearer {key}"}
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(200):
                assert (await client.post("/graphql", json=body, headers=headers)).status_code == 200
            started = time.perf_counter()
            for _ in range(requests):
                await client.post("/graphql", json=body, headers=headers)
            return (time.perf_counter() - started) / requests * 1e6


def wrapper_us(log_file: Path) -> dict[str, float]:
    """The observer's begin + end (and a DB-time note) per request, without HTTP."""
    results = {}
    for name, metrics, level in (("quiet", False, "warning"), ("full", True, "info")):
        configure_logging(level, "json", log_file.open("a"))
        observer = RequestObserver(metrics_enabled=metrics)
        on_query = observer.query_hook()

        def one() -> None:
            record = observer.begin()  # noqa: B023
            on_query(0.0004)  # noqa: B023
            record.status = 200
            record.operation = "Balance"
            record.org_id = 1
            observer.end(record)  # noqa: B023

        runs = timeit.repeat(one, number=20_000, repeat=5)
        results[name] = min(runs) / 20_000 * 1e6
    return results


async def measure(url: str, requests: int, rounds: int) -> None:
    key = await seed(url)
    log_file = Path(tempfile.mkdtemp(prefix="lgw-overhead-")) / "requests.log"
    variants = {
        "bare": (Settings(database_url=url, metrics="off", rate_limit=0.0), True, "warning"),
        "quiet": (Settings(database_url=url, metrics="off", rate_limit=0.0), False, "warning"),
        "full": (Settings(database_url=url, rate_limit=0.0), False, "info"),
    }
    # httpx logs each request it sends at info: that is the bench client talking, not the gateway.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (settings, bare, level) in variants.items():
            configure_logging(level, "json", log_file.open("a"))
            timings[name].append(await per_request_us(settings, key, requests, bare=bare))
    logging.getLogger().setLevel("WARNING")
    medians = {name: statistics.median(values) for name, values in timings.items()}
    best = {name: min(values) for name, values in timings.items()}
    print(f"{requests} sequential requests x {rounds} rounds, µs per request (ASGITransport, in process):")
    print("         median  (over bare)     best  (over bare)")
    for name in variants:
        print(
            f"  {name:6} {medians[name]:7.1f}  ({medians[name] - medians['bare']:+6.1f})  "
            f"{best[name]:7.1f}  ({best[name] - best['bare']:+6.1f})"
        )
    print("the wrapper's own work per request (tight loop, best of 5):")
    for name, value in wrapper_us(log_file).items():
        print(f"  {name:6} {value:8.2f}")
    print(f"request log lines written: {sum(1 for _ in log_file.open())}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with embedded_postgres("overhead", fresh=True) as postgres:
        asyncio.run(measure(postgres.url, args.requests, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
