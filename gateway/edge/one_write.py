"""uvicorn's httptools protocol, with each answer's head and body sent in one write.

An ASGI answer is two messages, its start and its body; uvicorn writes each to the socket as it comes, so
every answer costs two system calls (and two TCP segments). Here a response's first write, its status
line and headers, is held until the next write on the same response, its body, and both leave in one call.
A head with nothing after it in the same turn of the event loop (a stream whose first event comes later)
is written at the end of that turn.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class HeadWithBody:
    """A response's view of the connection's transport: its first write waits for the second."""

    __slots__ = ("_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        # None before the first write; b"" once it has been written.
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        head = self._head
        if head is None:
            self._head = data
            self._loop.call_soon(self.flush)
        elif head:
            self._head = b""
            self._transport.write(head + data)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Write a head still held (nothing followed it in the turn it was written)."""
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
        cycle.transport = HeadWithBody(cycle.transport, self.loop)  # type: ignore[assignment]
        super()._start_asgi_task(cycle, app)


def http_protocol() -> type[asyncio.Protocol] | str:
    """The protocol class for uvicorn's `http` option: this one, or plain httptools on a uvicorn without the
    hook it relies on."""
    if callable(getattr(HttpToolsProtocol, "_start_asgi_task", None)):
        return OneWriteHttpToolsProtocol
    return "httptools"
