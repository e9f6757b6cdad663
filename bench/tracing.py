"""Traces: what OpenTelemetry tracing costs the gateway, off, on for every request and on for one in ten.

Run as `python bench/run.py --tracing [--customers 100000] [--tracing-concurrency 32] [--rounds 3] [--reuse]`.
Three cases are driven with wrk, each on a gateway of its own (1 worker, production mode), in an order that
rotates from round to round:

- (a) tracing off: no OTEL_* variable, the default;
- (b) tracing on, every request sampled (`OTEL_TRACES_SAMPLER=always_on`), spans exported over OTLP/HTTP to a
  sink the bench runs;
- (c) tracing on, one request in ten sampled (`OTEL_TRACES_SAMPLER=traceidratio`, `OTEL_TRACES_SAMPLER_ARG=0.1`),
  the same sink.

The sink is a minimal OTLP/HTTP receiver in a process of its own (this file run as a script, so that its CPU is
not counted as the server's): it decodes every ExportTraceServiceRequest, counts the spans, and answers 200 with an
empty ExportTraceServiceResponse. Reported per case: requests/s, p99, the gateway's and PostgreSQL's CPU per
request, req/s and server CPU ÷ case (a)'s, and the spans that reached the sink per request the gateway answered.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from checkout import code_state_lines, current_gateway
from database import WORK_DIR, Postgres, embedded_postgres
from dataset import gateway_requests, prepare, write_requests
from measure import Timing, Workload, drive, timing_from
from report import Row, opening_sections, quietest_row, write_markdown
from servers import Running, check_answers, free_port, gateway, running
from wrk import QUIET_TOLERANCE, LoadResult, require_wrk, wait_for_quiet

PRODUCTION = ("--env", "production")
SAMPLE_RATIO = 0.1
HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Case:
    key: str  # a, b, c
    label: str
    # The OTEL_* sampler variables; None: tracing off.
    sampler: Mapping[str, str] | None

    def environment(self, endpoint: str) -> dict[str, str] | None:
        if self.sampler is None:
            return None
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **self.sampler}


CASES = (
    Case("a", "tracing off (the default)", None),
    Case("b", "tracing on, every request sampled", {"OTEL_TRACES_SAMPLER": "always_on"}),
    Case(
        "c",
        f"tracing on, {SAMPLE_RATIO:.0%} sampled",
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": str(SAMPLE_RATIO)},
    ),
)


# --- the sink: a minimal OTLP/HTTP receiver ------------------------------------------------------------------------


@dataclass(slots=True)
class Received:
    """What the sink has received (since it started, or over one server's life)."""

    exports: int = 0
    spans: int = 0
    server_spans: int = 0  # one per sampled request: the request's own span
    bytes: int = 0
    names: Counter[str] = field(default_factory=Counter)

    def __sub__(self, other: Received) -> Received:
        return Received(
            self.exports - other.exports,
            self.spans - other.spans,
            self.server_spans - other.server_spans,
            self.bytes - other.bytes,
            self.names - other.names,
        )

    def __add__(self, other: Received) -> Received:
        return Received(
            self.exports + other.exports,
            self.spans + other.spans,
            self.server_spans + other.server_spans,
            self.bytes + other.bytes,
            self.names + other.names,
        )


class _Receiver(BaseHTTPRequestHandler):
    """POST /v1/traces: decode, count, answer an empty ExportTraceServiceResponse; GET /counts: the counts."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a collector would
    received = Received()
    lock = threading.Lock()
    answer = ExportTraceServiceResponse().SerializeToString()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path != "/v1/traces":
            self._reply(404, b"", "text/plain")
            return
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        spans = [span for resource in export.resource_spans for scope in resource.scope_spans for span in scope.spans]
        with self.lock:
            self.received.exports += 1
            self.received.spans += len(spans)
            self.received.server_spans += sum(1 for span in spans if span.kind == Span.SPAN_KIND_SERVER)
            self.received.bytes += len(body)
            self.received.names.update(span.name for span in spans)
        self._reply(200, self.answer, "application/x-protobuf")

    def do_GET(self) -> None:
        with self.lock:
            r = self.received
            counts = {"exports": r.exports, "spans": r.spans, "server_spans": r.server_spans, "bytes": r.bytes}
            payload = json.dumps({**counts, "names": dict(r.names)}).encode()
        self._reply(200, payload, "application/json")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_sink() -> None:
    """The sink's process: listen on a free port, say which on standard output, serve until stopped."""
    server = ThreadingHTTPServer((HOST, 0), _Receiver)
    print(server.server_address[1], flush=True)
    server.serve_forever()


@dataclass(frozen=True, slots=True)
class Sink:
    process: subprocess.Popen[str]
    port: int

    @property
    def endpoint(self) -> str:
        """OTEL_EXPORTER_OTLP_ENDPOINT: the exporter adds /v1/traces."""
        return f"http://{HOST}:{self.port}"

    def received(self) -> Received:
        payload = httpx.get(f"{self.endpoint}/counts", timeout=10).json()
        names = Counter(payload.pop("names"))
        return Received(**payload, names=names)

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system


@contextmanager
def otlp_sink() -> Iterator[Sink]:
    """The sink in a process of its own, stopped when the block exits."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--sink"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        sink = Sink(process, int(process.stdout.readline()))
        sink.received()  # answering
        yield sink
    finally:
        process.terminate()
        process.wait(10)


# --- the measurement ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    result: LoadResult
    sink_cpu: float  # CPU seconds of the sink over the measured run


def measure_case(
    postgres: Postgres,
    case: Case,
    workload: Workload,
    sink: Sink,
    *,
    pool_size: int,
    levels: Sequence[int],
    timing: Timing,
) -> tuple[list[Measured], int, Received]:
    """Start the case's gateway, check its answers, warm up and measure at each level; then stop it (which exports
    the spans still queued). Returns the measurements, the requests its /graphql answered over its life and the
    spans the sink received from it meanwhile."""
    contender = gateway(
        postgres, workers=1, pool_size=pool_size, port=free_port(), extra=PRODUCTION, name=f"({case.key})",
        environment=case.environment(sink.endpoint),
    )  # fmt: skip
    before = sink.received()
    measured = []
    with running(contender, workload.requests[0]) as server:
        check_answers(server, workload.requests)
        postmaster = postgres.postmaster()
        for concurrency in levels:
            if timing.warmup > 0:
                drive(server, postmaster, workload, concurrency, timing.warmup)
            if timing.quiet_wait > 0:
                wait_for_quiet(timing.quiet_wait)
            sink_start = sink.cpu_seconds()
            result = drive(server, postmaster, workload, concurrency, timing.duration)
            sink_cpu = sink.cpu_seconds() - sink_start
            # The sink is part of the setup, not of the noise the quietest round is chosen by.
            measured.append(Measured(replace(result, other_cpu=max(0.0, result.other_cpu - sink_cpu)), sink_cpu))
        answered = graphql_requests(server)
    received = sink.received() - before
    if case.sampler is None and received.spans:
        raise RuntimeError(f"({case.key}) has tracing off, yet the sink received {received.spans} spans")
    if case.sampler is not None and not received.server_spans:
        raise RuntimeError(f"({case.key}) has tracing on, yet the sink received no request span:\n{server.log_tail()}")
    return measured, answered, received


def graphql_requests(server: Running) -> int:
    """Requests /graphql answered so far: the sum of the gateway's loyalty_gateway_requests_total."""
    text = httpx.get(server.origin + "/metrics", timeout=10).text
    return round(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("loyalty_gateway_requests_total")
        )
    )


