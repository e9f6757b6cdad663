"""The bench, in one command: the gateway against a raw floor and PostGraphile, side by side, on one database.

    python bench/run.py [--customers 1000000] [--duration 15] [--concurrency 8,32,64] [--workers 2]
                        [--only gateway,rest,floor,postgraphile] [--pool-size N] [--reuse] [--baseline-ref REF]
    python bench/run.py --batch [--batch-sizes 1,10,50]   aliased lookups per request, gateway only
    python bench/run.py --scale [--scale-sizes 10000,1000000]   p50 at two data sizes, gateway only
    python bench/run.py --trusted [--customers 100000]   a refused untrusted document against a cached valid one
    python bench/run.py --instructions [--baseline-ref REF] [--served]   instructions per lookup under valgrind,
                                     gateway (request log off and on) against the floor (instructions.py); --served:
                                     their real servers, uvicorn included, driven over TCP
    python bench/run.py --tracing [--customers 100000]   tracing off, on for every request, on for 10 %: req/s, CPU
                                     per request and the spans that reach an OTLP sink (tracing.py)
    python bench/run.py --fairness   one org's steady lookups while another floods (fairness.py)
    python bench/run.py --ingest     staleness: import --follow against one import a second, and the lookups'
                                     req/s and p99 while either runs (ingest.py)
    python bench/run.py --deltas [--customers 1000,10000,1000000]   a delta's plans and times by its size and
                                     the data's (deltas.py)
    python bench/run.py --first-load [--customers 1000000]   `import FILE` into an empty database against COPY
                                     alone (first_load.py)
    python bench/run.py --live [--customers 1000000]   live subscriptions: commit-to-message latency at 1k and
                                     10k subscribers, memory per subscription, the lookups beside them (live.py)
    python bench/run.py --replicas [--customers 100000]   lookups/s with a streaming replica taking the reads,
                                     against the primary alone (replicas.py)

`--baseline-ref REF` adds the contender gateway@REF: the gateway's code at that git ref (bench/checkout.py),
one worker, on the same data with the same settings and checks, and a column "÷ baseline gateway".
The contender "gateway-1w REST" (`--only rest`) is gateway-1w's server driven through the reference REST endpoint
(GET /v2/customers/lookup/points/balance) with the same lookups, set beside gateway-1w's /graphql.

It starts an embedded PostgreSQL in bench/.work/, loads demo data with
`loyalty-gateway demo-data` (timed), samples real identifiers, then starts each
contender in turn on that database, checks every answer, warms it up and drives
it with wrk at each concurrency, alternating the contenders' order between
levels. Results are printed and written to bench/results/ as Markdown.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from checkout import GatewaySource, code_state_lines, current_gateway, gateway_at, live_package_dirs
from database import Postgres, embedded_postgres, install_signal_handlers
from dataset import Dataset, prepare
from measure import Timing, Workloads, make_workloads, measure, timing_from
from peers import PostGraphileInstall, install_postgraphile
from report import Row, load_table, machine_facts, quietest_row, write_markdown
from servers import Contender, Running, check_answers, floor, free_port, gateway, postgraphile
from wrk import QUIET_TOLERANCE, LoadResult, require_wrk

CONTENDERS = ("gateway", "rest", "floor", "postgraphile")
# `--only rest`: gateway-1w's server, its REST endpoint.
REST_CONTENDER = "gateway-1w REST"
# The other modes: flag -> (module, its entry point); without any, the comparison runs.
MODES = {
    "batch": ("batch", "run_batch"),
    "scale": ("scale", "run_scale"),
    "deltas": ("deltas", "run_deltas"),
    "ingest": ("ingest", "run_ingest"),
    "fairness": ("fairness", "run_fairness"),
    "trusted": ("trusted", "run_trusted"),
    "tracing": ("tracing", "run_tracing"),
    "first_load": ("first_load", "run_first_load"),
    "live": ("live", "run_live"),
    "replicas": ("replicas", "run_replicas"),
    "instructions": ("instructions", "run_instructions"),
}
# The modes that take several customer counts (--customers 1000,10000), with their default counts; the others
# take one.
SEVERAL_SIZES = {"deltas": [1_000, 10_000, 1_000_000]}
CALIBRATION_POOL_SIZES = (2, 4)
DEFAULT_CUSTOMERS = 1_000_000
# --trusted and --tracing measure the gateway's own work per request, which does not grow with the data.
TRUSTED_CUSTOMERS = 100_000
# --instructions counts the gateway's work per lookup, which does not grow with the data.
INSTRUCTIONS_CUSTOMERS = 10_000


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(names) - set(CONTENDERS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown contenders {sorted(unknown)}; choose from {CONTENDERS}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--customers",
        type=_ints,
        help=f"demo data size (default {DEFAULT_CUSTOMERS}; {TRUSTED_CUSTOMERS} in --trusted, --tracing); --deltas "
        f"takes several (default {','.join(map(str, SEVERAL_SIZES['deltas']))})",
    )
    parser.add_argument("--duration", type=float, default=15, help="seconds of load per measurement (default 15)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before each measurement (default 3)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="before each measurement, wait up to this many seconds for other load on the machine to stop "
        "(default 60; 0: don't wait)",
    )
    parser.add_argument("--concurrency", type=_ints, default=[8, 32, 64], help="connections (default 8,32,64)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the multi-worker gateway")
    parser.add_argument("--only", type=_names, default=list(CONTENDERS), help="contenders (default all)")
    parser.add_argument(
        "--baseline-ref",
        metavar="REF",
        help="also run gateway@REF, the gateway's code at this git ref (1 worker), whatever --only says; "
        "the table gets a column: the current gateway's req/s ÷ gateway@REF's",
    )
    parser.add_argument("--pool-size", type=int, help="database connections per server process (default: measure)")
    parser.add_argument("--samples", type=int, default=5000, help="distinct identifiers to cycle over (default 5000)")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse a database of the same size left in bench/.work/ by an earlier run"
    )
    parser.add_argument("--batch", action="store_true", help="lookups/s for aliased lookups per request instead")
    parser.add_argument("--batch-sizes", type=_ints, default=[1, 10, 50], help="lookups per request (default 1,10,50)")
    parser.add_argument("--batch-concurrency", type=int, default=8, help="wrk connections in --batch mode (default 8)")
    parser.add_argument("--scale", action="store_true", help="gateway p50 at two data sizes instead")
    parser.add_argument(
        "--trusted",
        action="store_true",
        help="instead: CPU per request of a refused untrusted document against a cached trusted one (trusted.py)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="instead: instructions per lookup of the gateway's request path and the floor's, counted by valgrind "
        "(instructions.py; 10k customers by default)",
    )
    parser.add_argument(
        "--instructions-requests",
        type=int,
        default=1600,
        help="--instructions: lookups counted per variant and round (default 1600)",
    )
    parser.add_argument(
        "--served",
        action="store_true",
        help="--instructions: count each variant's real server (uvicorn included) driven over TCP, not the app "
        "called in process",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="instead: req/s and CPU per request with tracing off, on for every request and on for 10 %% (tracing.py)",
    )
    parser.add_argument(
        "--deltas", action="store_true", help="instead: a delta's plans and times by its size (deltas.py)"
    )
    parser.add_argument(
        "--first-load",
        action="store_true",
        help="instead: `import FILE` of --customers into an empty database against COPY alone (first_load.py)",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="instead: live subscriptions' commit-to-message latency, memory per subscription and the lookups "
        "beside them (live.py)",
    )
    parser.add_argument(
        "--replicas",
        action="store_true",
        help="instead: lookups/s with a streaming replica taking the reads against the primary alone (replicas.py)",
    )
    parser.add_argument(
        "--ingest",
        action="store_true",
        help="instead: how stale balances are, import --follow against one import a second, and the lookups' "
        "req/s beside ingestion (ingest.py)",
    )
    parser.add_argument(
        "--fairness",
        action="store_true",
        help="instead: one org's steady single lookups, alone and while another org floods (fairness.py)",
    )
    parser.add_argument(
        "--trusted-concurrency", type=_ints, default=[32], help="connections in --trusted mode (default 32)"
    )
    parser.add_argument(
        "--tracing-concurrency", type=_ints, default=[32], help="connections in --tracing mode (default 32)"
    )
    parser.add_argument("--scale-sizes", type=_ints, default=[10_000, 1_000_000], help="customers (default 10k,1M)")
    parser.add_argument(
        "--scale-concurrency", type=_ints, default=[1, 8], help="connections in --scale mode (default 1,8)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="rounds over all contenders and levels; the quietest is reported (default 1; 5 in --scale; in --ingest "
        "over the query path's phases, in --first-load over its loads)",
    )
    from live import add_arguments as add_live_arguments  # the --live-* flags

    add_live_arguments(parser)
    return parser


def dataset_facts(dataset: Dataset) -> list[str]:
    counts = ", ".join(f"{table} {count:,}" for table, count in dataset.counts.items())
    loaded = (
        f"`loyalty-gateway demo-data --customers {dataset.customers}` took **{dataset.load_seconds:.1f} s** "
        "(the whole command: start, migrate, generate, COPY, indexes, ANALYZE)"
        if dataset.load_seconds is not None
        else "reused a database loaded by an earlier run (--reuse): no load time measured"
    )
    orgs = len(dataset.keys)
    return [
        f"- {dataset.customers:,} customers: {counts}",
        f"- {loaded}",
        f"- {len(dataset.samples):,} real identifiers sampled at random from {orgs} orgs, one API key per org",
    ]


# --- the main comparison ------------------------------------------------------------------------------------------


def build_contender(
    name: str,
    postgres: Postgres,
    workloads: Workloads,
    pool_size: int,
    workers: int,
    peer: PostGraphileInstall | None,
    baseline: GatewaySource | None = None,
) -> Contender:
    if name == REST_CONTENDER:
        graphql = build_contender("gateway-1w", postgres, workloads, pool_size, workers, peer)
        return replace(graphql, name=name, dialect="rest")
    port = free_port()
    # Production's defaults: one JSON log line per request (written to the server's log file), metrics on.
    logged = {"log_level": "info"}
    if baseline is not None and name == baseline_name(baseline):
        # One worker, as gateway-1w: the pair the "÷ baseline gateway" column compares.
        return gateway(postgres, workers=1, pool_size=pool_size, port=port, source=baseline, **logged)
    if name == "gateway-1w":
        return gateway(postgres, workers=1, pool_size=pool_size, port=port, **logged)
    if name.startswith("gateway-"):
        return gateway(postgres, workers=workers, pool_size=pool_size, port=port, **logged)
    if name == "floor":
        return floor(postgres, pool_size=pool_size, port=port, keys_file=workloads.keys_file)
    assert name == "postgraphile" and peer is not None
    return postgraphile(postgres, peer, pool_size=pool_size, port=port)


def calibrate_pool(postgres: Postgres, workloads: Workloads, timing: Timing) -> tuple[int, list[str]]:
    """Measure the floor (the most database-bound contender) with each candidate pool size at c=32, in the order
    A B B A to even out drift on a shared machine, and pick the size with the higher mean."""
    figures: dict[int, list[float]] = {size: [] for size in CALIBRATION_POOL_SIZES}
    for size in (*CALIBRATION_POOL_SIZES, *reversed(CALIBRATION_POOL_SIZES)):
        contender = floor(postgres, pool_size=size, port=free_port(), keys_file=workloads.keys_file)
        result, _ = measure(postgres, contender, workloads.gateway, concurrency=32, timing=timing)
        figures[size].append(result.rps)
        print(f"  pool {size}: floor {result.rps:,.0f} req/s at c=32", flush=True)
    means = {size: statistics.mean(values) for size, values in figures.items()}
    best = max(means, key=lambda size: means[size])
    lines = [
        f"- pool {size}: floor {means[size]:,.0f} req/s at c=32 (mean of "
        f"{', '.join(f'{rps:,.0f}' for rps in values)}; {timing.duration:.0f} s each)"
        for size, values in figures.items()
    ]
    return best, [*lines, f"- chosen: **{best}** connections per server process, for every contender"]


def baseline_name(source: GatewaySource) -> str:
    return f"gateway@{source.ref}"


def code_check(
    name: str, expected: Path, seen: dict[str, str], requests: Sequence[Any]
) -> Callable[[Running], list[dict[str, Any]]]:
    """The answer check, preceded once per contender by a look at which `gateway` package the live server runs."""

    def check(server: Running) -> list[dict[str, Any]]:
        if name not in seen:
            found = live_package_dirs(server.process.pid)
            if isinstance(found, str):
                seen[name] = f"not looked at: {found}"
            elif found != {expected}:
                raise RuntimeError(f"{name} runs the gateway's code from {sorted(map(str, found))}, not {expected}")
            else:
                seen[name] = f"`{expected}` (py-spy dump of the running server: every gateway frame from there)"
        return check_answers(server, requests)

    return check


def compare_answers(reference: tuple[str, list[dict[str, Any]]], answers: list[dict[str, Any]], name: str) -> None:
    """Every contender must answer every sampled lookup exactly as the first one measured did, in every field the
    two answers share: all of them between GraphQL answers; entityId and the points (mainPoints ...) between a
    GraphQL answer and a REST one (which has no programs, and adds entityType and warnings)."""
    first_name, first = reference
    differing = [i for i, (a, b) in enumerate(zip(first, answers, strict=True)) if _shared(a, b) != _shared(b, a)]
    if differing:
        at = differing[0]
        raise RuntimeError(
            f"{name} answers {len(differing)} lookups differently from {first_name}, e.g.\n"
            f"  {first_name}: {first[at]}\n  {name}: {answers[at]}"
        )


def _shared(answer: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    shared = {key: value for key, value in answer.items() if key in other}
    if "mainPoints" not in shared:
        raise RuntimeError(f"answers without mainPoints to compare: {answer} and {other}")
    return shared


def run_comparison(args: argparse.Namespace, command_line: str) -> int:
    require_wrk()
    peer: PostGraphileInstall | None = None
    notes: list[str] = []
    if "postgraphile" in args.only:
        installed = install_postgraphile()
        if isinstance(installed, str):
            print(installed, file=sys.stderr)
            notes.append(f"- PostGraphile skipped: {installed}")
        else:
            peer = installed
    names = [name for name in ("gateway-1w", f"gateway-{args.workers}w") if "gateway" in args.only]
    names = list(dict.fromkeys(names))
    if "rest" in args.only:
        names.append(REST_CONTENDER)

    stamp = datetime.now()
    current = current_gateway()
    with ExitStack() as stack:
        baseline = stack.enter_context(gateway_at(args.baseline_ref)) if args.baseline_ref else None
        if baseline is not None:
            names.append(baseline_name(baseline))
        names += [name for name in ("floor", "postgraphile") if name in args.only and (name != "postgraphile" or peer)]
        postgres = stack.enter_context(embedded_postgres(f"pg-{args.customers}", fresh=not args.reuse))
        dataset = prepare(postgres, args.customers, samples=args.samples, reuse=args.reuse)
        workloads = make_workloads(dataset, f"c{args.customers}")
        pool_lines: list[str] = []
        pool_size = args.pool_size
        if pool_size is None:
            print("choosing the pool size ...", flush=True)
            pool_size, pool_lines = calibrate_pool(
                postgres, workloads, replace(timing_from(args), duration=5, warmup=1)
            )
        else:
            pool_lines = [f"- {pool_size} connections per server process, for every contender (--pool-size)"]
        rounds = args.rounds or 1
        measured: dict[tuple[int, str], list[tuple[LoadResult, int]]] = {}
        reference: tuple[str, list[dict[str, Any]]] | None = None
        # Which code each gateway contender really runs (looked at once each).
        code_seen: dict[str, str] = {}
        step = 0
        for round_number in range(1, rounds + 1):
            for concurrency in args.concurrency:
                # Rotate the order at every level (and round): no contender always goes first.
                shift = step % len(names)
                step += 1
                order = names[shift:] + names[:shift]
                for position, name in enumerate(order, start=1):
                    contender = build_contender(name, postgres, workloads, pool_size, args.workers, peer, baseline)
                    workload = workloads.of(contender)
                    check = None
                    if name.startswith("gateway"):
                        check = code_check(name, contender.cwd / "gateway", code_seen, workload.requests)
                    print(f"round {round_number}, c={concurrency}: {name} ...", flush=True)
                    result, answers = measure(
                        postgres, contender, workload, concurrency=concurrency, timing=timing_from(args), check=check
                    )
                    if reference is None:
                        reference = (name, answers)
                    else:
                        compare_answers(reference, answers, name)
                    print(f"  {result_line(result)}", flush=True)
                    measured.setdefault((concurrency, name), []).append((result, position))
        rows = [quietest_row(name, runs) for (_, name), runs in measured.items()]
        version = postgres.version()
    code_lines = code_state_lines(current)

    pair = ("gateway-1w", baseline_name(baseline)) if baseline is not None else None
    table = load_table(rows, pair)
    print("\n".join(table))
    baseline_lines = ratio_lines(rows, pair) if pair is not None else []
    rest_pair = (REST_CONTENDER, "gateway-1w")
    rest_lines = ratio_lines(rows, rest_pair)
    for found in (baseline_lines, rest_lines):
        if found:
            print("\n".join(["", *found]))
    lines = contender_lines(args, peer is not None)
    if {"gateway", "rest"} & set(args.only):
        lines += code_lines
    if baseline is not None:
        lines += baseline_contender_lines(baseline)
    lines += [f"- code run by {name}: {seen}" for name, seen in sorted(code_seen.items())]
    sections = [
        ("Command", [f"`{command_line}`"]),
        ("Machine", [f"- {fact}" for fact in machine_facts(version, peer.node_version() if peer else None)]),
        ("Data", dataset_facts(dataset)),
        ("Contenders", lines + notes),
        ("Database pool", pool_lines),
        (
            f"Results ({args.duration:.0f} s per measurement after {args.warmup:.0f} s of warm-up"
            + (
                f"; of {rounds} rounds, the quietest one (the least other CPU; the fastest of those within "
                f"{QUIET_TOLERANCE} s of it))"
                if rounds > 1
                else ")"
            ),
            table,
        ),
        ("Against the targets of issue 3 (c=32, 1 worker)", verdict(rows)),
    ]
    if pair is not None:
        sections.append((f"Against the baseline: gateway-1w ÷ {pair[1]}", baseline_lines))
    if rest_lines:
        sections.append((f"REST against GraphQL: {rest_pair[0]} ÷ {rest_pair[1]}", rest_lines))
    path = write_markdown(
        f"Bench {stamp:%Y-%m-%d %H:%M}, {args.customers:,} customers", sections, stamp, "baseline" if pair else ""
    )
    print(f"\nwritten to {path}")
    return 0


def contender_lines(args: argparse.Namespace, with_peer: bool) -> list[str]:
    lines = []
    if "gateway" in args.only:
        lines.append(
            f"- **gateway-1w / gateway-{args.workers}w**: `loyalty-gateway serve --workers 1` / `--workers "
            f"{args.workers}` (uvicorn; every request authenticated by its org's API key; production's defaults: "
            "a JSON log line per request (`--log-level info`, to the server's log file), /metrics on, cost-based "
            "limits, automatic persisted queries; the per-key rate limit on, far above the load)"
        )
    if "rest" in args.only:
        lines.append(
            f"- **{REST_CONTENDER}**: gateway-1w's server, driven through the reference REST endpoint: a GET of "
            "`/v2/customers/lookup/points/balance?source=…&identifierName=…&identifierValue=…` per sampled "
            "identifier (the same lookups as /graphql's, the same API keys), answered by the balance as JSON "
            "without programs"
        )
    if "floor" in args.only:
        lines.append(
            "- **floor**: `bench/floor.py`, starlette + asyncpg + orjson under uvicorn (uvloop, httptools), 1 worker: "
            "the same body, the same SQL as the gateway (gateway/db/sql/fetch_customer_balance.sql for one "
            "identifier) with the same parameters, the same JSON answer, API keys checked in a dict; no GraphQL"
        )
    if with_peer:
        lines.append(
            "- **postgraphile**: PostGraphile 5.1.5 on Node 22, amber preset, production mode, no GraphiQL/watch/"
            "websockets/explain; the lookup is `bench.points_balance(org, source, type, value)` "
            "(bench/postgraphile/points_balance.sql) exposed as a query field. **No authentication** and a "
            "simpler statement than the gateway's (no dual-eligibility or conflict checks): both in its favour"
        )
    lines.append(
        "- wrk, 1 thread, a Lua script cycling over the sampled requests; every contender's answer to every "
        "sampled request is checked before its load (the right entity, and every field equal across contenders; "
        "against a REST answer, entityId and the points)"
    )
    return lines


def baseline_contender_lines(baseline: GatewaySource) -> list[str]:
    return [
        f"- **{baseline_name(baseline)}**: the gateway's code at {baseline.ref} (commit {baseline.commit}), "
        f"checked out with `git worktree add --detach` in bench/.work/{baseline.path.name}/ and started as "
        "gateway-1w is: the same venv with `PYTHONPATH` and the working directory set to its copy of the code, "
        "the same data, flags, environment, pool, one worker, the same request bodies and answer checks. "
        "Every contender waits to be ready on a lookup (never on /readyz)",
    ]


def ratio_lines(rows: Sequence[Row], pair: tuple[str, str]) -> list[str]:
    """Per level where both were measured: one contender ÷ the other (the current gateway ÷ the baseline, REST ÷
    GraphQL), in req/s, latency and server CPU per request, and req/s in every round."""
    subject, base = pair
    lines = []
    for concurrency in sorted({row.result.concurrency for row in rows}):
        by_name = {row.contender: row for row in rows if row.result.concurrency == concurrency}
        if subject not in by_name or base not in by_name:
            continue
        now, then = by_name[subject].result, by_name[base].result
        rounds = "; ".join(
            _over(a, b, ",.0f") for (a, _), (b, _) in zip(by_name[subject].rounds, by_name[base].rounds, strict=True)
        )
        lines.append(
            f"- c={concurrency}: req/s {_over(now.rps, then.rps, ',.0f', bold=True)}; "
            f"p50 ms {_over(now.p50_ms, then.p50_ms, '.2f')}; p99 ms {_over(now.p99_ms, then.p99_ms, '.2f')}; "
            f"server CPU ms/req {_over(now.server_ms_per_request, then.server_ms_per_request, '.3f', bold=True)} "
            f"(below 1: less CPU); PG CPU ms/req {now.postgres_ms_per_request:.3f} ÷ "
            f"{then.postgres_ms_per_request:.3f}; req/s round by round: {rounds}"
        )
    return lines


def _over(value: float, base: float, spec: str, *, bold: bool = False) -> str:
    """The text "value ÷ base = ratio", the ratio in bold if asked."""
    mark = "**" if bold else ""
    return f"{value:{spec}} ÷ {base:{spec}} = {mark}{value / base:.2f}{mark}"


def verdict(rows: Sequence[Row]) -> list[str]:
    at32 = {row.contender: row.result for row in rows if row.result.concurrency == 32}
    subject = at32.get("gateway-1w")
    if subject is None:
        return ["- no gateway-1w measurement at c=32"]
    lines = []
    if (peer := at32.get("postgraphile")) is not None:
        ratio = subject.rps / peer.rps
        lines.append(f"- req/s ÷ PostGraphile: {ratio:.2f} (target ≥ 1.2, aim 1.5): {_mark(ratio >= 1.2)}")
    if (base := at32.get("floor")) is not None:
        ratio = subject.rps / base.rps
        lines.append(f"- req/s ÷ floor: {ratio:.2f} (target ≥ 0.7): {_mark(ratio >= 0.7)}")
        p99 = subject.p99_ms / base.p99_ms
        lines.append(f"- p99 ÷ floor: {p99:.2f} (target ≤ 2): {_mark(p99 <= 2)}")
    lines.append(
        "- CPU per request (server + PostgreSQL, ms), the figure least moved by other load on the machine: "
        + ", ".join(
            f"{name} {r.server_ms_per_request:.3f} + {r.postgres_ms_per_request:.3f}"
            for name, r in sorted(at32.items())
        )
    )
    return lines


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


# --- entry point --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    mode = next((mode for mode in MODES if getattr(args, mode)), None)
    if mode in SEVERAL_SIZES:
        args.customers = args.customers or SEVERAL_SIZES[mode]
    elif args.customers and len(args.customers) > 1:
        parser.error(f"--customers takes one count here (several only with --{'/--'.join(SEVERAL_SIZES)})")
    else:
        small = args.trusted or args.tracing
        default = INSTRUCTIONS_CUSTOMERS if args.instructions else TRUSTED_CUSTOMERS if small else DEFAULT_CUSTOMERS
        args.customers = args.customers[0] if args.customers else default
    install_signal_handlers()
    command_line = "python bench/run.py " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    started = time.monotonic()
    try:
        if mode is not None:
            module, function = MODES[mode]
            run: Callable[[argparse.Namespace, str], int] = getattr(importlib.import_module(module), function)
            return run(args, command_line)
        return run_comparison(args, command_line)
    except KeyboardInterrupt:
        print("\ninterrupted; every process the bench started has been stopped", file=sys.stderr)
        return 130
    finally:
        print(f"bench finished in {time.monotonic() - started:.0f} s", file=sys.stderr)


def result_line(result: LoadResult) -> str:
    return (
        f"{result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms; CPU per request: "
        f"server {result.server_ms_per_request:.3f} ms (system {result.server_system_ms_per_request:.3f}), "
        f"PostgreSQL {result.postgres_ms_per_request:.3f} ms; "
        f"other CPU {result.other_cpu:.1f} s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
