"""The contenders: how each is started on the bench's database, checked, and stopped."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from checkout import GatewaySource, current_gateway, gateway_path
from database import BENCH_DIR, WORK_DIR, Postgres
from dataset import Request, gateway_command
from peers import PostGraphileInstall

LOG_DIR = WORK_DIR / "logs"
HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Contender:
    name: str  # short, for the table: gateway-1w, floor, postgraphile
    description: str
    port: int
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = BENCH_DIR
    # Which requests it takes: "gateway" (also the floor), "postgraphile", or "rest" (the gateway's REST endpoint).
    dialect: str = "gateway"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def gateway(
    postgres: Postgres,
    *,
    workers: int,
    pool_size: int,
    port: int,
    source: GatewaySource | None = None,
    extra: Sequence[str] = (),
    name: str | None = None,
    default_rate_limits: bool = False,
    environment: Mapping[str, str] | None = None,
    log_level: str = "warning",
) -> Contender:
    """`loyalty-gateway serve`: the working tree's gateway as copied at the start of the run (gateway-Nw), or
    with `source` the gateway's code at another git ref (gateway@REF).

    `extra` flags follow the bench's own (e.g. --trusted-documents-only); `name` replaces the default name.
    With `default_rate_limits` the per-key rate limit is the gateway's default instead of far above the load.
    `environment` adds variables to the server's environment (e.g. OpenTelemetry's OTEL_*), over the bench's own.
    """
    command = gateway_command(
        "serve", "--database-url", postgres.url, "--host", HOST, "--port", str(port), "--workers", str(workers),
        "--pool-max-size", str(pool_size), "--log-level", log_level, *extra,
    )  # fmt: skip
    env = {
        # The same fixed pool as the others: open every connection at start.
        "LOYALTY_GATEWAY_POOL_MIN_SIZE": str(pool_size),
        # The per-key rate limit stays on (its cost is part of every request) but far above the load.
        "LOYALTY_GATEWAY_RATE_LIMIT": "1000000",
        "LOYALTY_GATEWAY_RATE_LIMIT_BURST": "1000000",
        # /metrics beside /graphql, where every gateway version serves it with "on": production's default of a
        # port of its own (9464) could collide with other servers on a shared machine. /graphql's path is the same.
        "LOYALTY_GATEWAY_METRICS": "on",
    }
    if default_rate_limits:
        del env["LOYALTY_GATEWAY_RATE_LIMIT"], env["LOYALTY_GATEWAY_RATE_LIMIT_BURST"]
    env.update(environment or {})
    noun = "worker" if workers == 1 else "workers"
    default_name = f"gateway@{source.ref}" if source is not None else f"gateway-{workers}w"
    source = source or current_gateway()
    # The same interpreter and venv; the copy's `gateway` package comes first on sys.path (ahead of the
    # editable install's finder, which sits at the end of sys.meta_path), and uvicorn's workers inherit it.
    env.update(gateway_path(source))
    description = f"the gateway ({source.description}), {workers} {noun}"
    return Contender(name or default_name, description, port, command, env, source.path)


def floor(postgres: Postgres, *, pool_size: int, port: int, keys_file: Path) -> Contender:
    command = [
        sys.executable, "-m", "uvicorn", "floor:app", "--app-dir", str(BENCH_DIR), "--host", HOST,
        "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    env = {"BENCH_DATABASE_URL": postgres.url, "BENCH_POOL_SIZE": str(pool_size), "BENCH_KEYS_FILE": str(keys_file)}
    return Contender("floor", "starlette + asyncpg + orjson, same SQL, no GraphQL", port, command, env)


def postgraphile(postgres: Postgres, install: PostGraphileInstall, *, pool_size: int, port: int) -> Contender:
    env = {
        "GRAPHILE_ENV": "production",
        "NODE_ENV": "production",
        "BENCH_PG_HOST": str(postgres.socket_dir),
        "BENCH_PG_USER": postgres.user,
        "BENCH_PG_DATABASE": postgres.database,
        "BENCH_POOL_SIZE": str(pool_size),
        "HOST": HOST,
        "PORT": str(port),
    }
    return Contender(
        "postgraphile",
        "PostGraphile 5.1.5, amber preset, a SQL function as a query field, no auth",
        port,
        [str(install.node), str(install.server)],
        env,
        install.server.parent,
        "postgraphile",
    )


@dataclass(slots=True)
class Running:
    contender: Contender
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def origin(self) -> str:
        """http://host:port, without /graphql."""
        return f"http://{HOST}:{self.contender.port}"

    @property
    def psutil(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running(contender: Contender, probe: Request, timeout: float = 90.0) -> Iterator[Running]:
    """Start the contender in its own process group; the whole group is stopped when the block exits."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{_file_name(contender.name)}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            contender.command,
            cwd=contender.cwd,
            env={**os.environ, **contender.env},
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Running(contender, process, f"http://{HOST}:{contender.port}/graphql", log)
    try:
        _wait_ready(server, probe, timeout)
        yield server
    finally:
        stop(server)


def _file_name(name: str) -> str:
    # Contender names may hold a git ref (gateway@origin/main) or spaces.
    return re.sub(r"[^A-Za-z0-9@._-]+", "_", name)


def stop(server: Running) -> None:
    """SIGTERM to the server's process group, SIGKILL after 15 s."""
    if server.process.poll() is not None:
        return
    group = os.getpgid(server.process.pid)
    os.killpg(group, signal.SIGTERM)
    try:
        server.process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(group, signal.SIGKILL)
        server.process.wait()
    # Worker processes of a group whose leader has exited.
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def _wait_ready(server: Running, probe: Request, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.contender.name} exited ({server.process.returncode}):\n{server.log_tail()}")
        try:
            answer = httpx.request(**http_request(server, probe), timeout=5)
            if answer.status_code == 200:
                return
            last = f"HTTP {answer.status_code}: {answer.text[:500]}"
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.25)
    raise RuntimeError(f"{server.contender.name} did not answer within {timeout:.0f} s: {last}\n{server.log_tail()}")


