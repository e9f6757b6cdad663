"""uvicorn's httptools protocol, with each answer's head and body sent in one write.

An ASGI answer is two messages, its start and its body; uvicorn writes each to the socket as it comes, so
every answer costs two system calls (and two TCP segments). Here a response whose head announces its body by
a Content-Length keeps the head until the body's first part and sends both in one call; a stream's head
(chunked) and the answer to a HEAD request, whose body never comes, are written at once, as uvicorn does.

The head is written as uvicorn writes it, byte for byte (tests/edge/test_one_write.py compares the two), with
its header names and values checked in one pass each rather than two regular expressions per header. One
difference: an app that starts an answer with a Content-Length and returns without its body gets its
connection closed with nothing written, where uvicorn would have written the head first (an incomplete answer
either way).
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

# The bytes uvicorn refuses in a header's name (its HEADER_RE) and in its value (HEADER_VALUE_RE); everything else
# is deleted by translate(), so what is left of a header block is what is wrong with it.
_BAD_IN_NAMES = bytes([*range(0x20), 0x7F]) + b'()<>@,;:[]={} \t\\"'
_BAD_IN_VALUES = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])
_GOOD_IN_NAMES = bytes(byte for byte in range(256) if byte not in _BAD_IN_NAMES)
_GOOD_IN_VALUES = bytes(byte for byte in range(256) if byte not in _BAD_IN_VALUES)


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request-response cycle, whose answer's head waits for its body."""

    # A head written but not sent yet: it leaves with the body's first part.
    held = b""

    async def send(self, message: Any) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{message['type']}'.")
            self.response_started = True
            self.waiting_for_100_continue = False
            status_code = message["status"]
            headers = self.default_headers + list(message.get("headers", []))
            if self.access_log:
                self.access_logger.info(
                    '%s - "%s %s HTTP/%s" %d',
                    get_client_addr(self.scope),
                    self.scope["method"],
                    get_path_with_query_string(self.scope),
                    self.scope["http_version"],
                    status_code,
                )
            # All names, joined by "-", and all values, joined by a tab (characters each allows), checked at once.
            if b"-".join([name for name, _ in headers]).translate(None, _GOOD_IN_NAMES):
                raise RuntimeError("Invalid HTTP header name.")
            if b"\t".join([value for _, value in headers]).translate(None, _GOOD_IN_VALUES):
                raise RuntimeError("Invalid HTTP header value.")
            content = [STATUS_LINE[status_code]]
            has_connection_close = False
            for name, value in headers:
                name = name.lower()
                if name == b"content-length" and self.chunked_encoding is None:
                    self.expected_content_length = int(value.decode())
                    self.chunked_encoding = False
                elif name == b"transfer-encoding" and value.lower() == b"chunked":
                    self.expected_content_length = 0
                    self.chunked_encoding = True
                elif name == b"connection":
                    connection = [token.lower().strip() for token in value.split(b",")]
                    if b"close" in connection:
                        self.keep_alive = False
                        has_connection_close = True
                content += (name, b": ", value, b"\r\n")
            if not self.keep_alive and not has_connection_close:
                content.append(b"connection: close\r\n")
            head_request = self.scope["method"] == "HEAD"
            if self.chunked_encoding is None and not head_request and status_code not in (204, 304):
                self.chunked_encoding = True
                content.append(b"transfer-encoding: chunked\r\n")
            content.append(b"\r\n")
            if self.chunked_encoding is False and not head_request:
                self.held = b"".join(content)
            else:
                self.transport.write(b"".join(content))
        elif not self.response_complete:
            if message["type"] != "http.response.body":
                self._write_held()
                raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{message['type']}'.")
            body = message.get("body", b"")
            more_body = message.get("more_body", False)
            if self.scope["method"] == "HEAD":
                self.expected_content_length = 0
            elif self.chunked_encoding:
                content = [b"%x\r\n" % len(body), body, b"\r\n"] if body else []
                if not more_body:
                    content.append(b"0\r\n\r\n")
                self.transport.write(b"".join(content))
            else:
                if len(body) > self.expected_content_length:
                    self._write_held()
                    raise RuntimeError("Response content longer than Content-Length")
                self.expected_content_length -= len(body)
                held = self.held
                if held:
                    self.held = b""
                    self.transport.write(held + body)
                else:
                    self.transport.write(body)
            if not more_body:
                if self.expected_content_length != 0:
                    raise RuntimeError("Response content shorter than Content-Length")
                self.response_complete = True
                self.message_event.set()
                if not self.keep_alive:
                    self.transport.close()
                self.on_response()
        else:
            raise RuntimeError(f"Unexpected ASGI message '{message['type']}' sent, after response already completed.")

    def _write_held(self) -> None:
        """The head, before an error ends the answer (as uvicorn would have written it already)."""
        if self.held:
            self.transport.write(self.held)
            self.held = b""


def _with_cycle(method: Callable[..., Any], cycle_class: type[RequestResponseCycle]) -> Callable[..., Any]:
    """uvicorn's `method` as it is, creating cycle_class where it creates a RequestResponseCycle (its code, run
    with its module's globals but that one)."""
    namespace = {**method.__globals__, "RequestResponseCycle": cycle_class}
    return types.FunctionType(method.__code__, namespace, method.__name__, method.__defaults__, method.__closure__)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's `httptools` protocol whose request-response cycles are OneWriteCycles.

    Each cycle is created as one (rather than turned into one afterwards, which would leave CPython unable to
    specialize the attribute reads of every method that touches it)."""

    on_headers_complete = _with_cycle(HttpToolsProtocol.on_headers_complete, OneWriteCycle)


def http_protocol() -> type[asyncio.Protocol] | str:
    """The protocol class for uvicorn's `http` option: this one, or plain httptools on a uvicorn that no longer
    creates its cycles where this module expects."""
    if "RequestResponseCycle" in HttpToolsProtocol.on_headers_complete.__code__.co_names:
        return OneWriteHttpToolsProtocol
    return "httptools"
