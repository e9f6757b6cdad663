"""Instructions per lookup: the request path's own cost, counted by valgrind, unmoved by other load on the machine.

Run as `python bench/run.py --instructions [--customers 10000] [--baseline-ref REF] [--instructions-requests N]`.

On a shared machine req/s and CPU seconds move with whatever else runs; the number of instructions a process
executes for the same work does not. Each variant drives the real app in process (its lifespan, its pool, the
bench's PostgreSQL) through plain ASGI calls, 32 at a time, with the bench's lookups; valgrind (cachegrind,
no cache simulation) counts the instructions of the whole process twice, for N1 and N2 lookups, and
(I2 - I1) / (N2 - N1) is what one lookup costs, start-up and warm-up cancelled out. PostgreSQL runs in its own
processes and is not counted; uvicorn's HTTP parsing is not either (the app is called directly), so the floor and
the gateway are compared on what differs between them.

Variants: the current gateway with its request log off and on (JSON lines to a file, as in production), the
gateway at --baseline-ref the same two ways, and the floor (bench/floor.py) on the same requests.

With --served each variant is instead its real server, started as the wall-clock bench starts it (`loyalty-gateway
serve`, or uvicorn with the floor's app) under valgrind and driven over TCP by a client outside it, 32 keep-alive
connections: uvicorn's HTTP parsing and writing are counted too, for both. Only the kernel's work (system calls,
TCP) is left out.

    python bench/instructions.py --drive PYTHONPATH_TREE DATABASE_URL REQUESTS N   (one process, run by the above)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson

import servers
from checkout import GatewaySource, code_state_lines, current_gateway, gateway_at
from database import WORK_DIR, Postgres, embedded_postgres
from dataset import Request, gateway_requests, prepare
from report import opening_sections, write_markdown

CONCURRENCY = 32
FIRST = 320  # N1: lookups of the shorter run, warm-up included in both
FLOOR_APP = Path(__file__).resolve().parent / "floor.py"


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    source: GatewaySource | None  # the gateway's code (None: the floor)
    request_log: bool

    @property
    def tree(self) -> Path | None:
        return None if self.source is None else self.source.path


def require_valgrind() -> str:
    found = shutil.which("valgrind")
    if found is None:
        raise SystemExit("valgrind counts the instructions: install Debian's 'valgrind' package")
    return found


VALGRIND = ["--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]


def _instructions(output: str) -> int | None:
    """cachegrind's I refs, from what valgrind wrote at the process's exit."""
    found = re.search(r"I\s+refs:\s+([\d,]+)", output)
    return None if found is None else int(found[1].replace(",", ""))


def count(variant: Variant, database_url: str, requests: Path, keys: Path, lookups: int) -> int:
    """Instructions the whole process executed for `lookups` lookups (cachegrind's I refs)."""
    env = {**os.environ, "BENCH_DATABASE_URL": database_url, "BENCH_POOL_SIZE": "2", "BENCH_KEYS_FILE": str(keys)}
    if variant.tree is not None:
        env["PYTHONPATH"] = str(variant.tree)
    command = [
        require_valgrind(), *VALGRIND, sys.executable, __file__,
        "--drive", "floor" if variant.tree is None else "gateway", database_url, str(requests), str(lookups),
        "log" if variant.request_log else "quiet",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=WORK_DIR)
    found = _instructions(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{variant.name}: the counted run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return found


def count_served(variant: Variant, postgres: Postgres, requests: list[Request], keys: Path, lookups: int) -> int:
    """Instructions the variant's real server executed, from its start to its exit, answering `lookups` lookups
    sent over TCP (the readiness probe's lookups, the same in every run, included)."""
    port = servers.free_port()
    if variant.source is None:
        contender = servers.floor(postgres, pool_size=2, port=port, keys_file=keys)
    else:
        log_level = "info" if variant.request_log else "warning"
        contender = servers.gateway(
            postgres, workers=1, pool_size=2, port=port, source=variant.source, log_level=log_level
        )
    contender = replace(contender, command=[require_valgrind(), *VALGRIND, *contender.command])
    with servers.running(contender, requests[0], timeout=600) as server:
        asyncio.run(_send_over_tcp(port, requests, lookups))
    # running() stopped it with SIGTERM: a graceful exit, after which valgrind writes its counts to the log
    # (uvicorn on its own exits by the signal it caught, once it has shut down; the gateway exits with 0).
    found = _instructions(server.log.read_text(errors="replace"))
    if server.process.returncode not in (0, -signal.SIGTERM) or found is None:
        raise RuntimeError(f"{variant.name}: the counted server failed ({server.process.returncode}):\n"
                           f"{server.log_tail()}")  # fmt: skip
    return found


async def _send_over_tcp(port: int, requests: list[Request], lookups: int) -> None:
    """`lookups` POSTs of the bench's lookups over CONCURRENCY keep-alive connections; every answer must be 200."""
    sent = [
        b"POST /graphql HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\naccept: application/json\r\n"
        b"authorization: Bearer %s\r\ncontent-length: %d\r\n\r\n%s" % (r.api_key.encode(), len(r.body), r.body)
        for r in requests
    ]

    async def client(start: int) -> None:
        reader, writer = await asyncio.open_connection(servers.HOST, port)
        try:
            for number in range(start, lookups, CONCURRENCY):
                writer.write(sent[number % len(sent)])
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length: *(\d+)", head)
                if not head.startswith(b"HTTP/1.1 200 ") or length is None:
                    raise RuntimeError(f"a lookup was answered {head[:200]!r}")
                await reader.readexactly(int(length[1]))
        finally:
            writer.close()

    await asyncio.gather(*(client(start) for start in range(CONCURRENCY)))


def per_lookup(count_lookups: Callable[[int], int], lookups: int) -> float:
    """What one lookup costs: the instructions counted at FIRST + lookups lookups, less those at FIRST."""
    first = count_lookups(FIRST)
    return (count_lookups(FIRST + lookups) - first) / lookups


def run_instructions(args: argparse.Namespace, command_line: str) -> int:
    require_valgrind()
    stamp = datetime.now()
    lookups = args.instructions_requests
    directory = WORK_DIR / "requests" / f"instructions-c{args.customers}"
    directory.mkdir(parents=True, exist_ok=True)
    current = current_gateway()
    results: dict[str, list[float]] = {}
    with ExitStack() as stack:
        baseline: GatewaySource | None = None
        if args.baseline_ref:
            baseline = stack.enter_context(gateway_at(args.baseline_ref))
        variants = list(_variants(current, baseline))
        postgres = stack.enter_context(embedded_postgres(f"pg-{args.customers}", fresh=not args.reuse))
        dataset = prepare(postgres, args.customers, samples=args.samples, reuse=args.reuse)
        dataset_requests = gateway_requests(dataset)
        requests = directory / "lookups.jsonl"
        requests.write_bytes(b"".join(orjson.dumps([r.api_key, r.body.decode()]) + b"\n" for r in dataset_requests))
        keys = directory / "keys.json"
        keys.write_bytes(orjson.dumps({key: org for org, key in dataset.keys.items()}))
        for round_number in range(1, (args.rounds or 1) + 1):
            for variant in variants:
                counter = (
                    partial(count_served, variant, postgres, dataset_requests, keys)
                    if args.served
                    else partial(count, variant, postgres.url, requests, keys)
                )
                figure = per_lookup(counter, lookups)
                results.setdefault(variant.name, []).append(figure)
                print(f"round {round_number}: {variant.name}: {figure:,.0f} instructions per lookup", flush=True)
        version = postgres.version()
    table = _table(variants, results)
    print("\n".join(table))
    how = (
        "each variant's real server (as the wall-clock bench starts it, one worker) under valgrind from its start "
        "to its exit, driven over TCP from outside valgrind: uvicorn's HTTP work counted, the kernel's not"
        if args.served
        else "the app called in process through ASGI (no uvicorn, no sockets on the client side)"
    )
    setup = [
        f"- {args.customers:,} customers; {lookups:,} lookups counted per variant and round ((I2 - I1) / "
        f"{lookups:,}, with I1 at {FIRST} lookups), {CONCURRENCY} at a time, the bench's lookup document and "
        f"sampled identifiers; {how}; a pool of 2 connections to the bench's PostgreSQL; "
        "valgrind --tool=cachegrind --cache-sim=no",
        "- the gateway as in production (metrics on, cost-based limits, automatic persisted queries, deadlines, the "
        "per-key rate limit on but far above the load); 'request log on': one JSON line per request to a file",
        "- the floor: bench/floor.py's app, the same requests, its own asyncpg pool of 2",
        *code_state_lines(current),
    ]
    if baseline is not None:
        setup.append(f"- gateway@{baseline.ref}: {baseline.description}")
    sections = [
        *opening_sections(command_line, version, setup),
        ("Instructions per lookup (median of the rounds)", table),
    ]
    title = "Instructions per lookup, served" if args.served else "Instructions per lookup"
    path = write_markdown(
        f"{title} {stamp:%Y-%m-%d %H:%M}", sections, stamp, "instructions-served" if args.served else "instructions"
    )
    print(f"\nwritten to {path}")
    return 0


def _variants(current: GatewaySource, baseline: GatewaySource | None) -> Iterator[Variant]:
    yield Variant("floor", None, False)
    for source, name in ((baseline, f"gateway@{baseline.ref}" if baseline else ""), (current, "gateway")):
        if source is None:
            continue
        yield Variant(name, source, False)
        yield Variant(f"{name}, request log on", source, True)


def _table(variants: list[Variant], results: dict[str, list[float]]) -> list[str]:
    floor = _median(results["floor"])
    baseline = next((v.name for v in variants if v.name.startswith("gateway@") and not v.request_log), None)
    lines = [
        "| variant | instructions per lookup | ÷ floor | ÷ baseline (same log setting) | per round |",
        "|---|---:|---:|---:|---|",
    ]
    for variant in variants:
        figure = _median(results[variant.name])
        against = ""
        if baseline is not None and not variant.name.startswith("gateway@") and variant.tree is not None:
            pair = baseline + (", request log on" if variant.request_log else "")
            against = f"{figure / _median(results[pair]):.2f}"
        rounds = ", ".join(f"{value:,.0f}" for value in results[variant.name])
        lines.append(f"| {variant.name} | {figure:,.0f} | {figure / floor:.2f} | {against} | {rounds} |")
    return lines


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# --- the counted process ------------------------------------------------------------------------------------------


def _drive(kind: str, database_url: str, requests: Path, lookups: int, log: str) -> None:
    import uvloop
    from asgi_lifespan import LifespanManager

    sent = [orjson.loads(line) for line in requests.read_bytes().splitlines()]
    if kind == "floor":
        sys.path.insert(0, str(FLOOR_APP.parent))
        from floor import app
    else:
        from gateway.app import create_app
        from gateway.config import Settings
        from gateway.observability.logs import configure_logging

        if log == "log":
            configure_logging("info", "json", stream=(WORK_DIR / "logs" / "instructions.log").open("a"))
        settings = Settings(
            database_url=database_url, pool_min_size=2, pool_max_size=2, rate_limit=1_000_000,
            rate_limit_burst=1_000_000, metrics="on", log_level="info" if log == "log" else "warning",
        )  # fmt: skip
        app = create_app(settings)

    async def lookup(manager: Any, key: str, body: bytes) -> None:
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                await asyncio.Event().wait()  # the client stays: nothing more to receive
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        headers = [
            (b"host", b"bench"), (b"content-type", b"application/json"), (b"accept", b"application/json"),
            (b"authorization", f"Bearer {key}".encode()), (b"content-length", str(len(body)).encode()),
        ]  # fmt: skip
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/graphql", "raw_path": b"/graphql", "root_path": "", "query_string": b"", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        await manager.app(scope, receive, send)
        if status != 200:
            raise RuntimeError(f"a lookup was answered {status}")

    async def main() -> None:
        async with LifespanManager(app) as manager:

            async def client(start: int) -> None:
                for number in range(start, lookups, CONCURRENCY):
                    key, body = sent[number % len(sent)]
                    await lookup(manager, key, body.encode())

            await asyncio.gather(*(client(start) for start in range(CONCURRENCY)))

    uvloop.run(main())


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--drive":
    _drive(sys.argv[2], sys.argv[3], Path(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