def headers(request: Request) -> dict[str, str]:
    out = {"accept": "application/json"}
    if not request.target:  # a GET has no body
        out["content-type"] = "application/json"
    if request.api_key:
        out["authorization"] = f"Bearer {request.api_key}"
    return out


def http_request(server: Running, request: Request) -> dict[str, Any]:
    """httpx's arguments for one request: a POST of its body to /graphql, or a GET of its target."""
    if request.target:
        return {"method": "GET", "url": server.origin + request.target, "headers": headers(request)}
    return {"method": "POST", "url": server.url, "content": request.body, "headers": headers(request)}


def check_answers(server: Running, requests: Sequence[Request], concurrency: int = 8) -> list[dict[str, Any]]:
    """Send every request once; fail loudly on any error or wrong entity. Returns the pointsBalance answers (a REST
    request's answer is the balance itself)."""
    return asyncio.run(_check_answers(server, requests, concurrency))


async def _check_answers(server: Running, requests: Sequence[Request], concurrency: int) -> list[dict[str, Any]]:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(request: Request) -> dict[str, Any]:
            async with limit:
                answer = await client.request(**http_request(server, request))
            if answer.status_code != 200:
                raise RuntimeError(f"{server.contender.name}: HTTP {answer.status_code}: {answer.text[:500]}")
            payload = orjson.loads(answer.content)
            balance = payload if request.target else (payload.get("data") or {}).get("pointsBalance")
            if payload.get("errors") or not balance or balance.get("entityId") != str(request.customer_id):
                sent = request.target or request.body.decode()
                raise RuntimeError(f"{server.contender.name} answered wrongly for {sent}:\n{answer.text[:1000]}")
            found: dict[str, Any] = balance
            return found

        return list(await asyncio.gather(*(one(request) for request in requests)))
