"""/metrics: what is counted, under which names, and where it is served."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import Settings
from gateway.observability.metrics import HistogramBuffer, MetricsOption, OperationLabels, start_metrics_server
from tests.importer import synthetic_lines, write_jsonl
from tests.operations import TOM_EMAIL, lookup, seed_tom
from tests.operations.conftest import running_app
from tests.test_cli import free_port

NAMES = (
    "loyalty_gateway_requests_total",
    "loyalty_gateway_request_duration_seconds_bucket",
    "loyalty_gateway_requests_in_flight",
    "loyalty_gateway_requests_waiting",
    "loyalty_gateway_db_pool_connections",
    "loyalty_gateway_db_pool_in_use",
    "loyalty_gateway_db_pool_waiting",
    "loyalty_gateway_db_pool_max_connections",
    "loyalty_gateway_db_query_duration_seconds_bucket",
    "loyalty_gateway_db_unavailable_total",
    "loyalty_gateway_rate_limit_rejections_total",
    "loyalty_gateway_ready",
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests(operation: str, outcome: str) -> float:
    labels = {"operation": operation, "outcome": outcome}
    return REGISTRY.get_sample_value("loyalty_gateway_requests_total", labels) or 0.0


async def test_requests_are_counted_by_operation_and_outcome(database_url):
    key = await seed_tom(database_url)
    counted = [("TomBalance", "OK"), ("TomBalance", "CUSTOMER_NOT_FOUND"), ("unknown", "UNAUTHENTICATED")]
    counted += [("anonymous", "OK")]
    before = {pair: requests(*pair) for pair in counted}
    latency_before = REGISTRY.get_sample_value(
        "loyalty_gateway_request_duration_seconds_count", {"operation": "TomBalance"}
    )
    async with running_app(Settings(database_url=database_url, metrics="on")) as client:
        for _ in range(3):
            assert (await lookup(client, key)).status_code == 200
        nobody = {"identifiers": [{"type": "EMAIL", "value": "nobody@example.com"}]}
        await lookup(client, key, nobody)
        assert (await lookup(client, "lgw_0123456789ab_" + "x" * 43)).status_code == 401
        await client.post("/graphql", json={"query": "{ __typename }"}, headers={"authorization": f"Bearer {key}"})
        response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    scraped = samples(response.text)
    names = {name for name, _ in scraped}
    assert set(NAMES) <= names, set(NAMES) - names
    after = {pair: requests(*pair) for pair in counted}
    assert {pair: after[pair] - before[pair] for pair in counted} == {
        ("TomBalance", "OK"): 3,
        ("TomBalance", "CUSTOMER_NOT_FOUND"): 1,
        ("unknown", "UNAUTHENTICATED"): 1,
        ("anonymous", "OK"): 1,
    }
    latency = REGISTRY.get_sample_value("loyalty_gateway_request_duration_seconds_count", {"operation": "TomBalance"})
    assert latency - (latency_before or 0) == 4
    assert scraped[("loyalty_gateway_requests_in_flight", ())] == 0
    assert scraped[("loyalty_gateway_requests_waiting", ())] == 0
    assert scraped[("loyalty_gateway_db_pool_max_connections", ())] == Settings().pool_max_size
    assert scraped[("loyalty_gateway_db_pool_connections", ())] >= 1
    assert TOM_EMAIL.lower() not in response.text.lower()


async def test_metrics_can_be_turned_off(database_url):
    key = await seed_tom(database_url)
    async with running_app(Settings(database_url=database_url, metrics="off")) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await lookup(client, key)).status_code == 200


async def test_metrics_can_be_served_on_a_port_of_their_own(database_url):
    port = free_port()
    option = MetricsOption.parse(str(port))
    key = await seed_tom(database_url)
    server = start_metrics_server(option, "127.0.0.1")
    assert server is not None
    try:
        async with running_app(Settings(database_url=database_url, metrics=str(port))) as client:
            assert (await client.get("/metrics")).status_code == 404
            assert (await lookup(client, key)).status_code == 200
            async with httpx.AsyncClient() as scraper:
                scraped = await scraper.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        server[0].shutdown()  # type: ignore[index]
    assert 'loyalty_gateway_requests_total{operation="TomBalance",outcome="OK"}' in scraped.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on", MetricsOption(enabled=True)),
        ("off", MetricsOption(enabled=False)),
        ("9100", MetricsOption(enabled=True, port=9100)),
        ("0.0.0.0:9100", MetricsOption(enabled=True, port=9100, host="0.0.0.0")),
        ("[::1]:9100", MetricsOption(enabled=True, port=9100, host="::1")),
    ],
)
def test_the_metrics_option_is_off_on_or_a_port(text, expected):
    assert MetricsOption.parse(text) == expected


@pytest.mark.parametrize("text", ["maybe", "0", "70000", "host:", ":x"])
def test_a_bad_metrics_option_is_refused(text):
    if text == "0":  # "0" reads as off
        assert MetricsOption.parse(text) == MetricsOption(enabled=False)
        return
    with pytest.raises(ValueError, match="--metrics"):
        MetricsOption.parse(text)


def test_client_chosen_operation_names_cannot_grow_the_metrics_without_bound():
    labels = OperationLabels(limit=3)
    assert [labels(name) for name in ("A", "B", "C", "D", "A")] == ["A", "B", "C", "other", "A"]
    assert labels(None) == "unknown"
    assert labels("") == "anonymous"
    assert labels("x" * 65) == "other"


def _import(database_url: str, path: Path, metrics_file: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gateway", "import", str(path), "--no-progress"]
    command += ["--database-url", database_url, "--metrics-file", str(metrics_file)]
    environment = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment)


def test_the_import_command_counts_what_it_imported(database_url, tmp_path: Path):
    good = write_jsonl(tmp_path / "good.jsonl", synthetic_lines(100))
    result = _import(database_url, good, tmp_path / "good.prom")
    assert result.returncode == 0, result.stderr
    counted = samples((tmp_path / "good.prom").read_text())
    assert counted[("loyalty_gateway_imports_total", (("outcome", "ok"),))] == 1
    assert counted[("loyalty_gateway_import_records_total", (("kind", "customers"),))] == 100
    assert counted[("loyalty_gateway_import_records_total", (("kind", "balances"),))] == 200
    assert counted[("loyalty_gateway_import_lines_total", ())] == len(good.read_text().splitlines())
    assert counted[("loyalty_gateway_import_last_success_timestamp_seconds", ())] > 0

    bad = write_jsonl(tmp_path / "bad.jsonl", ['{"kind": "nope"}'])
    result = _import(database_url, bad, tmp_path / "bad.prom")
    assert result.returncode == 1
    counted = samples((tmp_path / "bad.prom").read_text())
    assert counted[("loyalty_gateway_imports_total", (("outcome", "failed"),))] == 1
    assert counted[("loyalty_gateway_import_lines_total", ())] == 0


def test_observations_added_up_in_the_worker_publish_what_observing_each_would_have() -> None:
    buckets = (0.001, 0.01, 0.1, 1.0)
    registry = CollectorRegistry()
    direct = Histogram("direct_seconds", "each observed", buckets=buckets, registry=registry)
    buffered = Histogram("buffered_seconds", "added up", buckets=buckets, registry=registry)
    buffer = HistogramBuffer(buffered)
    # Bounds themselves (a value equal to a bound is in that bucket), between them, beyond the last, and zero.
    values = [0.0, 0.001, 0.0010001, 0.005, 0.01, 0.1, 0.5, 1.0, 1.5, 30.0] * 3
    for value in values[:12]:
        direct.observe(value)
        buffer.observe(value)
    buffer.publish()
    for value in values[12:]:
        direct.observe(value)
        buffer.observe(value)
    # Nothing reaches the histogram until published; then all of it, once.
    assert registry.get_sample_value("buffered_seconds_count") == 12
    buffer.publish()
    buffer.publish()
    for suffix, labels in [
        ("_count", {}),
        ("_sum", {}),
        *(("_bucket", {"le": le}) for le in ("0.001", "0.01", "0.1", "1.0", "+Inf")),
    ]:
        assert registry.get_sample_value(f"buffered_seconds{suffix}", labels) == pytest.approx(
            registry.get_sample_value(f"direct_seconds{suffix}", labels)
        ), (suffix, labels)
