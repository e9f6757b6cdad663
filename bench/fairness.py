"""Fairness between tenants: one org's steady single lookups while another org floods the gateway.

Run as `python bench/run.py --fairness [--customers 1000000] [--baseline-ref REF] [--duration 15] [--rounds 1]`.

Two orgs of the bench's data, each with its own API key, on a gateway in production mode (one worker, the
default pool of 4), once with the default per-key rate limit and once with a rate limit far above the load:

- org B (the light tenant) sends single lookups open-loop at a steady rate (80/s), each timed from the moment
  it was due, so that a stalled server cannot hide its delay by slowing the sender down;
- org A (the heavy tenant) floods with documents of 50 aliased lookups from wrk at concurrency 64, a closed loop
  that sends again as soon as it is answered, whatever the answer (it does not wait out Retry-After).

B is measured alone, then while A floods (after a warm-up of the flood). Reported per gateway: B's answered
lookups/s, p50 and p99, alone and under the flood, and their ratios; A's answers by status. With
`--baseline-ref REF` the gateway at REF is measured the same way in the same run, before the current one.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import orjson

from checkout import GatewaySource, code_state_lines, current_gateway, gateway_at
from database import WORK_DIR, Postgres, embedded_postgres
from dataset import Dataset, Request, Sample, gateway_body, prepare, write_requests
from report import opening_sections, write_markdown
from servers import Running, free_port, gateway, headers, running
from wrk import require_wrk, wait_for_quiet, wrk_command, wrk_figures

FLOOD_LOOKUPS = 50
FLOOD_CONCURRENCY = 64
STEADY_RATE = 80.0
POOL_SIZE = 4  # the gateway's default
FIELDS = "entityId mainPoints promisedPoints totalPoints"


@dataclass(frozen=True, slots=True)
class Steady:
    """B's requests over one period: what came back and how long after it was due."""

    seconds: float
    sent: int
    statuses: Counter[int]
    latencies_ms: list[float]  # of the answered ones (200, the right customer)
    wrong: int  # 200 answers for the wrong customer, or with errors

    @property
    def answered_per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclass(frozen=True, slots=True)
class Flood:
    seconds: float
    statuses: dict[int, int]  # 200, 429, 503, 0 for any other
    p99_ms: float
    errors: str  # socket errors and timeouts, in words

    @property
    def requests_per_second(self) -> float:
        return sum(self.statuses.values()) / self.seconds


@dataclass(slots=True)
class Measured:
    name: str
    alone: list[Steady] = field(default_factory=list)
    flooded: list[tuple[Steady, Flood]] = field(default_factory=list)


def flood_document(lookups: int) -> str:
    variables = ", ".join(f"$ids{n}: [IdentifierInput!]!, $source{n}: Source!" for n in range(lookups))
    fields = " ".join(
        f"b{n}: pointsBalance(identifiers: $ids{n}, source: $source{n}) {{ {FIELDS} }}" for n in range(lookups)
    )
    return f"query Flood({variables}) {{ {fields} }}"


def flood_requests(samples: Sequence[Sample], key: str, count: int = 100) -> list[Request]:
    """`count` documents of FLOOD_LOOKUPS lookups each, over A's identifiers in turn."""
    document = flood_document(FLOOD_LOOKUPS)
    out = []
    for number in range(count):
        variables: dict[str, object] = {}
        for n in range(FLOOD_LOOKUPS):
            sample = samples[(number * FLOOD_LOOKUPS + n) % len(samples)]
            variables[f"ids{n}"] = [{"type": sample.type, "value": sample.value}]
            variables[f"source{n}"] = sample.source
        body = orjson.dumps({"query": document, "variables": variables, "operationName": "Flood"})
        out.append(Request(key, body, samples[number * FLOOD_LOOKUPS % len(samples)].customer_id))
    return out


def two_orgs(dataset: Dataset) -> tuple[int, int]:
    """(A, B): the two orgs with the most sampled identifiers."""
    counts = Counter(sample.org_id for sample in dataset.samples)
    (heavy, _), (light, _) = counts.most_common(2)
    return heavy, light


async def steady(url: str, requests: Sequence[Request], rate: float, seconds: float) -> Steady:
    """Send requests at `rate` per second for `seconds`, whatever the answers; time each from when it was due."""
    loop = asyncio.get_running_loop()
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    wrong = 0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def one(request: Request, due: float) -> None:
            nonlocal wrong
            try:
                answer = await client.post(url, content=request.body, headers=headers(request))
            except httpx.HTTPError:
                statuses[0] += 1
                return
            statuses[answer.status_code] += 1
            if answer.status_code != 200:
                return
            payload = orjson.loads(answer.content)
            balance = (payload.get("data") or {}).get("pointsBalance") or {}
            if payload.get("errors") or balance.get("entityId") != str(request.customer_id):
                wrong += 1
                return
            latencies.append(1000 * (loop.time() - due))

        start = loop.time() + 0.05
        count = int(rate * seconds)
        tasks = []
        for n in range(count):
            due = start + n / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(requests[n % len(requests)], due)))
        await asyncio.gather(*tasks)
    return Steady(seconds, count, statuses, latencies, wrong)


