"""`import --follow` across a database restart: the batch in flight is applied once the database is back."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import asyncpg

from tests.importer import balance
from tests.importer.feeds import CUSTOMERS, ORG, PROGRAM, Feed, main_points, seed, visible_after


async def test_it_survives_a_database_restart(own_server, own_database, tmp_path):
    connection = await asyncpg.connect(own_database)
    try:
        await seed(connection, tmp_path)
    finally:
        await connection.close()
    running = Feed(own_database)
    try:
        running.write(balance(ORG, CUSTOMERS[0], PROGRAM, main="1"))
        connection = await asyncpg.connect(own_database)
        await visible_after(connection, CUSTOMERS[0], Decimal("1.000"))
        await connection.close()
        own_server.stop()
        # Written while the database is down: applied once it is back.
        running.write(balance(ORG, CUSTOMERS[1], PROGRAM, main="2"))
        await asyncio.sleep(0.5)
        own_server.start()
        connection = await asyncpg.connect(own_database)
        try:
            started = time.monotonic()
            while await main_points(connection, CUSTOMERS[1]) != Decimal("2.000"):
                assert time.monotonic() - started < 15, "not applied after the restart"
                await asyncio.sleep(0.05)
        finally:
            await connection.close()
        status, out, err = running.close()
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()
    assert status == 0, err
    assert "reconnecting" in err
    assert len(out.splitlines()) == 2