def run_tracing(args: argparse.Namespace, command_line: str) -> int:
    require_wrk()
    # (a) is the default: no OpenTelemetry variable of this shell may reach its server.
    inherited = [name for name in os.environ if name.startswith("OTEL_")]
    if inherited:
        raise SystemExit(f"unset {', '.join(sorted(inherited))} first: case (a) measures the gateway without them")
    stamp = datetime.now()
    pool_size = args.pool_size or 2
    levels = args.tracing_concurrency
    rounds = args.rounds or 1
    current = current_gateway()
    measured: dict[tuple[int, str], list[tuple[LoadResult, int]]] = {}
    sink_cpu: dict[tuple[int, str], list[float]] = {}
    answered: dict[str, int] = {}
    received: dict[str, Received] = {}
    with embedded_postgres(f"pg-{args.customers}", fresh=not args.reuse) as postgres, otlp_sink() as sink:
        dataset = prepare(postgres, args.customers, samples=args.samples, reuse=args.reuse)
        requests = gateway_requests(dataset)
        path = write_requests(requests, WORK_DIR / "requests" / f"tracing-c{args.customers}" / "gateway.tsv")
        workload = Workload(requests, path, expect_status=200)
        for round_number in range(1, rounds + 1):
            shift = (round_number - 1) % len(CASES)
            order = CASES[shift:] + CASES[:shift]
            for position, case in enumerate(order, start=1):
                print(f"round {round_number}: ({case.key}) {case.label} ...", flush=True)
                results, served, got = measure_case(
                    postgres, case, workload, sink, pool_size=pool_size, levels=levels, timing=timing_from(args)
                )
                answered[case.key] = answered.get(case.key, 0) + served
                received[case.key] = received.get(case.key, Received()) + got
                for one in results:
                    r = one.result
                    print(
                        f"  c={r.concurrency}: {r.rps:,.0f} req/s, p99 {r.p99_ms:.2f} ms, server CPU "
                        f"{r.server_ms_per_request:.3f} ms/req, PostgreSQL {r.postgres_ms_per_request:.3f} ms/req, "
                        f"sink CPU {one.sink_cpu:.1f} s, other CPU {r.other_cpu:.1f} s",
                        flush=True,
                    )
                    measured.setdefault((r.concurrency, case.key), []).append((r, position))
                    sink_cpu.setdefault((r.concurrency, case.key), []).append(one.sink_cpu)
                print(f"  {served:,} requests answered, {got.spans:,} spans received", flush=True)
        version = postgres.version()
    code_lines = code_state_lines(current)
    rows = {key: quietest_row(key[1], runs) for key, runs in measured.items()}
    # The sink's CPU in the round each row reports.
    row_sink = {key: sink_cpu[key][_round_of(rows[key], runs)] for key, runs in measured.items()}
    table = tracing_table(rows, row_sink, levels)
    spans = spans_table(answered, received)
    verdict = verdict_lines(rows, answered, received, levels)
    print("\n".join([*table, "", *spans, "", *verdict]))
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
        "- (a) no OTEL_* variable; (b) `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:<sink>`, "
        "`OTEL_TRACES_SAMPLER=always_on`; (c) the same endpoint, `OTEL_TRACES_SAMPLER=traceidratio`, "
        f"`OTEL_TRACES_SAMPLER_ARG={SAMPLE_RATIO}`; the SDK's batch processor with its defaults (OTEL_BSP_*)",
        "- the sink: a minimal OTLP/HTTP receiver (http.server, HTTP/1.1 keep-alive) in a process of its own; it "
        "decodes every ExportTraceServiceRequest, counts its spans and answers 200 with an empty "
        "ExportTraceServiceResponse. Its CPU is in no server figure: shown as sink CPU, and taken out of other CPU",
        "- before each load every sampled lookup is checked (the right customer); under load every answer must be "
        "200 or the run fails. Spans are counted over each gateway's life: from its start to its stop, which "
        "exports what is still queued; requests are those its /graphql answered (loyalty_gateway_requests_total, "
        "read just before the stop: checks, warm-up and measured runs)",
        *code_lines,
        "- server CPU: the gateway's process tree over the measured run, its batch processor's export thread "
        "included; the machine has 2 cores shared by the gateway, PostgreSQL, wrk and the sink",
    ]
    sections = [
        *opening_sections(command_line, version, setup),
        ("Results", table),
        ("Spans received", spans),
        ("What tracing costs", verdict),
    ]
    written = write_markdown(f"Traces {stamp:%Y-%m-%d %H:%M}, {args.customers:,} customers", sections, stamp, "tracing")
    print(f"\nwritten to {written}")
    return 0


