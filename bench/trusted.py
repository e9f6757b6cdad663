"""Trusted documents: what a refused untrusted document costs the gateway, against a cached valid one.

Run as `python bench/run.py --trusted [--customers 100000] [--trusted-concurrency 32] [--rounds 3] [--reuse]`.
The bench's lookup document is registered with `loyalty-gateway documents register` (a Relay-style
manifest, `{"<id>": "<document>"}`), then three cases are driven with wrk, each on a gateway of its own
(1 worker, production mode), in an order that rotates from round to round:

- (a) `serve --trusted-documents-only`, the registered lookup document, sent whole: cached, valid, answered;
- (b) the same server, a document never registered, of about the same size: the lookup with an alias that
  wrk makes new for every request, so no cache can hold it; refused with 403 DOCUMENT_NOT_TRUSTED before
  it is parsed;
- (c) `serve` without --trusted-documents-only, the same fresh documents: each parsed, validated, planned
  and answered.

Reported per case: requests/s, the gateway's CPU per request (its process tree) and that CPU ÷ case (a)'s.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from checkout import code_state_lines, current_gateway
from database import WORK_DIR, Postgres, embedded_postgres
from dataset import GATEWAY_QUERY, Dataset, Request, gateway_command, gateway_requests, prepare, write_requests
from measure import Workload, measure_levels, timing_from
from report import Row, opening_sections, quietest_row, write_markdown
from servers import Running, check_answers, free_port, gateway, headers
from wrk import FRESH_PLACEHOLDER, QUIET_TOLERANCE, LoadResult, require_wrk

DOCUMENT_ID = "bench-balance"
# The lookup under an alias: wrk replaces the placeholder by a name of its own in every request.
FRESH_QUERY = GATEWAY_QUERY.replace("pointsBalance(", f"{FRESH_PLACEHOLDER}: pointsBalance(", 1)
# Fresh requests whose answers are checked before each load (the load itself checks the status of every answer).
CHECKED = 200
PRODUCTION = ("--env", "production")


@dataclass(frozen=True, slots=True)
class Case:
    key: str  # a, b, c
    label: str
    trusted_only: bool
    workload: Workload
    check: Callable[[Running], Any]


def register_lookup_document(postgres: Postgres, directory: Path) -> str:
    """`loyalty-gateway documents register` with a Relay-style manifest holding the bench's lookup document."""
    manifest = directory / "persisted_queries.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_bytes(orjson.dumps({DOCUMENT_ID: GATEWAY_QUERY}))
    command = gateway_command("documents", "register", str(manifest), "--database-url", postgres.url)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"documents register failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def fresh_requests(dataset: Dataset) -> list[Request]:
    out = []
    for sample in dataset.samples:
        variables = {"ids": [{"type": sample.type, "value": sample.value}], "source": sample.source}
        body = orjson.dumps({"query": FRESH_QUERY, "variables": variables, "operationName": "Balance"})
        out.append(Request(dataset.keys[sample.org_id], body, sample.customer_id))
    return out


def check_fresh(server: Running, requests: Sequence[Request], *, refused: bool) -> None:
    """Send some of the fresh requests, each with a name of its own as wrk does: refused ones must all be 403
    DOCUMENT_NOT_TRUSTED, the others answered for the right customer under their alias."""
    asyncio.run(_check_fresh(server, requests[:CHECKED], refused))


async def _check_fresh(server: Running, requests: Sequence[Request], refused: bool) -> None:
    prefix = secrets.token_hex(3)
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(number: int, request: Request) -> None:
            alias = f"F{prefix}{number:010d}"
            body = request.body.replace(FRESH_PLACEHOLDER.encode(), alias.encode())
            async with limit:
                answer = await client.post(server.url, content=body, headers=headers(request))
            payload = orjson.loads(answer.content)
            if refused:
                codes = [(error.get("extensions") or {}).get("code") for error in payload.get("errors") or []]
                ok = answer.status_code == 403 and codes == ["DOCUMENT_NOT_TRUSTED"] and "data" not in payload
            else:
                balance = (payload.get("data") or {}).get(alias) or {}
                ok = answer.status_code == 200 and not payload.get("errors")
                ok = ok and balance.get("entityId") == str(request.customer_id)
            if not ok:
                raise RuntimeError(f"{server.contender.name}: unexpected answer to a fresh document:\n{answer.text}")

        await asyncio.gather(*(one(number, request) for number, request in enumerate(requests, start=1)))


