"""`loyalty-gateway import --follow` as a process, and the world its tests feed (tests/importer, tests/operations)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from gateway.importer import import_file
from tests.importer import customer, identifier, org, program, write_jsonl

ORG, PROGRAM = 1, 10
CUSTOMERS = range(100, 110)
# A line written must be visible to lookups within this (a batch waits 20 ms for more lines, here).
VISIBLE_WITHIN = 2.0


class Feed:
    """`import --follow -` as a process; lines are written to its standard input one at a time."""

    def __init__(self, database_url: str, *flags: str) -> None:
        command = [
            sys.executable, "-m", "gateway", "import", "--follow", "--database-url", database_url,
            "--batch-wait", "20", *flags,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def write(self, *records: dict[str, Any] | str) -> None:
        """Written together, so that they fall in one batch."""
        assert self.process.stdin is not None
        text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
        self.process.stdin.write(text.encode())
        self.process.stdin.flush()

    def close(self) -> tuple[int, str, str]:
        # communicate() closes standard input: the end of the feed.
        stdout, stderr = self.process.communicate(timeout=60)
        return self.process.returncode, stdout.decode(), stderr.decode()


async def seed(connection: asyncpg.Connection, tmp_path: Path) -> None:
    lines = [org(ORG), program(PROGRAM, ORG)]
    lines += [customer(number, ORG, identifier("EXTERNAL_ID", f"ext-{number}")) for number in CUSTOMERS]
    await import_file(connection, write_jsonl(tmp_path / "world.jsonl", lines), progress=False)


async def main_points(connection: asyncpg.Connection, customer_id: int) -> Decimal | None:
    value: Decimal | None = await connection.fetchval(
        "SELECT main_points FROM balances WHERE org_id = $1 AND entity_id = $2 AND program_id = $3",
        ORG,
        customer_id,
        PROGRAM,
    )
    return value


async def visible_after(connection: asyncpg.Connection, customer_id: int, expected: Decimal) -> float:
    """Seconds until the balance reads `expected` (fails past VISIBLE_WITHIN)."""
    started = time.monotonic()
    while (await main_points(connection, customer_id)) != expected:
        assert time.monotonic() - started < VISIBLE_WITHIN, f"{customer_id} not {expected} after {VISIBLE_WITHIN} s"
        await asyncio.sleep(0.002)
    return time.monotonic() - started