def _round_of(row: Row, runs: list[tuple[LoadResult, int]]) -> int:
    return next(i for i, (result, _) in enumerate(runs) if result is row.result)


def tracing_table(
    rows: dict[tuple[int, str], Row], sink_cpu: dict[tuple[int, str], float], levels: Sequence[int]
) -> list[str]:
    lines = [
        "| c | case | req/s | req/s ÷ (a) | p50 ms | p99 ms | errors | server CPU ms/req | server CPU ÷ (a) "
        "| PG CPU ms/req | sink CPU ms/req | wrk CPU s | other CPU s | order | req/s (other CPU s) per round |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for concurrency in levels:
        base = rows.get((concurrency, "a"))
        for case in CASES:
            row = rows.get((concurrency, case.key))
            if row is None:
                continue
            r = row.result
            rps_ratio = f"{r.rps / base.result.rps:.2f}" if base else "—"
            cpu_ratio = f"{r.server_ms_per_request / base.result.server_ms_per_request:.2f}" if base else "—"
            sink = 1000 * sink_cpu[(concurrency, case.key)] / r.requests
            lines.append(
                f"| {concurrency} | ({case.key}) {case.label} | {r.rps:,.0f} | {rps_ratio} | {r.p50_ms:.2f} "
                f"| {r.p99_ms:.2f} | {r.errors} | {r.server_ms_per_request:.3f} | {cpu_ratio} "
                f"| {r.postgres_ms_per_request:.3f} | {sink:.3f} | {r.wrk_cpu:.1f} | {r.other_cpu:.1f} "
                f"| {', '.join(map(str, row.order))} "
                f"| {', '.join(f'{rps:,.0f} ({other:.1f})' for rps, other in row.rounds)} |"
            )
    return lines


def spans_table(answered: Mapping[str, int], received: Mapping[str, Received]) -> list[str]:
    lines = [
        "| case | requests answered | spans received | spans per request | request spans ÷ requests "
        "| spans per sampled request | exports | bytes per span | span names (count) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for case in CASES:
        if case.key not in answered:
            continue
        requests, got = answered[case.key], received[case.key]
        per_sampled = f"{got.spans / got.server_spans:.2f}" if got.server_spans else "—"
        per_span = f"{got.bytes / got.spans:.0f}" if got.spans else "—"
        names = ", ".join(f"`{name}` ({count:,})" for name, count in got.names.most_common()) or "none"
        lines.append(
            f"| ({case.key}) {case.label} | {requests:,} | {got.spans:,} | {got.spans / requests:.3f} "
            f"| {got.server_spans / requests:.3f} | {per_sampled} | {got.exports:,} | {per_span} | {names} |"
        )
    return lines


def verdict_lines(
    rows: dict[tuple[int, str], Row],
    answered: Mapping[str, int],
    received: Mapping[str, Received],
    levels: Sequence[int],
) -> list[str]:
    lines = []
    for concurrency in levels:
        if (concurrency, "a") not in rows:
            continue
        a = rows[(concurrency, "a")].result
        for case in CASES[1:]:
            if (concurrency, case.key) not in rows:
                continue
            r = rows[(concurrency, case.key)].result
            extra_us = 1000 * (r.server_ms_per_request - a.server_ms_per_request)
            lines.append(
                f"- c={concurrency}, ({case.key}) {case.label}: req/s {r.rps:,.0f} ÷ {a.rps:,.0f} = "
                f"**{r.rps / a.rps:.2f}**; server CPU per request {r.server_ms_per_request:.3f} ÷ "
                f"{a.server_ms_per_request:.3f} = **{r.server_ms_per_request / a.server_ms_per_request:.2f}** "
                f"({extra_us:+.0f} µs a request); p99 {r.p99_ms:.2f} ms against {a.p99_ms:.2f} ms"
            )
    for case in CASES[1:]:
        if case.key not in answered:
            continue
        requests, got = answered[case.key], received[case.key]
        lines.append(
            f"- ({case.key}): {got.server_spans:,} request spans for {requests:,} requests answered "
            f"({got.server_spans / requests:.1%} sampled), {got.spans:,} spans in all: the export reached the sink"
        )
    return lines


if __name__ == "__main__":
    if sys.argv[1:] != ["--sink"]:
        raise SystemExit("usage: python bench/run.py --tracing ...  (python bench/tracing.py --sink: the OTLP sink)")
    serve_sink()