def cases(dataset: Dataset, directory: Path) -> list[Case]:
    registered = gateway_requests(dataset)
    fresh = fresh_requests(dataset)
    registered_load = Workload(registered, write_requests(registered, directory / "registered.tsv"), expect_status=200)
    fresh_file = write_requests(fresh, directory / "fresh.tsv")
    # The probe that says a server is ready must be answered by both kinds of server: the registered lookup.
    refused_load = Workload(fresh, fresh_file, probe=registered[0], expect_status=403, fresh=True)
    validated_load = Workload(fresh, fresh_file, probe=registered[0], expect_status=200, fresh=True)
    return [
        Case(
            "a",
            "trusted-only, the registered document: cached, answered",
            True,
            registered_load,
            lambda server: check_answers(server, registered),
        ),
        Case(
            "b",
            "trusted-only, a fresh document per request: refused (403) unparsed",
            True,
            refused_load,
            lambda server: check_fresh(server, fresh, refused=True),
        ),
        Case(
            "c",
            "no trusted-only, a fresh document per request: parsed, validated, answered",
            False,
            validated_load,
            lambda server: check_fresh(server, fresh, refused=False),
        ),
    ]


def run_trusted(args: argparse.Namespace, command_line: str) -> int:
    require_wrk()
    stamp = datetime.now()
    pool_size = args.pool_size or 2
    levels = args.trusted_concurrency
    rounds = args.rounds or 1
    directory = WORK_DIR / "requests" / f"trusted-c{args.customers}"
    measured: dict[tuple[int, str], list[tuple[LoadResult, int]]] = {}
    current = current_gateway()
    with embedded_postgres(f"pg-{args.customers}", fresh=not args.reuse) as postgres:
        dataset = prepare(postgres, args.customers, samples=args.samples, reuse=args.reuse)
        registration = register_lookup_document(postgres, directory)
        print(f"  {registration}", flush=True)
        all_cases = cases(dataset, directory)
        for round_number in range(1, rounds + 1):
            shift = (round_number - 1) % len(all_cases)
            order = all_cases[shift:] + all_cases[:shift]
            for position, case in enumerate(order, start=1):
                extra = ("--trusted-documents-only", *PRODUCTION) if case.trusted_only else PRODUCTION
                contender = gateway(
                    postgres, workers=1, pool_size=pool_size, port=free_port(), extra=extra, name=f"({case.key})"
                )
                print(f"round {round_number}: ({case.key}) {case.label} ...", flush=True)
                results, _ = measure_levels(
                    postgres, contender, case.workload, concurrencies=levels, timing=timing_from(args), check=case.check
                )
                for result in results:
                    print(
                        f"  c={result.concurrency}: {result.rps:,.0f} req/s, server CPU "
                        f"{result.server_ms_per_request:.3f} ms/req, PostgreSQL {result.postgres_ms_per_request:.3f} "
                        f"ms/req, other CPU {result.other_cpu:.1f} s",
                        flush=True,
                    )
                    measured.setdefault((result.concurrency, case.key), []).append((result, position))
        version = postgres.version()
    code_lines = code_state_lines(current)
    rows = {key: quietest_row(key[1], runs) for key, runs in measured.items()}
    table = trusted_table(rows, all_cases, levels)
    verdict = verdict_lines(rows, levels)
    print("\n".join([*table, "", *verdict]))
    sizes = {case.key: _mean_body(case.workload.requests) for case in all_cases}
    setup = [
        f"- {args.customers:,} customers; the gateway, 1 worker, pool {pool_size}, `--env production`, per-key rate "
        f"limit far above the load; wrk c = {', '.join(map(str, levels))}, {args.duration:.0f} s after "
        f"{args.warmup:.0f} s of warm-up; each case on a gateway started for it; "
        + (
            f"of {rounds} rounds (rotating order), the quietest (the least other CPU; the fastest of those within "
            f"{QUIET_TOLERANCE} s of it)"
            if rounds > 1
            else "one round"
        ),
        f"- registered with `loyalty-gateway documents register` (a Relay-style manifest, id `{DOCUMENT_ID}`): "
        f"{registration}",
        f"- (a) sends the registered document whole, as the other benches do: `{GATEWAY_QUERY}` "
        f"(request body {sizes['a']:.0f} bytes on average)",
        f"- (b) and (c) send the same lookup under an alias new in every request (wrk.lua's fresh=): "
        f"`{FRESH_QUERY}` with {FRESH_PLACEHOLDER} replaced by `F`, six characters of the wrk run and a 10-digit "
        f"counter (request body {sizes['b']:.0f} bytes on average); no cache can hold them",
        "- before each load every registered lookup is checked (the right customer), and "
        f"{CHECKED} fresh documents: (b) 403 DOCUMENT_NOT_TRUSTED with no `data`, (c) the right customer under "
        "the alias; under load every answer must have the expected status (200, 403, 200) or the run fails",
        *code_lines,
        "- server CPU: the gateway's process tree over the measured run; its requests include authentication "
        "(each carries its org's API key) and the rate limit, which come before the document check",
    ]
    sections = [
        *opening_sections(command_line, version, setup),
        ("Results", table),
        ("What a refused document costs", verdict),
    ]
    path = write_markdown(
        f"Trusted documents {stamp:%Y-%m-%d %H:%M}, {args.customers:,} customers", sections, stamp, "trusted"
    )
    print(f"\nwritten to {path}")
    return 0


