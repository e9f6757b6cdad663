"""An import killed with SIGKILL half-way leaves the database exactly as it was."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from gateway.importer import import_file
from tests.importer import dump, synthetic_lines, write_jsonl

# Big enough that each phase lasts a while: about 300,000 lines.
CUSTOMERS = 100_000

# What the import's connection is doing, as PostgreSQL shows it (the last statement, running or done).
PHASES = {
    # Lines are still being read and copied into the staging tables.
    "staging": "state = 'active' AND query LIKE 'COPY%'",
    # Everything is staged and checked; the rows are being written into the real tables.
    "applying": "state = 'active' AND query LIKE '%INSERT INTO customer%'",
}


def import_command(database_url: str, path: Path) -> list[str]:
    return [sys.executable, "-m", "gateway", "import", str(path), "--no-progress", "--database-url", database_url]


def start_import(database_url: str, path: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(import_command(database_url, path), stdout=output, stderr=subprocess.STDOUT)


def run_import(database_url: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(import_command(database_url, path), capture_output=True, text=True, timeout=120)


async def importer_backend(watcher: asyncpg.Connection, phase: str, process: subprocess.Popen[bytes]) -> int:
    """The pid of the import's backend once it is in `phase`."""
    deadline = time.monotonic() + 120
    while True:
        pid = await watcher.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            f" AND application_name = 'loyalty-gateway' AND {PHASES[phase]}"
        )
        if pid is not None:
            return int(pid)
        assert process.poll() is None, "the import ended before it could be killed"
        assert time.monotonic() < deadline, f"the import never reached {phase}"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("phase", list(PHASES))
async def test_an_import_killed_half_way_leaves_the_database_exactly_as_it_was(
    database_url, connection, tmp_path, phase
):
    # The database already holds data the big file would change (other points for its first customers).
    base = [line.replace('"mainPoints":"', '"mainPoints":"1') for line in synthetic_lines(1_000)]
    await import_file(connection, write_jsonl(tmp_path / "base.jsonl", base), progress=False)
    before = await dump(connection)
    big = write_jsonl(tmp_path / "big.jsonl", synthetic_lines(CUSTOMERS))

    process = start_import(database_url, big, tmp_path / "import.log")
    try:
        backend = await importer_backend(connection, phase, process)
        if phase == "staging":
            await asyncio.sleep(0.5)  # some batches in: half-way through the file
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL

    # The server notices its client is gone (at once, or when the statement under way ends) and rolls back.
    deadline = time.monotonic() + 60
    while await connection.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", backend):
        assert time.monotonic() < deadline, "the killed import's transaction is still open"
        await asyncio.sleep(0.05)
    assert await dump(connection) == before

    # Nothing was left behind (lock, staging tables): the next import runs and applies.
    small = write_jsonl(tmp_path / "small.jsonl", synthetic_lines(10))
    result = await asyncio.to_thread(run_import, database_url, small)
    assert result.returncode == 0, result.stderr
