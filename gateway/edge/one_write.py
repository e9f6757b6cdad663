"""uvicorn's httptools protocol, with each answer's head and body sent in one write.

An ASGI answer is two messages, its start and its body; uvicorn writes each to the socket as it comes, so
every answer costs two system calls (and two TCP segments). Here a response's head, its status line and
headers, is held until the next write on the same response, its body, and both leave in one call. Only a head
that announces a body by its Content-Length is held (the body is bound to follow, and the client needs it
anyway): a stream's head (chunked) and the answer to a HEAD request, whose body never comes, are written at once,
as is an interim "100 Continue".
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

# How uvicorn writes a Content-Length header (it lowercases every name), and an interim response's status line.
_CONTENT_LENGTH = b"\r\ncontent-length: "
_INTERIM = b"HTTP/1.1 1"


class HeadWithBody:
    """A response's view of the connection's transport: a head with a Content-Length waits for the body."""

    __slots__ = ("_head", "_transport")

    def __init__(self, transport: asyncio.Transport, may_hold: bool) -> None:
        self._transport = transport
        # None before the head; the head while held; b"" once it has been written.
        self._head: bytes | None = None if may_hold else b""

    def write(self, data: bytes) -> None:
        head = self._head
        if head:
            self._head = b""
            self._transport.write(head + data)
            return
        if head is None and not data.startswith(_INTERIM):
            if _CONTENT_LENGTH in data:
                self._head = data
                return
            self._head = b""
        self._transport.write(data)

    def flush(self) -> None:
        """Write a head still held."""
        head = self._head
        if head:
            self._head = b""
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's `httptools` protocol whose responses each see the transport through HeadWithBody."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        cycle.transport = HeadWithBody(cycle.transport, cycle.scope["method"] != "HEAD")  # type: ignore[assignment]
        super()._start_asgi_task(cycle, app)


def http_protocol() -> type[asyncio.Protocol] | str:
    """The protocol class for uvicorn's `http` option: this one, or plain httptools on a uvicorn without the
    hook it relies on."""
    if callable(getattr(HttpToolsProtocol, "_start_asgi_task", None)):
        return OneWriteHttpToolsProtocol
    return "httptools"
