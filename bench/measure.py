"""One measurement: start a contender, check its answers, warm it up, drive it with wrk, stop it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil

from database import WORK_DIR, Postgres
from dataset import Dataset, Request, gateway_requests, postgraphile_requests, rest_requests, write_requests
from servers import Contender, Running, check_answers, running
from wrk import LoadResult, run_wrk, wait_for_quiet


@dataclass(frozen=True, slots=True)
class Workload:
    requests: Sequence[Request]
    file: Path  # the same requests, in wrk's format
    # The request whose 200 says the server is ready (default: the first).
    probe: Request | None = None
    # The status every answer under load must have (default: any 2xx or 3xx).
    expect_status: int | None = None
    # Whether wrk gives every request a document of its own (wrk.FRESH_PLACEHOLDER in the bodies).
    fresh: bool = False


@dataclass(frozen=True, slots=True)
class Workloads:
    """The sampled lookups in each contender's dialect (Contender.dialect), and the floor's API keys."""

    gateway: Workload
    postgraphile: Workload
    rest: Workload  # GETs of the gateway's REST endpoint
    keys_file: Path

    def of(self, contender: Contender) -> Workload:
        found: Workload = getattr(self, contender.dialect)
        return found


def make_workloads(dataset: Dataset, name: str) -> Workloads:
    directory = WORK_DIR / "requests" / name
    gateway_list = gateway_requests(dataset)
    peer_list = postgraphile_requests(dataset)
    rest_list = rest_requests(dataset)
    keys_file = directory / "keys.json"
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    keys_file.write_bytes(orjson.dumps({key: org for org, key in dataset.keys.items()}))
    return Workloads(
        Workload(gateway_list, write_requests(gateway_list, directory / "gateway.tsv")),
        Workload(peer_list, write_requests(peer_list, directory / "postgraphile.tsv")),
        Workload(rest_list, write_requests(rest_list, directory / "rest.tsv")),
        keys_file,
    )


@dataclass(frozen=True, slots=True)
class Timing:
    duration: float  # seconds of each measured run
    warmup: float  # seconds of load before it
    # Seconds to wait, before each measured run, for other work on the (shared) machine to stop; 0: don't.
    quiet_wait: float = 60.0


def timing_from(args: Any) -> Timing:
    """The Timing of parsed command-line arguments (duration, warmup, quiet_wait)."""
    return Timing(duration=args.duration, warmup=args.warmup, quiet_wait=args.quiet_wait)


def measure(
    postgres: Postgres,
    contender: Contender,
    workload: Workload,
    *,
    concurrency: int,
    timing: Timing,
    check: Callable[[Running], Any] | None = None,
) -> tuple[LoadResult, Any]:
    """The contender's figures at one concurrency, and its (checked) answers to every request."""
    results, answers = measure_levels(
        postgres, contender, workload, concurrencies=[concurrency], timing=timing, check=check
    )
    return results[0], answers


def measure_levels(
    postgres: Postgres,
    contender: Contender,
    workload: Workload,
    *,
    concurrencies: Sequence[int],
    timing: Timing,
    check: Callable[[Running], Any] | None = None,
) -> tuple[list[LoadResult], Any]:
    """Start the contender once, check its answers, then warm up and measure at each concurrency in turn.

    `check` checks every answer before the load and returns what the caller keeps of them (by default
    check_answers on the workload's requests). Before each measured run it waits (up to
    timing.quiet_wait seconds) for the rest of the machine to go quiet.
    """
    results = []
    with running(contender, workload.probe or workload.requests[0]) as server:
        answers = check(server) if check is not None else check_answers(server, workload.requests)
        postmaster = postgres.postmaster()
        for concurrency in concurrencies:
            if timing.warmup > 0:
                drive(server, postmaster, workload, concurrency, timing.warmup)
            if timing.quiet_wait > 0:
                wait_for_quiet(timing.quiet_wait)
            results.append(drive(server, postmaster, workload, concurrency, timing.duration))
    return results, answers


def drive(
    server: Running, postmaster: psutil.Process, workload: Workload, concurrency: int, seconds: float
) -> LoadResult:
    """One wrk run of the workload against a running server; fails on any error."""
    result = run_wrk(
        server.url, workload.file, concurrency=concurrency, duration=seconds, server=server.psutil,
        postmaster=postmaster, expect_status=workload.expect_status, fresh=workload.fresh,
    )  # fmt: skip
    if result.failure:
        raise RuntimeError(f"{server.contender.name} failed under load at c={concurrency}: {result.failure}")
    return result
