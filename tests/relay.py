"""A stand-in for the database's address that tests can take away (see Relay)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


class Relay:
    """A unix socket that stands in for the database's address.

    It relays to the test's real PostgreSQL until the test makes the database
    unreachable: `cut()` closes every relayed connection and leaves nobody
    listening at the address; `hang()` then listens again but never answers;
    `stall()` keeps the relayed connections open but lets nothing through.
    """

    def __init__(self, database_url: str) -> None:
        self._target = socket_address(database_url)
        self.directory = tempfile.mkdtemp(prefix="lgw-")
        self.path = os.path.join(self.directory, ".s.PGSQL.5432")
        parts = urlsplit(database_url)
        user_info = parts.netloc.rpartition("@")[0]
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in {"host", "port"}]
        query += [("host", self.directory), ("port", "5432")]
        self.url = urlunsplit(parts._replace(netloc=f"{user_info}@" if user_info else "", query=urlencode(query)))
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()

    async def start(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_unix_server(self._relay, path=self.path)

    def stall(self) -> None:
        self._flowing.clear()

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in self._tasks:
            task.cancel()
        for writer in self._writers:
            writer.close()
        self._tasks.clear()
        self._writers.clear()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        # Let the clients' ends see their connections close, as they would in any real outage.
        await asyncio.sleep(0.05)

    async def hang(self) -> None:
        await self.cut()
        self._server = await asyncio.start_unix_server(self._hold, path=self.path)

    async def close(self) -> None:
        await self.cut()
        os.rmdir(self.directory)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._target[0] == "unix":
            upstream_reader, upstream_writer = await asyncio.open_unix_connection(self._target[1])
        else:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target[1:])
        self._writers |= {writer, upstream_writer}
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            await self._flowing.wait()
            sink.write(data)
            await sink.drain()
        sink.close()

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        await reader.read()


def socket_address(url: str) -> tuple[Any, ...]:
    """("unix", path) or ("tcp", host, port) of a PostgreSQL URL, the way libpq reads it."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or parts.hostname or "localhost"
    port = int(query.get("port") or parts.port or 5432)
    if host.startswith("/"):
        return ("unix", f"{host}/.s.PGSQL.{port}")
    return ("tcp", host, port)
