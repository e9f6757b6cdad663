"""Real servers for tests of what only they show: an app under uvicorn in a thread, or `loyalty-gateway serve`
as a process of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from tests.ports import free_port


@contextmanager
def serving(database_url: str, *flags: str, environment: Mapping[str, str] | None = None) -> Iterator[int]:
    """`loyalty-gateway serve --env production` in a process of its own (its defaults: no LOYALTY_GATEWAY_*
    variable passed on, only those of `environment`); yields its port, stops it with SIGTERM."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("LOYALTY_GATEWAY_")}
    env.update(environment or {})
    command = [
        sys.executable, "-m", "gateway", "serve", "--env", "production", "--database-url", database_url,
        "--port", str(port), "--metrics", str(free_port()), "--log-level", "warning", *flags,
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start listening"
                time.sleep(0.05)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Run app under uvicorn on a free port in a background thread; yield its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
