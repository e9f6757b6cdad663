"""OpenTelemetry traces of requests: off unless OpenTelemetry's standard variables turn them on.

On when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, or
`OTEL_TRACES_EXPORTER` names an exporter (`otlp`, or `console` to read spans on standard output);
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keeps them off. Everything else is the SDK's
own reading of its variables: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`,
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`, `OTEL_PROPAGATORS`. Spans go out over OTLP/HTTP (protobuf).

A request's span is a server span named by method and route, with the GraphQL operation's name, the
caller's org, the status and the outcome's code: never an identifier, a key or a token. Its children
are made afterwards from what the request recorded (observability/requests.py): the document's parse
and validation when it was not cached, each wait for a turn (the org's fair share, a database
connection) and each database statement. Making them afterwards keeps tracing out of the request's
path entirely when it is off: the request record's `trace` stays None and nothing else changes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Span, TracerProvider

logger = logging.getLogger("gateway.observability.tracing")

SERVICE_NAME = "loyalty-gateway"
_ON = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_HTTP_PROTOCOLS = ("http/protobuf", "")


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether OpenTelemetry's variables ask for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(exporter) or any(environ.get(name) for name in _ON)


class Tracing:
    """Spans for requests, handed to the SDK's batch processor (exported off the event loop, in its thread)."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry import propagate, trace

        self.provider = provider
        self.tracer = provider.get_tracer("gateway")
        self._extract = propagate.extract
        self._in_context = trace.set_span_in_context
        self._server = trace.SpanKind.SERVER
        self._client = trace.SpanKind.CLIENT
        self._internal = trace.SpanKind.INTERNAL
        self._error = trace.Status(trace.StatusCode.ERROR)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Tracing | None:
        """Tracing as the OTEL_* variables configure it; None when they do not ask for it."""
        if not tracing_wanted(environ):
            return None
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

        exporters = [name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
        # OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name the service; the SDK's "unknown_service" is ours.
        resource = Resource.create()
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
        provider = TracerProvider(resource=resource)
        for name in exporters:
            exporter: SpanExporter
            if name == "console":
                exporter = ConsoleSpanExporter()
            elif name == "otlp":
                exporter = _otlp_exporter(environ)
            else:
                raise SystemExit(f"OTEL_TRACES_EXPORTER: {name!r} is not supported here; use otlp or console")
            provider.add_span_processor(BatchSpanProcessor(exporter))
        logger.info("tracing on: spans exported by %s", ", ".join(exporters))
        return cls(provider)

    def begin(self, scope: Scope) -> Span:
        """The request's span, a child of the caller's trace when it sent a `traceparent`."""
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        method = scope["method"]
        route = scope.get("root_path", "") + scope["path"]
        attributes = {"http.request.method": method, "http.route": route, "url.path": route}
        span: Span = self.tracer.start_span(
            f"{method} {route}", context=self._extract(headers), kind=self._server, attributes=attributes
        )
        return span

    def end(self, span: Span, record: Any) -> None:
        """Close the request's span with what the request recorded (a RequestRecord) and its children."""
        if not span.is_recording():  # not sampled: nothing of it is exported
            span.end()
            return
        if record.operation:
            span.set_attribute("graphql.operation.name", record.operation)
        if record.org_id is not None:
            span.set_attribute("loyalty.org", record.org_id)
        if record.request_id is not None:
            span.set_attribute("loyalty.request_id", record.request_id)
        span.set_attribute("http.response.status_code", record.status)
        if record.outcome is not None:
            span.set_attribute("loyalty.outcome", record.outcome)
        if record.status >= 500:
            span.set_status(self._error)
        parent = self._in_context(span)
        for name, started, seconds in record.phases:
            client, attributes = _PHASES.get(name, (False, None))
            kind = self._client if client else self._internal
            child = self.tracer.start_span(name, context=parent, kind=kind, attributes=attributes, start_time=started)
            child.end(end_time=started + int(seconds * 1e9))
        span.end()

    def shutdown(self) -> None:
        """Export what is still queued, then stop (blocking: run it in a thread)."""
        self.provider.shutdown()


# A child span's name -> (whether it is a client call, its attributes).
_DATABASE = {"db.system.name": "postgresql", "db.operation.name": "SELECT"}
_PHASES: dict[str, tuple[bool, dict[str, Any] | None]] = {
    "graphql.parse": (False, None),
    "graphql.validate": (False, None),
    "wait for a database connection": (False, None),
    "wait for the org's turn": (False, None),
    "database statement": (True, _DATABASE),
}


def _otlp_exporter(environ: Mapping[str, str]) -> Any:
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", ""))
    if protocol.strip().lower() not in _HTTP_PROTOCOLS:
        raise SystemExit(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: the gateway exports spans over OTLP/HTTP "
            "(http/protobuf, usually port 4318); gRPC is not installed"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()
