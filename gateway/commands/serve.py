"""serve: the gateway under uvicorn, with one worker or several."""

from __future__ import annotations

import sys
from typing import Any

from gateway.commands import database_url
from gateway.config import Settings


def serve(settings: Settings) -> int:
    import asyncio

    import uvicorn

    from gateway.access.limits import configuration_problems
    from gateway.app import create_app
    from gateway.importer.demo.welcome import prepare_demo

    problems = configuration_problems(settings)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 2
    from gateway.observability.logs import configure_logging, log_format
    from gateway.observability.metrics import MetricsOption, multiprocess_directory, start_metrics_server

    try:
        metrics = MetricsOption.parse(settings.metrics_where)
        configure_logging(settings.log_level, log_format(settings))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = settings.with_overrides(database_url=database_url(settings))
    example_query = None
    if settings.demo:
        demo = asyncio.run(prepare_demo(settings))
        settings = settings.with_overrides(demo_api_key=demo.api_key)
        example_query = demo.example_query
        print(demo.banner(settings), flush=True)
    _exit_zero_after_graceful_stop()
    # Several workers count into files of a directory of this run; a scrape of any of them adds them up.
    with multiprocess_directory(settings.workers):
        # Metrics on a port of their own are served by this process (the workers' parent, with several).
        try:
            metrics_server = start_metrics_server(metrics, settings.host)
        except OSError as error:
            print(
                f"error: cannot serve metrics on port {metrics.port}: {error.strerror}; give each gateway on this "
                "host a --metrics port of its own, or --metrics on (beside GraphQL) or off",
                file=sys.stderr,
            )
            return 2
        try:
            if settings.workers > 1:
                import os

                from gateway.app import SETTINGS_VARIABLE, settings_to_environment

                os.environ[SETTINGS_VARIABLE] = settings_to_environment(settings, example_query)
                uvicorn.run(
                    "gateway.app:create_app_from_environment",
                    factory=True,
                    workers=settings.workers,
                    **uvicorn_options(settings),
                )
            else:
                uvicorn.run(create_app(settings, example_query=example_query), **uvicorn_options(settings))
        finally:
            if metrics_server is not None:
                metrics_server[0].shutdown()  # type: ignore[index]
    return 0


def _exit_zero_after_graceful_stop() -> None:
    """After a graceful shutdown uvicorn raises the SIGTERM/SIGINT it caught again, for the handler it
    found in place. With this one the process then simply returns from `serve`: exit status 0."""
    import signal

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: None)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    from gateway.edge.one_write import http_protocol

    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        # uvloop and httptools: the fastest event loop and HTTP parser uvicorn has; each answer in one write.
        "loop": "uvloop",
        "http": http_protocol(),
        # The gateway logs its own line per request.
        "access_log": False,
        # No `server: uvicorn` on every answer: it tells clients nothing they need (and attackers what runs here).
        "server_header": False,
        # Nothing reads the client's address, so X-Forwarded-For is not worth rewriting on every request.
        "proxy_headers": False,
        # uvicorn's loggers go through the gateway's handler (JSON or text).
        "log_config": None,
        # SIGTERM: stop accepting, give in-flight requests this long, then close the pool and exit.
        "timeout_graceful_shutdown": settings.shutdown_grace,
    }
