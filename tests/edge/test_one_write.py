"""An answer's head and body leave in one write to the socket (gateway/edge/one_write.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.commands.serve import uvicorn_options
from gateway.config import Settings
from gateway.edge.one_write import OneWriteCycle, OneWriteHttpToolsProtocol
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


Answer = list[dict[str, Any]]  # the ASGI messages an app sends, in order


def app_sending(messages: Answer, *, later: asyncio.Event | None = None) -> Any:
    """An app that reads the request, then sends these messages (waiting for `later` after the first)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        for number, message in enumerate(messages):
            if number == 1 and later is not None:
                await later.wait()
            await send(message)

    return app


async def answer_with(app: Any, request: bytes = REQUEST, protocol_class: Any = OneWriteHttpToolsProtocol) -> Transport:
    """One request through a protocol (by default the one the gateway serves with); the transport it wrote to."""
    transport = Transport()
    protocol = protocol_class(
        Config(app, log_config=None, access_log=False), ServerState(), {}, asyncio.get_running_loop()
    )
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(50):
        await asyncio.sleep(0)
        if protocol.cycle is not None and protocol.cycle.response_complete:
            break
    await asyncio.sleep(0)
    return transport


def start(status: int, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": list(headers)}


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


JSON = (b"content-type", b"application/json")
HEAD_REQUEST = b"HEAD /graphql HTTP/1.1\r\nHost: gateway\r\n\r\n"
HTTP_10 = b"POST /graphql HTTP/1.0\r\nHost: gateway\r\nContent-Length: 2\r\n\r\n{}"

ANSWERS: dict[str, tuple[Answer, bytes]] = {
    "JSON": ([start(200, (b"content-length", b"11"), JSON), body(b'{"data":{}}')], REQUEST),
    "capitalised names": ([start(200, (b"Content-Length", b"2"), (b"X-Request-Id", b"a1")), body(b"{}")], REQUEST),
    "body in parts": ([start(200, (b"content-length", b"4")), body(b"ab", True), body(b"cd")], REQUEST),
    "empty body": ([start(200, (b"content-length", b"0")), body(b"")], REQUEST),
    "no content": ([start(204), body(b"")], REQUEST),
    "not modified": ([start(304, (b"etag", b'"x"')), body(b"")], REQUEST),
    "stream": ([start(200, (b"content-type", b"text/event-stream")), body(b"data: 1\n\n", True), body(b"")], REQUEST),
    "explicitly chunked": ([start(200, (b"transfer-encoding", b"chunked")), body(b"ab", True), body(b"")], REQUEST),
    "HEAD": ([start(200, (b"content-length", b"11")), body(b'{"data":{}}')], HEAD_REQUEST),
    "connection close": (
        [start(503, (b"content-length", b"2"), (b"connection", b"Keep-Alive, close")), body(b"{}")],
        REQUEST,
    ),
    "HTTP/1.0": ([start(200, (b"content-length", b"2")), body(b"{}")], HTTP_10),
    "a bad header name": ([start(200, (b"content length", b"2")), body(b"{}")], REQUEST),
    "a bad header value": (
        [start(200, (b"content-length", b"2"), (b"x-id", b"a\r\nset-cookie: x")), body(b"{}")],
        REQUEST,
    ),
    "bytes beyond ASCII": ([start(200, (b"content-length", b"2"), (b"x-caf\xe9", b"caf\xe9")), body(b"{}")], REQUEST),
    "a control character in a name": ([start(200, (b"content-length", b"2"), (b"x\x7f", b"1")), body(b"{}")], REQUEST),
    "tab in a value": ([start(200, (b"content-length", b"2"), (b"x-id", b"a\tb")), body(b"{}")], REQUEST),
    "body too long": ([start(200, (b"content-length", b"1")), body(b"{}")], REQUEST),
    "body too short": ([start(200, (b"content-length", b"3")), body(b"{}")], REQUEST),
    "two starts": ([start(200, (b"content-length", b"2")), start(200)], REQUEST),
}


@pytest.mark.parametrize("byte", [bytes([value]) for value in range(256)])
async def test_a_header_byte_is_refused_exactly_when_uvicorn_refuses_it(byte: bytes) -> None:
    for headers in ([(b"x" + byte, b"1")], [(b"x", b"1" + byte)]):
        messages = [start(200, (b"content-length", b"2"), *headers), body(b"{}")]
        ours = await answer_with(app_sending(messages))
        uvicorns = await answer_with(app_sending(messages), REQUEST, HttpToolsProtocol)
        assert b"".join(ours.writes) == b"".join(uvicorns.writes)


@pytest.mark.parametrize("name", ANSWERS)
async def test_what_reaches_the_socket_is_what_uvicorn_writes(name: str) -> None:
    messages, request = ANSWERS[name]
    ours = await answer_with(app_sending(messages), request)
    uvicorns = await answer_with(app_sending(messages), request, HttpToolsProtocol)
    assert b"".join(ours.writes) == b"".join(uvicorns.writes)
    assert ours.closed == uvicorns.closed


async def test_the_protocol_s_cycles_are_one_write_cycles() -> None:
    transport = Transport()
    app = app_sending(ANSWERS["JSON"][0])
    protocol = OneWriteHttpToolsProtocol(Config(app, log_config=None), ServerState(), {}, asyncio.get_running_loop())
    protocol.connection_made(transport)
    protocol.data_received(REQUEST)
    assert type(protocol.cycle) is OneWriteCycle


async def test_an_answer_is_one_write_of_its_head_and_body() -> None:
    transport = await answer_with(app_sending(ANSWERS["JSON"][0]))
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b'\r\n\r\n{"data":{}}')


async def test_a_head_whose_body_comes_later_is_written_at_once_and_the_body_after_it() -> None:
    later = asyncio.Event()
    messages = [start(200, (b"content-type", b"text/plain")), body(b"event", True), body(b"")]
    transport = await answer_with(app_sending(messages, later=later))
    # The head did not wait for the body: a stream's client sees its status at once.
    assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    later.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert b"".join(transport.writes[1:]) == b"5\r\nevent\r\n0\r\n\r\n"


async def test_the_answer_to_a_head_request_is_written_at_once() -> None:
    transport = await answer_with(app_sending(ANSWERS["HEAD"][0]), HEAD_REQUEST)
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n"]


async def test_a_100_continue_goes_at_once_and_the_answer_still_in_one_write() -> None:
    transport = Transport()
    app = app_sending([start(200, (b"content-length", b"2")), body(b"{}")])
    config = Config(app, log_config=None, access_log=False)
    protocol = OneWriteHttpToolsProtocol(config, ServerState(), {}, asyncio.get_running_loop())
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


def test_serve_runs_uvicorn_with_this_protocol() -> None:
    assert uvicorn_options(Settings())["http"] is OneWriteHttpToolsProtocol


def test_answers_of_serve_name_no_server_software(database_url: str) -> None:
    with serving(database_url) as port:
        response = httpx.get(f"http://127.0.0.1:{port}/healthz")
        answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 200 and "date" in response.headers
    assert "server" not in response.headers and "server" not in answer.headers
