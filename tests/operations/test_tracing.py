"""Traces through the real server: `loyalty-gateway serve` with OpenTelemetry's variables exports its spans over
OTLP/HTTP to a collector (here a real OTLP/HTTP endpoint in the test, decoding what the SDK's exporter sends)."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage

from gateway.observability.tracing import Tracing, tracing_wanted
from tests.operations import BY_ID, LOOKUP, ORG, TOM, TOM_EMAIL, seed_tom
from tests.serving import serving


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    start: int
    end: int
    attributes: dict[str, Any]
    resource: dict[str, Any]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Collector:
    """An OTLP/HTTP trace receiver: POST /v1/traces with a protobuf ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.bodies: list[bytes] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                collector.receive(self.path, body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def receive(self, path: str, body: bytes) -> None:
        assert path == "/v1/traces", path
        self.bodies.append(body)
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        Span(
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            span.kind,
                            span.start_time_unix_nano,
                            span.end_time_unix_nano,
                            {a.key: _value(a.value) for a in span.attributes},
                            resource,
                        )
                    )

    def __enter__(self) -> Collector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, condition: Any, count: int = 1, timeout: float = 15.0) -> list[Span]:
        """The spans received that meet the condition, once there are at least `count` of them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [span for span in list(self.spans) if condition(span)]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no such span among {[(s.name, s.trace_id) for s in self.spans]}")


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as running:
        yield running


def environment(collector: Collector) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
        "OTEL_SERVICE_NAME": "gateway-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }


def children(spans: list[Span], parent: Span) -> dict[str, list[Span]]:
    found: dict[str, list[Span]] = {}
    for span in spans:
        if span.trace_id == parent.trace_id and span.parent_id == parent.span_id:
            found.setdefault(span.name, []).append(span)
    return found


async def test_a_lookup_is_one_server_span_in_the_callers_trace_with_its_parse_validation_and_statement(
    database_url: str, collector: Collector
) -> None:
    key = await seed_tom(database_url)
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    by_email = {"identifiers": [{"type": "EMAIL", "value": TOM_EMAIL}]}
    with serving(database_url, environment=environment(collector)) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            headers = {"authorization": f"Bearer {key}", "traceparent": f"00-{trace_id}-{caller_span}-01"}
            first = await client.post("/graphql", json={"query": LOOKUP, "variables": by_email}, headers=headers)
            assert first.json()["data"]["pointsBalance"]["entityId"] == str(TOM)
            again = await client.post("/graphql", json={"query": LOOKUP, "variables": BY_ID}, headers=headers)
            assert again.status_code == 200
        servers = collector.wait_for(
            lambda span: span.trace_id == trace_id and span.kind == SpanMessage.SPAN_KIND_SERVER, count=2
        )
    servers.sort(key=lambda span: span.start)
    assert len(servers) == 2
    spans = list(collector.spans)
    for server in servers:
        # A child of the caller's span, named by method and route, with the operation and the org.
        assert server.parent_id == caller_span
        assert server.name == "POST /graphql"
        assert server.attributes["graphql.operation.name"] == "TomBalance"
        assert server.attributes["loyalty.org"] == ORG
        assert server.attributes["http.response.status_code"] == 200
        assert server.resource["service.name"] == "gateway-under-test"
        statements = children(spans, server)["database statement"]
        assert len(statements) == 1
        assert statements[0].attributes["db.system.name"] == "postgresql"
        assert statements[0].kind == SpanMessage.SPAN_KIND_CLIENT
        for child in statements:
            assert server.start <= child.start <= child.end <= server.end
    # The document was parsed and validated for the first request only: the second found it cached.
    first_children, second_children = children(spans, servers[0]), children(spans, servers[1])
    assert {"graphql.parse", "graphql.validate"} <= first_children.keys()
    assert not {"graphql.parse", "graphql.validate"} & second_children.keys()
    # Never an identifier's value, nor the key: not in any attribute, not anywhere in what was sent.
    exported = b"".join(collector.bodies)
    for secret in (TOM_EMAIL, str(TOM), key):
        assert secret.encode() not in exported, secret


async def test_a_request_that_waits_for_a_connection_has_a_span_for_the_wait(
    database_url: str, collector: Collector
) -> None:
    key = await seed_tom(database_url)
    with serving(database_url, "--pool-max-size", "1", environment=environment(collector)) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            body = {"query": LOOKUP, "variables": BY_ID}
            answers = await asyncio.gather(
                *(client.post("/graphql", json=body, headers={"authorization": f"Bearer {key}"}) for _ in range(16))
            )
            assert [answer.status_code for answer in answers] == [200] * 16
        waits = collector.wait_for(lambda span: span.name == "wait for a database connection")
    servers = {span.span_id: span for span in collector.spans if span.kind == SpanMessage.SPAN_KIND_SERVER}
    for wait in waits:
        server = servers[wait.parent_id]
        assert server.start <= wait.start <= wait.end <= server.end


def test_traces_are_on_only_when_opentelemetrys_variables_ask() -> None:
    assert not tracing_wanted({})
    assert Tracing.from_environment({}) is None
    assert tracing_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_wanted({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing_wanted({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert not tracing_wanted({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    with pytest.raises(SystemExit, match="gRPC"):
        Tracing.from_environment(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
        )


async def test_spans_still_queued_at_shutdown_are_sent_before_the_gateway_exits(
    database_url: str, collector: Collector
) -> None:
    key = await seed_tom(database_url)
    # Batches would wait a minute: only the shutdown sends them.
    slow_batches = {**environment(collector), "OTEL_BSP_SCHEDULE_DELAY": "60000"}
    with serving(database_url, environment=slow_batches) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            answer = await client.post(
                "/graphql", json={"query": LOOKUP, "variables": BY_ID}, headers={"authorization": f"Bearer {key}"}
            )
            assert answer.status_code == 200
        await asyncio.sleep(0.5)
        assert not collector.spans
    # serving() has stopped the gateway (SIGTERM) and waited for it to exit.
    servers = [span for span in collector.spans if span.kind == SpanMessage.SPAN_KIND_SERVER]
    assert [span.attributes["graphql.operation.name"] for span in servers] == ["TomBalance"]


async def test_requests_the_sampler_leaves_out_send_no_span_and_record_no_steps(
    database_url: str, collector: Collector
) -> None:
    key = await seed_tom(database_url)
    never = {**environment(collector), "OTEL_TRACES_SAMPLER": "always_off"}
    with serving(database_url, environment=never) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(3):
                answer = await client.post(
                    "/graphql", json={"query": LOOKUP, "variables": BY_ID}, headers={"authorization": f"Bearer {key}"}
                )
                assert answer.status_code == 200
    # The gateway has exited, sending whatever it had queued: nothing.
    assert collector.spans == []
