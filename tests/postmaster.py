"""Whether a test's own PostgreSQL server is running, from its data directory."""

from __future__ import annotations

import os
from pathlib import Path


def postmaster_running(pgdata: Path) -> bool:
    """True while the postmaster named in pgdata/postmaster.pid is alive."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (ProcessLookupError, ValueError):
        return False
    return True
