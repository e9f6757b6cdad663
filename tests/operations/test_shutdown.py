"""SIGTERM on a real `loyalty-gateway serve`: stop accepting, finish what is in flight, exit 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.operations import lookup, seed_tom
from tests.operations.test_metrics import samples
from tests.test_cli import free_port


class Serve:
    """`loyalty-gateway serve` in a process of its own, on a free port, logging to a file."""

    def __init__(self, database_url: str, log: Path, *args: str) -> None:
        self.port = free_port()
        self.log = log
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALTY_GATEWAY_", "PROMETHEUS"))}
        # Slow lookups here are made slow on purpose (a lock held by the test): no timeout may end them first.
        environment |= {
            "LOYALTY_GATEWAY_STATEMENT_TIMEOUT": "60",
            "LOYALTY_GATEWAY_REQUEST_TIMEOUT": "60",
            "LOYALTY_GATEWAY_RATE_LIMIT": "0",
        }
        command = [sys.executable, "-m", "gateway", "serve", "--database-url", database_url]
        command += ["--port", str(self.port), "--log-format", "text", "--metrics", "on", *args]
        with log.open("w") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment)
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                assert self.process.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, f"serve was not ready in {within} s:\n{self.log.read_text()}"
                await asyncio.sleep(0.1)

    def accepts_connections(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    async def exit_status(self, within: float = 30.0) -> int:
        try:
            return await asyncio.to_thread(self.process.wait, within)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not exit within {within} s of SIGTERM:\n{self.log.read_text()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextlib.asynccontextmanager
async def balances_locked(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """The balances table locked by a transaction of the test's: lookups wait until the block ends."""
    connection = await asyncpg.connect(database_url)
    transaction = connection.transaction()
    await transaction.start()
    try:
        await connection.execute("LOCK TABLE balances IN ACCESS EXCLUSIVE MODE")
        yield connection
    finally:
        await transaction.rollback()
        await connection.close()


async def wait_for_a_lookup_on_the_lock(connection: asyncpg.Connection, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await connection.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'loyalty-gateway' AND wait_event_type = 'Lock'"
    ):
        assert time.monotonic() < deadline, "the lookup never reached the lock"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(database_url, tmp_path, workers):
    key = await seed_tom(database_url)
    serve = Serve(database_url, tmp_path / "serve.log", "--workers", str(workers), "--shutdown-grace", "20")
    try:
        await serve.ready()
        async with httpx.AsyncClient(base_url=serve.url, timeout=60) as client:
            answered = [await lookup(client, key) for _ in range(10)]
            assert {response.status_code for response in answered} == {200}
            scraped = samples((await client.get("/metrics")).text)
            async with balances_locked(database_url) as locker:
                in_flight = asyncio.create_task(lookup(client, key))
                await wait_for_a_lookup_on_the_lock(locker)
                serve.process.send_signal(signal.SIGTERM)
                if workers == 1:
                    # The listening socket closes at once (with several workers the parent holds it to the end).
                    deadline = time.monotonic() + 10
                    while serve.accepts_connections():
                        assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
                        await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
                assert serve.process.poll() is None, "exited with a request in flight"
                assert not in_flight.done()
            # The lock is gone: the lookup completes, then the gateway exits.
            response = await in_flight
        assert response.status_code == 200, response.text
        assert response.json()["data"]["pointsBalance"]["mainPoints"] == "8500.000"
        assert await serve.exit_status() == 0, serve.log.read_text()
    finally:
        serve.kill()
    # Every worker's requests are in the one scrape (prometheus multiprocess mode with several workers).
    assert scraped[("loyalty_gateway_requests_total", (("operation", "TomBalance"), ("outcome", "OK")))] == 10


async def test_a_request_still_running_after_the_grace_period_is_cut_and_the_gateway_exits_0(database_url, tmp_path):
    key = await seed_tom(database_url)
    serve = Serve(database_url, tmp_path / "serve.log", "--shutdown-grace", "1")
    try:
        await serve.ready()
        async with httpx.AsyncClient(base_url=serve.url, timeout=60) as client:
            assert (await lookup(client, key)).status_code == 200
            async with balances_locked(database_url) as locker:
                in_flight = asyncio.create_task(lookup(client, key))
                await wait_for_a_lookup_on_the_lock(locker)
                signalled = time.monotonic()
                serve.process.send_signal(signal.SIGTERM)
                assert await serve.exit_status() == 0, serve.log.read_text()
                waited = time.monotonic() - signalled
                response = await in_flight
    finally:
        serve.kill()
    assert waited >= 1.0
    # The client is told, in the API's own terms, rather than left with a dropped connection.
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["x-request-id"]
    log = serve.log.read_text()
    assert "timeout graceful shutdown exceeded" in log
    assert "503 SERVICE_UNAVAILABLE TomBalance org 100737" in log
