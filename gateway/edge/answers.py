"""What the HTTP endpoints share about answers: their request id, and a JSON answer written as ASGI messages."""

from __future__ import annotations

import random
import re

from starlette.types import Receive, Scope, Send

from gateway.edge.negotiation import MediaType

# Answers carry one caller's balances: no cache, shared or private, may keep them (GET included).
NO_STORE_HEADER = (b"cache-control", b"no-store")
# Incoming request ids are kept only when they are plainly ids (they are echoed and logged).
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")


def request_id_of(incoming: bytes | None) -> str:
    """The client's X-Request-Id when it is plainly an id, else a new one."""
    if incoming is not None and _REQUEST_ID.fullmatch(incoming):
        return incoming.decode("ascii")
    # 128 random bits as 32 hex digits, like uuid4().hex. An id, not a secret: no system call for it.
    return f"{random.getrandbits(128):032x}"


class JsonAnswer:
    """A GraphQL answer as ASGI messages: what Starlette's Response sends, with its headers written as bytes
    once (this is every answer's path)."""

    __slots__ = ("body", "raw_headers", "status_code")

    def __init__(self, body: bytes, status_code: int, media: MediaType, headers: list[tuple[bytes, bytes]]) -> None:
        self.body = body
        self.status_code = status_code
        self.raw_headers = [(b"content-length", b"%d" % len(body)), media.header, NO_STORE_HEADER, *headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})