def _mean_body(requests: Sequence[Request]) -> float:
    return sum(len(request.body) for request in requests) / len(requests)


def trusted_table(rows: dict[tuple[int, str], Row], all_cases: Sequence[Case], levels: Sequence[int]) -> list[str]:
    lines = [
        "| c | case | req/s | p50 ms | p99 ms | errors | server CPU ms/req | server CPU ÷ (a) | PG CPU ms/req "
        "| wrk CPU s | other CPU s | order | req/s (other CPU s) per round |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for concurrency in levels:
        base = rows.get((concurrency, "a"))
        for case in all_cases:
            row = rows.get((concurrency, case.key))
            if row is None:
                continue
            r = row.result
            ratio = f"{r.server_ms_per_request / base.result.server_ms_per_request:.2f}" if base else "—"
            lines.append(
                f"| {concurrency} | ({case.key}) {case.label} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
                f"| {r.errors} | {r.server_ms_per_request:.3f} | {ratio} | {r.postgres_ms_per_request:.3f} "
                f"| {r.wrk_cpu:.1f} | {r.other_cpu:.1f} | {', '.join(map(str, row.order))} "
                f"| {', '.join(f'{rps:,.0f} ({other:.1f})' for rps, other in row.rounds)} |"
            )
    return lines


def verdict_lines(rows: dict[tuple[int, str], Row], levels: Sequence[int]) -> list[str]:
    lines = []
    for concurrency in levels:
        found = {key: rows[(concurrency, key)].result for key in "abc" if (concurrency, key) in rows}
        if "a" not in found or "b" not in found:
            continue
        a, b = found["a"].server_ms_per_request, found["b"].server_ms_per_request
        verdict = "less" if b < a else "**not less**"
        lines.append(
            f"- c={concurrency}: server CPU per request, (b) ÷ (a) = {b:.3f} ÷ {a:.3f} = **{b / a:.2f}**: a refused "
            f"untrusted document costs {verdict} CPU than a cached valid one"
        )
        if "c" in found:
            c = found["c"].server_ms_per_request
            lines.append(
                f"- c={concurrency}: the same fresh documents without --trusted-documents-only, (c) ÷ (a) = "
                f"{c:.3f} ÷ {a:.3f} = **{c / a:.2f}**, (c) ÷ (b) = **{c / b:.1f}**: what the refusal spares"
            )
    return lines
