"""Prometheus metrics: what the gateway counts, and how `/metrics` shows it.

The collectors live at module level, as prometheus-client intends: every
part of the gateway (and the rate limiter, and the import command) counts
into the same ones. With several worker processes prometheus-client's
multiprocess mode is used: each worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR (created by `serve`) and whichever process answers
a scrape adds them up, so one scrape sees the whole server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import psutil
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# --- observations added up in the worker, published at once ---------------------------------------------------------


class HistogramBuffer:
    """A histogram child's observations, counted per bucket in the worker and added to the child in one go.

    prometheus-client takes a lock (and, with several workers, writes a memory-mapped file) for every
    observation; a request observes two or three. Here an observation is a bisect and two additions, and
    `publish` (at each scrape, and every second) adds each bucket's count and the sum to the child, as that many
    `observe` calls would have."""

    __slots__ = ("_bounds", "_child", "_counts", "_sum")

    def __init__(self, child: Histogram) -> None:
        self._child = child
        self._bounds: list[float] = list(child._upper_bounds)  # ends with +Inf
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        # The first bucket whose upper bound is at least the value, as Histogram.observe picks it.
        self._counts[bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds

    def publish(self) -> None:
        counts, total = self._counts, self._sum
        if not any(counts):
            return
        self._counts, self._sum = [0] * len(counts), 0.0
        child = self._child
        child._sum.inc(total)
        for bucket, count in zip(child._buckets, counts, strict=True):
            if count:
                bucket.inc(count)


# --- requests -------------------------------------------------------------------------------------------------------

REQUESTS = Counter(
    "loyalty_gateway_requests",
    "Requests to /graphql, by operation name and outcome (OK or the code of the first error).",
    ["operation", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "loyalty_gateway_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by operation name.",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
COST_UNITS = Counter(
    "loyalty_gateway_cost_units",
    "Cost units charged to callers' budgets (a lookup of one customer identifier is 1; see the README, Cost).",
)
IN_FLIGHT = Gauge(
    "loyalty_gateway_requests_in_flight", "Requests to /graphql being answered now.", multiprocess_mode="livesum"
)
REQUESTS_WAITING = Gauge(
    "loyalty_gateway_requests_waiting",
    "Requests waiting for their org's turn now (its --org-concurrency requests are in progress).",
    multiprocess_mode="livesum",
)
RATE_LIMIT_REJECTIONS = Counter(
    "loyalty_gateway_rate_limit_rejections",
    "Requests refused by a rate limit, by limit (api_key or end_user).",
    ["limit"],
)
TENANT_WAIT_SECONDS = Counter(
    "loyalty_gateway_tenant_wait_seconds",
    "Seconds requests waited for their turn, by org and where (fair_share: its org's share of a worker; "
    "pool: a database connection). Counted only for requests that waited.",
    ["org", "where"],
)
TENANT_WAITS = Counter(
    "loyalty_gateway_tenant_waits",
    "Requests that waited for their turn, by org and where (see loyalty_gateway_tenant_wait_seconds).",
    ["org", "where"],
)
SHED_REQUESTS = Counter(
    "loyalty_gateway_shed_requests",
    "Requests refused with 503 because their turn would have come too late, by org and where (fair_share, pool).",
    ["org", "where"],
)
# Pre-bound children for the rate limiter's hot path: `RATE_LIMITED_API_KEY.inc()`.
RATE_LIMITED_API_KEY = RATE_LIMIT_REJECTIONS.labels(limit="api_key")
RATE_LIMITED_END_USER = RATE_LIMIT_REJECTIONS.labels(limit="end_user")

# --- database -------------------------------------------------------------------------------------------------------

DB_POOL_CONNECTIONS = Gauge(
    "loyalty_gateway_db_pool_connections", "Open connections in the pool(s).", multiprocess_mode="livesum"
)
DB_POOL_IN_USE = Gauge(
    "loyalty_gateway_db_pool_in_use", "Pool connections lent to a request now.", multiprocess_mode="livesum"
)
DB_POOL_WAITING = Gauge(
    "loyalty_gateway_db_pool_waiting", "Requests waiting for a pool connection now.", multiprocess_mode="livesum"
)
DB_POOL_MAX = Gauge(
    "loyalty_gateway_db_pool_max_connections", "Most connections the pool(s) may open.", multiprocess_mode="livesum"
)
DB_QUERY_SECONDS = Histogram(
    "loyalty_gateway_db_query_duration_seconds",
    "Time a request holds a database connection (one statement, with its round trip).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
DB_UNAVAILABLE = Counter(
    "loyalty_gateway_db_unavailable",
    "Database calls answered SERVICE_UNAVAILABLE, by reason "
    "(not_ready, acquire_timeout, unreachable, statement_timeout).",
    ["reason"],
)
READY = Gauge(
    "loyalty_gateway_ready",
    "1 when the last readiness check passed (database reachable, migrations current), else 0.",
    multiprocess_mode="livemin",
)

# --- live subscriptions ----------------------------------------------------------------------------------------------

LIVE_CONNECTIONS = Gauge(
    "loyalty_gateway_live_connections", "WebSocket and SSE connections open now.", multiprocess_mode="livesum"
)
LIVE_SUBSCRIPTIONS = Gauge(
    "loyalty_gateway_live_subscriptions", "Live subscriptions running now.", multiprocess_mode="livesum"
)
LIVE_LISTENING = Gauge(
    "loyalty_gateway_live_listening",
    "1 when the worker's connection that listens to the database's changes is up, else 0 (subscriptions then "
    "hear of nothing until it is back, and get their balance again then).",
    multiprocess_mode="livemin",
)
LIVE_MESSAGES = Counter("loyalty_gateway_live_messages", "Balances sent to live subscribers.")

# --- imports (counted by `loyalty-gateway import`) ------------------------------------------------------------------

IMPORTS = Counter("loyalty_gateway_imports", "Imports run, by outcome (ok or failed).", ["outcome"])
IMPORT_LINES = Counter("loyalty_gateway_import_lines", "Lines read by imports that were applied.")
IMPORT_RECORDS = Counter(
    "loyalty_gateway_import_records", "Records applied by imports, by kind (identifiers: within customers).", ["kind"]
)
IMPORT_SECONDS = Histogram(
    "loyalty_gateway_import_duration_seconds",
    "How long imports took, applied or not.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600),
)


# --- operation names as label values --------------------------------------------------------------------------------

# Operation names come from clients: only so many distinct ones become label
# values, the rest are counted as "other" so that a client cannot grow the
# metrics without bound.
MAX_OPERATION_LABELS = 100
_OPERATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class OperationLabels:
    """The label value for an operation name: itself, "anonymous", "unknown" or "other"."""

    def __init__(self, limit: int = MAX_OPERATION_LABELS) -> None:
        self._known: dict[str | None, str] = {None: "unknown", "": "anonymous"}
        self._limit = limit + len(self._known)

    def __call__(self, name: str | None) -> str:
        label = self._known.get(name)
        if label is not None:
            return label
        if len(self._known) >= self._limit or not _OPERATION_NAME.fullmatch(name or ""):
            return "other"
        self._known[name] = name  # type: ignore[index]
        return name  # type: ignore[return-value]


# --- exposition -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricsOption:
    """`--metrics off|on|PORT|HOST:PORT`: where /metrics is served, if anywhere."""

    enabled: bool
    # None: on the gateway's own port, at /metrics.
    port: int | None = None
    host: str | None = None

    @classmethod
    def parse(cls, value: str) -> MetricsOption:
        text = value.strip().lower()
        if text in {"off", "false", "no", "0"}:
            return cls(enabled=False)
        if text in {"on", "true", "yes", ""}:
            return cls(enabled=True)
        host, _, port = text.rpartition(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--metrics must be off, on, PORT or HOST:PORT, not {value!r}")
        return cls(enabled=True, port=int(port), host=host.strip("[]") or None)

    @property
    def on_main_port(self) -> bool:
        return self.enabled and self.port is None


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROCESS_VARIABLE))


def scrape_registry() -> CollectorRegistry:
    """What a scrape reads: this process's registry, or every process's files in multiprocess mode."""
    if not multiprocess_mode():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def forget_dead_processes() -> None:
    """Drop the gauges of worker processes that are gone (uvicorn replaces a worker that dies)."""
    directory = os.environ.get(MULTIPROCESS_VARIABLE)
    if not directory:
        return
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        pid = path.rsplit("_", 1)[-1].removesuffix(".db")
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            multiprocess.mark_process_dead(int(pid), directory)


def metrics_endpoint(samplers: Sequence[Callable[[], None]]) -> Callable[[Request], Awaitable[Response]]:
    """The `/metrics` handler; the samplers run first (to refresh the sampled gauges)."""
    registry = scrape_registry()

    async def metrics(request: Request) -> Response:
        for sample in samplers:
            sample()
        forget_dead_processes()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


def start_metrics_server(option: MetricsOption, default_host: str) -> tuple[object, object] | None:
    """Serve the metrics on their own port from this process (a daemon thread), if so configured."""
    if option.port is None:
        return None
    from prometheus_client import start_http_server

    return start_http_server(option.port, addr=option.host or default_host, registry=scrape_registry())


@contextlib.contextmanager
def multiprocess_directory(workers: int) -> Iterator[str | None]:
    """With several workers, a fresh PROMETHEUS_MULTIPROC_DIR for this run (unless one is set), removed after.

    Set before the workers start, so that each of them counts into files there.
    """
    if os.environ.get(MULTIPROCESS_VARIABLE):
        yield os.environ[MULTIPROCESS_VARIABLE]
        return
    if workers <= 1:
        yield None
        return
    directory = tempfile.mkdtemp(prefix="loyalty-gateway-metrics-")
    os.environ[MULTIPROCESS_VARIABLE] = directory
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROCESS_VARIABLE, None)
        shutil.rmtree(directory, ignore_errors=True)


# --- the import command ---------------------------------------------------------------------------------------------

IMPORT_LAST_SUCCESS = Gauge(
    "loyalty_gateway_import_last_success_timestamp_seconds",
    "When the last import that was applied finished (Unix time).",
    multiprocess_mode="max",
)
_IMPORT_KINDS = ("orgs", "programs", "customers", "identifiers", "fleets", "balances")
_IMPORT_SAMPLES = [
    "loyalty_gateway_imports_total",
    "loyalty_gateway_import_lines_total",
    "loyalty_gateway_import_records_total",
    "loyalty_gateway_import_duration_seconds_bucket",
    "loyalty_gateway_import_duration_seconds_count",
    "loyalty_gateway_import_duration_seconds_sum",
    "loyalty_gateway_import_last_success_timestamp_seconds",
]


def count_import(summary: object | None, seconds: float) -> None:
    """One import run: its outcome (summary None: failed), and what it applied."""
    IMPORT_SECONDS.observe(seconds)
    if summary is None:
        IMPORTS.labels(outcome="failed").inc()
        return
    IMPORTS.labels(outcome="ok").inc()
    IMPORT_LINES.inc(getattr(summary, "lines", 0))
    for kind in _IMPORT_KINDS:
        IMPORT_RECORDS.labels(kind=kind).inc(getattr(summary, kind))
    IMPORT_LAST_SUCCESS.set_to_current_time()


def write_import_metrics(path: str) -> None:
    """The import metrics of this run, in the text format (for node_exporter's textfile collector)."""
    from prometheus_client import write_to_textfile

    write_to_textfile(path, REGISTRY.restricted_registry(_IMPORT_SAMPLES))
