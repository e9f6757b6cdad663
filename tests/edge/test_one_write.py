"""An answer's head and body leave in one write to the socket (gateway/edge/one_write.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from uvicorn.config import Config
from uvicorn.server import ServerState

from gateway.commands.serve import uvicorn_options
from gateway.config import Settings
from gateway.edge.one_write import HeadWithBody, OneWriteHttpToolsProtocol
from tests.serving import serving

REQUEST = b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Length: 2\r\n\r\n{}"


class Transport(asyncio.Transport):
    """What uvicorn's protocol asks of a socket's transport, with every write recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def answer_with(app: Any, request: bytes = REQUEST) -> Transport:
    """One request through the protocol the gateway serves with; the transport it wrote to."""
    transport = Transport()
    protocol = OneWriteHttpToolsProtocol(Config(app, log_config=None), ServerState(), {}, asyncio.get_running_loop())
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(50):
        await asyncio.sleep(0)
        if protocol.cycle is not None and protocol.cycle.response_complete:
            break
    await asyncio.sleep(0)
    assert protocol.cycle.response_complete
    return transport


async def test_an_answer_is_one_write_of_its_head_and_body() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"11")]})
        await send({"type": "http.response.body", "body": b'{"data":{}}'})

    transport = await answer_with(app)
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b'\r\n\r\n{"data":{}}')


async def test_a_head_whose_body_comes_later_is_written_at_once_and_the_body_after_it() -> None:
    later = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await later.wait()
        await send({"type": "http.response.body", "body": b"event", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    transport = Transport()
    protocol = OneWriteHttpToolsProtocol(Config(app, log_config=None), ServerState(), {}, asyncio.get_running_loop())
    protocol.connection_made(transport)
    protocol.data_received(REQUEST)
    for _ in range(10):
        await asyncio.sleep(0)
    # The head did not wait for the body: a stream's client sees its status at once.
    assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    later.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert b"".join(transport.writes[1:]) == b"5\r\nevent\r\n0\r\n\r\n"


async def test_closing_writes_a_head_still_held_first() -> None:
    transport = Transport()
    view = HeadWithBody(transport, True)
    view.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n")
    assert transport.writes == []
    view.close()
    assert transport.writes == [b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n"] and transport.closed


async def test_the_answer_to_a_head_request_is_written_at_once() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"11")]})
        await send({"type": "http.response.body", "body": b'{"data":{}}'})

    transport = await answer_with(app, b"HEAD /graphql HTTP/1.1\r\nHost: gateway\r\n\r\n")
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n"]


async def test_a_100_continue_goes_at_once_and_the_answer_still_in_one_write() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})

    transport = Transport()
    protocol = OneWriteHttpToolsProtocol(Config(app, log_config=None), ServerState(), {}, asyncio.get_running_loop())
    protocol.connection_made(transport)
    protocol.data_received(
        b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    )
    for _ in range(10):
        await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    protocol.data_received(b"{}")
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(transport.writes) == 2 and transport.writes[1].endswith(b"content-length: 2\r\n\r\n{}")


async def test_a_stream_whose_body_reads_like_a_header_is_not_held() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"\r\ncontent-length: 9\r\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    transport = await answer_with(app)
    assert b"".join(transport.writes).endswith(b"\r\ncontent-length: 9\r\n\r\n0\r\n\r\n")
    assert len(transport.writes) == 3


def test_serve_runs_uvicorn_with_this_protocol() -> None:
    assert uvicorn_options(Settings())["http"] is OneWriteHttpToolsProtocol


def test_answers_of_serve_name_no_server_software(database_url: str) -> None:
    with serving(database_url) as port:
        response = httpx.get(f"http://127.0.0.1:{port}/healthz")
        answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 200 and "date" in response.headers
    assert "server" not in response.headers and "server" not in answer.headers
