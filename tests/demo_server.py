"""`loyalty-gateway serve --demo` as a newcomer runs it: a real process on a free port, with its API key."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.ports import free_port

_KEY_LINE = re.compile(r"\s*(lgw_[0-9a-f]{12}_[A-Za-z0-9_-]{43})\s*")


@dataclass(frozen=True, slots=True)
class DemoServer:
    url: str  # http://127.0.0.1:PORT, without a path
    key: str  # the API key the banner printed (org 100737, Acme)
    directory: Path  # its working directory: .venv links to this environment, the embedded database is here


@contextmanager
def demo_server(directory: Path, *flags: str, timeout: float = 120) -> Iterator[DemoServer]:
    """Start `serve --demo` in directory (with extra flags), wait until it is ready, stop it with SIGTERM."""
    if not (directory / ".venv").exists():
        (directory / ".venv").symlink_to(sys.prefix)
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    command = [".venv/bin/loyalty-gateway", "serve", "--demo", "--port", str(port), *flags]
    server = subprocess.Popen(
        command, cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert server.stdout is not None
        key = None
        deadline = time.monotonic() + timeout
        while key is None:
            line = server.stdout.readline()
            assert line, "serve --demo exited before printing its key"
            found = _KEY_LINE.fullmatch(line)
            key = found[1] if found else None
            assert time.monotonic() < deadline
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                httpx.get(f"{url}/readyz").raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "serve --demo did not become ready"
                time.sleep(0.2)
        yield DemoServer(url, key, directory)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