def check_flood(server: Running, request: Request, samples: Sequence[Sample]) -> None:
    """One flood document answered whole, each alias for the right customer."""
    answer = httpx.post(server.url, content=request.body, headers=headers(request), timeout=30)
    payload = orjson.loads(answer.content)
    data = payload.get("data") or {}
    expected = [str(samples[n % len(samples)].customer_id) for n in range(FLOOD_LOOKUPS)]
    found = [(data.get(f"b{n}") or {}).get("entityId") for n in range(FLOOD_LOOKUPS)]
    if answer.status_code != 200 or payload.get("errors") or found != expected:
        raise RuntimeError(f"{server.contender.name}: a flood document was answered wrongly:\n{answer.text[:1000]}")


def measure_gateway(
    postgres: Postgres,
    name: str,
    source: GatewaySource | None,
    light: Sequence[Request],
    heavy: Sequence[Request],
    heavy_samples: Sequence[Sample],
    args: argparse.Namespace,
    result: Measured,
    *,
    limited: bool,
) -> None:
    directory = WORK_DIR / "requests" / "fairness"
    flood_file = write_requests(list(heavy), directory / "flood.tsv")
    contender = gateway(
        postgres, workers=1, pool_size=POOL_SIZE, port=free_port(), source=source, extra=("--env", "production"),
        name=name, default_rate_limits=limited,
    )  # fmt: skip
    with running(contender, light[0]) as server:
        check_flood(server, heavy[0], heavy_samples)
        # The rate limits start full: wait until the check's cost has been restored.
        time.sleep(1)
        wait_for_quiet(args.quiet_wait)
        print(f"  {name}: B alone ...", flush=True)
        alone = asyncio.run(steady(server.url, light, STEADY_RATE, args.duration))
        result.alone.append(alone)
        print(f"    {steady_line(alone)}", flush=True)
        wait_for_quiet(args.quiet_wait)
        print(f"  {name}: B while A floods ...", flush=True)
        command = wrk_command(
            server.url, flood_file, concurrency=FLOOD_CONCURRENCY, duration=args.warmup + args.duration + 1,
            count_statuses=True,
        )  # fmt: skip
        wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(args.warmup)
            flooded = asyncio.run(steady(server.url, light, STEADY_RATE, args.duration))
            stdout, stderr = wrk.communicate(timeout=args.warmup + args.duration + 60)
        except BaseException:
            wrk.kill()
            wrk.wait()
            raise
        if wrk.returncode != 0:
            raise RuntimeError(f"wrk failed ({wrk.returncode}): {stderr.decode()}{stdout.decode()}")
        figures = wrk_figures(stdout.decode())
        flood = Flood(
            figures["duration_us"] / 1e6,
            {status: figures[f"status_{status}"] for status in (200, 429, 503)} | {0: figures["status_other"]},
            figures["p99_us"] / 1000,
            ", ".join(
                f"{figures[kind]} {kind.replace('_', ' ')}"
                for kind in ("connect_errors", "read_errors", "write_errors", "timeouts")
                if figures[kind]
            ),
        )
        result.flooded.append((flooded, flood))
        print(f"    {steady_line(flooded)}", flush=True)
        print(f"    A: {flood_line(flood)}", flush=True)
    if alone.wrong or flooded.wrong:
        raise RuntimeError(f"{name}: {alone.wrong + flooded.wrong} of B's answers were wrong")


def steady_line(run: Steady) -> str:
    others = {status: n for status, n in sorted(run.statuses.items()) if status != 200}
    return (
        f"B: {run.answered_per_second:.1f} answered/s of {run.sent / run.seconds:.0f} sent/s, "
        f"p50 {run.percentile(50):.1f} ms, p99 {run.percentile(99):.1f} ms"
        + (f", not answered: {others}" if others else "")
    )


def flood_line(flood: Flood) -> str:
    per_second = {status: n / flood.seconds for status, n in flood.statuses.items() if n}
    parts = ", ".join(f"{'other' if status == 0 else status} {rate:,.0f}/s" for status, rate in per_second.items())
    return (
        f"{flood.requests_per_second:,.0f} req/s ({parts}), {per_second.get(200, 0) * FLOOD_LOOKUPS:,.0f} lookups/s "
        f"answered, p99 {flood.p99_ms:,.0f} ms" + (f"; {flood.errors}" if flood.errors else "")
    )


