"""The limits where a socket matters, against a real uvicorn on a free port.

Body size is enforced while the body streams in: a huge declared body is
refused before it is sent, a huge chunked one is cut off long before it
ends. Retry-After and CORS preflights go over a real connection too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

from gateway.app import create_app
from gateway.config import Settings
from tests.factories import Seed
from tests.ports import free_port

ORG = 100737
ORIGIN = "https://app.example.com"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, rate_limit=1.0, rate_limit_burst=1, cors_origins=ORIGIN)


@pytest.fixture
async def server(settings: Settings, connection: Any) -> AsyncIterator[tuple[str, int, str]]:
    """(host, port, API key) of the gateway served by uvicorn, as `serve` runs it."""
    seed = Seed(connection)
    await seed.org(ORG)
    key = await seed.api_key(ORG)
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, http="httptools", log_level="warning", lifespan="on"
    )
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    for _ in range(500):
        if served.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert served.started, "uvicorn did not start"
    try:
        yield "127.0.0.1", port, key
    finally:
        served.should_exit = True
        await asyncio.wait_for(task, 10)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 5)
    return status, headers, body


async def test_a_declared_huge_body_is_refused_before_it_is_sent(server):
    host, port, key = server
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {1 << 30}\r\n\r\n".encode()
        )
        await writer.drain()
        status, headers, body = await read_response(reader)
        assert status == 413
        assert b'"PAYLOAD_TOO_LARGE"' in body
        assert headers["connection"] == "close"
        # The server hangs up rather than read a gigabyte it will not use.
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


async def test_a_huge_chunked_body_is_cut_off_long_before_its_end(server):
    host, port, key = server
    reader, writer = await asyncio.open_connection(host, port)
    chunk = b"x" * 65536
    total = 256 * len(chunk)  # 16 MiB, more than any socket buffer holds
    sent = 0
    try:
        writer.write(
            f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        start = b'{"query": "{ __typename }", "padding": "'
        writer.write(f"{len(start):x}\r\n".encode() + start + b"\r\n")
        answer = asyncio.create_task(read_response(reader))
        while sent < total and not answer.done():
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
            try:
                await asyncio.wait_for(writer.drain(), 0.2)
            except (TimeoutError, ConnectionError):
                # The server stopped reading: what is left cannot be sent.
                break
            await asyncio.sleep(0)
        status, _, body = await answer
        assert status == 413
        assert b'"PAYLOAD_TOO_LARGE"' in body
        assert sent < total, "the whole body was accepted before the answer"
    finally:
        writer.close()


async def test_a_body_within_the_limit_streams_in_chunks(server):
    host, port, key = server

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "padding": "'
        for _ in range(10):
            yield b"x" * 4096
        yield b'"}'

    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"http://{host}:{port}/graphql",
            content=chunks(),
            headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        )
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_a_rate_limited_answer_carries_retry_after(server):
    host, port, key = server
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
        headers = {"authorization": f"Bearer {key}"}
        assert (await client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)).status_code == 200
        refused = await client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["errors"][0]["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 1}
        await asyncio.sleep(1.05)
        assert (await client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)).status_code == 200


async def test_a_cors_preflight_over_a_real_connection(server):
    host, port, key = server
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
        preflight = await client.options(
            "/graphql",
            headers={
                "origin": ORIGIN,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert preflight.headers["access-control-max-age"] == "600"
        actual = await client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": ORIGIN, "authorization": f"Bearer {key}"}
        )
        assert actual.headers["access-control-allow-origin"] == ORIGIN
        assert "x-request-id" in actual.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize("path", ["/elsewhere", "/graphql/elsewhere"])
async def test_a_websocket_upgrade_elsewhere_is_refused_with_json(server, path):
    """WebSockets are served on /graphql alone: elsewhere the upgrade gets a JSON answer with a code."""
    host, port, _ = server
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(f"ws://{host}:{port}{path}", open_timeout=5):
            pass
    response = refused.value.response
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    body = json.loads(response.body)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
