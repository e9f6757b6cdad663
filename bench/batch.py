"""Batching: lookups/s when one request carries 1, 10 or 50 aliased pointsBalance fields (gateway, 1 worker).

Run as `python bench/run.py --batch [--batch-sizes 1,10,50] [--customers N] [--reuse]`. The aliased
lookups of one request go to the database as one statement (DataLoader), so lookups/s should grow
with the batch size far beyond the 1-per-request figure.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import httpx
import orjson

from database import WORK_DIR, embedded_postgres
from dataset import Dataset, Request, Sample, prepare, write_requests
from measure import Workload, measure_levels, timing_from
from report import opening_sections, write_markdown
from servers import Running, free_port, gateway, headers
from wrk import LoadResult, require_wrk

_FIELDS = (
    "entityId mainPoints promisedPoints totalPoints "
    "promisedPointsBreakup { delayedAccrualPoints externalTriggerBasedPoints } "
    "programs { programId programName mainPoints }"
)


def batch_query(size: int) -> str:
    """A document with `size` aliased lookups, each with its own variables."""
    variables = ", ".join(f"$ids{i}: [IdentifierInput!]!, $source{i}: Source!" for i in range(size))
    fields = " ".join(
        f"b{i}: pointsBalance(identifiers: $ids{i}, source: $source{i}) {{ {_FIELDS} }}" for i in range(size)
    )
    return f"query Balances({variables}) {{ {fields} }}"


def batch_requests(dataset: Dataset, size: int) -> list[tuple[Request, tuple[int, ...]]]:
    """Requests of `size` lookups of one org each (one key per request), with the customers they must find."""
    by_org: dict[int, list[Sample]] = defaultdict(list)
    for sample in dataset.samples:
        by_org[sample.org_id].append(sample)
    query = batch_query(size)
    out = []
    for org_id, samples in by_org.items():
        for start in range(0, len(samples) - size + 1, size):
            group = samples[start : start + size]
            variables: dict[str, object] = {}
            for i, sample in enumerate(group):
                variables[f"ids{i}"] = [{"type": sample.type, "value": sample.value}]
                variables[f"source{i}"] = sample.source
            body = orjson.dumps({"query": query, "variables": variables, "operationName": "Balances"})
            customers = tuple(sample.customer_id for sample in group)
            out.append((Request(dataset.keys[org_id], body, customers[0]), customers))
    return out


def check_batch_answers(server: Running, requests: Sequence[tuple[Request, tuple[int, ...]]]) -> None:
    asyncio.run(_check(server, requests))


async def _check(server: Running, requests: Sequence[tuple[Request, tuple[int, ...]]]) -> None:
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(request: Request, customers: tuple[int, ...]) -> None:
            async with limit:
                answer = await client.post(server.url, content=request.body, headers=headers(request))
            payload = orjson.loads(answer.content)
            data = payload.get("data") or {}
            found = tuple(int((data.get(f"b{i}") or {}).get("entityId", 0)) for i in range(len(customers)))
            if answer.status_code != 200 or payload.get("errors") or found != customers:
                raise RuntimeError(f"the gateway answered a batch wrongly:\n{answer.text[:1000]}")

        await asyncio.gather(*(one(request, customers) for request, customers in requests))


def run_batch(args: argparse.Namespace, command_line: str) -> int:
    require_wrk()
    stamp = datetime.now()
    concurrency = args.batch_concurrency
    results: list[tuple[int, LoadResult]] = []
    with embedded_postgres(f"pg-{args.customers}", fresh=not args.reuse) as postgres:
        dataset = prepare(postgres, args.customers, samples=max(args.samples, 50 * 200), reuse=args.reuse)
        pool_size = args.pool_size or 2
        for size in args.batch_sizes:
            pairs = batch_requests(dataset, size)
            requests = [request for request, _ in pairs]
            workload = Workload(requests, write_requests(requests, WORK_DIR / "requests" / f"batch-{size}.tsv"))
            contender = gateway(postgres, workers=1, pool_size=pool_size, port=free_port())
            print(f"{size} lookups per request ({len(requests):,} distinct requests) ...", flush=True)
            (result,), _ = measure_levels(
                postgres,
                contender,
                workload,
                concurrencies=[concurrency],
                timing=timing_from(args),
                check=lambda server, pairs=pairs: check_batch_answers(server, pairs),
            )
            print(f"  {result.rps * size:,.0f} lookups/s, p50 {result.p50_ms:.2f} ms", flush=True)
            results.append((size, result))
        version = postgres.version()
    table = batch_table(results)
    print("\n".join(table))
    setup = [
        f"- {args.customers:,} customers; gateway, 1 worker, pool {pool_size}; wrk c={concurrency}, "
        f"{args.duration:.0f} s after {args.warmup:.0f} s of warm-up",
        "- every request: N aliased `pointsBalance` fields of one org, each with its own identifier variables",
    ]
    sections = [
        *opening_sections(command_line, version, setup),
        ("Lookups per request", table),
    ]
    path = write_markdown(
        f"Batched lookups {stamp:%Y-%m-%d %H:%M}, {args.customers:,} customers", sections, stamp, "batch"
    )
    print(f"\nwritten to {path}")
    return 0


def batch_table(results: Sequence[tuple[int, LoadResult]]) -> list[str]:
    single = next((r.rps for size, r in results if size == 1), None)
    lines = [
        "| lookups/request | requests/s | lookups/s | ÷ 1 per request | p50 ms | p99 ms | server CPU ms/lookup "
        "| PG CPU ms/lookup | other CPU s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, r in results:
        lookups = r.requests * size
        ratio = f"{r.rps * size / single:.1f}" if single else "—"
        lines.append(
            f"| {size} | {r.rps:,.0f} | {r.rps * size:,.0f} | {ratio} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {1000 * r.server_cpu / lookups:.3f} | {1000 * r.postgres_cpu / lookups:.3f} | {r.other_cpu:.1f} |"
        )
    return lines