def _median_run(runs: Sequence[Steady]) -> Steady:
    """The run with the median p99."""
    return sorted(runs, key=lambda run: run.percentile(99))[len(runs) // 2]


def results_table(measured: Sequence[Measured]) -> list[str]:
    lines = [
        "| gateway | B alone: answered/s | p50 ms | p99 ms | B under A's flood: answered/s | ÷ alone | p50 ms "
        "| p99 ms | ÷ alone | B not answered | A req/s | A 200/s | A 429/s | A 503/s | A lookups answered/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for entry in measured:
        alone = _median_run(entry.alone)
        flooded, flood = sorted(entry.flooded, key=lambda pair: pair[0].percentile(99))[len(entry.flooded) // 2]
        rate = {status: n / flood.seconds for status, n in flood.statuses.items()}
        missing = {status: n for status, n in sorted(flooded.statuses.items()) if status != 200}
        lines.append(
            f"| {entry.name} | {alone.answered_per_second:.1f} | {alone.percentile(50):.1f} "
            f"| {alone.percentile(99):.1f} | {flooded.answered_per_second:.1f} "
            f"| {flooded.answered_per_second / alone.answered_per_second:.2f} | {flooded.percentile(50):.1f} "
            f"| {flooded.percentile(99):.1f} | {flooded.percentile(99) / alone.percentile(99):.1f} "
            f"| {missing or '—'} | {flood.requests_per_second:,.0f} | {rate.get(200, 0):,.1f} "
            f"| {rate.get(429, 0):,.0f} | {rate.get(503, 0):,.0f} | {rate.get(200, 0) * FLOOD_LOOKUPS:,.0f} |"
        )
    return lines


def verdict_lines(measured: Sequence[Measured]) -> list[str]:
    lines = []
    for entry in measured:
        alone = _median_run(entry.alone)
        flooded, _ = sorted(entry.flooded, key=lambda pair: pair[0].percentile(99))[len(entry.flooded) // 2]
        share = flooded.answered_per_second / alone.answered_per_second
        allowed = max(3 * alone.percentile(99), alone.percentile(99) + 50)
        ok = share >= 0.9 and flooded.percentile(99) <= allowed
        lines.append(
            f"- {entry.name}: B keeps {share:.0%} of its throughput (at least 90 % asked) and its p99 is "
            f"{flooded.percentile(99):.1f} ms against {allowed:.1f} ms allowed (3x alone, or alone + 50 ms): "
            + ("**fair**" if ok else "**not fair**")
        )
    return lines


def run_fairness(args: argparse.Namespace, command_line: str) -> int:
    require_wrk()
    stamp = datetime.now()
    current = current_gateway()
    rounds = args.rounds or 1
    with embedded_postgres(f"pg-{args.customers}", fresh=not args.reuse) as postgres:
        dataset = prepare(postgres, args.customers, samples=args.samples, reuse=args.reuse)
        heavy_org, light_org = two_orgs(dataset)
        light_samples = [s for s in dataset.samples if s.org_id == light_org]
        heavy_samples = [s for s in dataset.samples if s.org_id == heavy_org]
        light = [Request(dataset.keys[light_org], gateway_body(s), s.customer_id) for s in light_samples]
        heavy = flood_requests(heavy_samples, dataset.keys[heavy_org])
        contenders: list[tuple[str, GatewaySource | None, bool]] = []
        with gateway_at(args.baseline_ref) if args.baseline_ref else nullcontext() as baseline:
            for limited in (True, False):
                scenario = "default rate limit" if limited else "no rate limit"
                if baseline is not None:
                    contenders.append((f"gateway@{baseline.ref}, {scenario}", baseline, limited))
                contenders.append((f"gateway, {scenario}", None, limited))
            measured = [Measured(name) for name, _, _ in contenders]
            for round_number in range(1, rounds + 1):
                print(f"round {round_number}", flush=True)
                for (name, source, limited), result in zip(contenders, measured, strict=True):
                    measure_gateway(postgres, name, source, light, heavy, heavy_samples, args, result, limited=limited)
        version = postgres.version()
    table = results_table(measured)
    verdict = verdict_lines(measured)
    print("\n".join(["", *table, "", *verdict]))
    setup = [
        f"- {args.customers:,} customers; org A ({heavy_org}) and org B ({light_org}), the two orgs with the most "
        f"sampled identifiers ({len(heavy_samples):,} and {len(light_samples):,}), each with an API key of its own",
        f'- each gateway: `serve --env production`, 1 worker, pool {POOL_SIZE}; "default rate limit": the '
        'default per-key rate limit; "no rate limit": a per-key rate limit far above the load, so that every '
        "request of A is admitted and only the gateway's sharing stands between A and B",
        f"- B: single lookups of its own customers, open loop at {STEADY_RATE:.0f}/s for {args.duration:.0f} s, each "
        "timed from when it was due; every answer checked (the right customer)",
        f"- A: wrk, concurrency {FLOOD_CONCURRENCY}, documents of {FLOOD_LOOKUPS} aliased lookups "
        f"(`{FIELDS}`), closed loop whatever the answer; B starts after {args.warmup:.0f} s of flood",
        f"- {rounds} round(s), gateways in the order listed; with several rounds the table shows the round with the "
        "median p99 under flood",
        *code_state_lines(current),
    ]
    sections = [
        *opening_sections(command_line, version, setup),
        ("Results", table),
        ("Fair?", verdict),
    ]
    path = write_markdown(f"Fairness {stamp:%Y-%m-%d %H:%M}, {args.customers:,} customers", sections, stamp, "fairness")
    print(f"\nwritten to {path}")
    return 0
