"""The connection pool against a real PostgreSQL: lending, waiting, handing over, dropping, closing."""

from __future__ import annotations

import asyncio
from functools import partial

import asyncpg
import pytest

from gateway.db.pool import ConnectionPool, Database
from gateway.errors import ServiceUnavailable


def pool_for(url: str, size: int) -> ConnectionPool:
    return ConnectionPool(partial(asyncpg.connect, url), size)


async def test_an_idle_connection_is_lent_again_and_new_ones_open_only_up_to_the_size(database_url):
    pool = pool_for(database_url, 2)
    first = await pool.acquire(5)
    pid = await first.fetchval("SELECT pg_backend_pid()")
    pool.release(first)
    again = await pool.acquire(5)
    assert again is first and await again.fetchval("SELECT pg_backend_pid()") == pid
    second = await pool.acquire(5)
    assert second is not first
    assert (pool.size, pool.in_use) == (2, 2)
    with pytest.raises(TimeoutError):
        await pool.acquire(0.2)
    pool.release(first)
    pool.release(second)
    assert (pool.size, pool.in_use) == (2, 0)
    assert await pool.close(5)


async def test_a_returned_connection_goes_to_the_first_caller_still_waiting(database_url):
    pool = pool_for(database_url, 1)
    lent = await pool.acquire(5)
    gives_up = asyncio.create_task(pool.acquire(0.1))
    waits = asyncio.create_task(pool.acquire(5))
    with pytest.raises(TimeoutError):
        await gives_up
    pool.release(lent)
    assert await waits is lent
    assert pool.in_use == 1
    pool.release(lent)
    await pool.close(5)


async def test_a_connection_handed_to_a_caller_that_was_cancelled_meanwhile_is_passed_on(database_url):
    pool = pool_for(database_url, 1)
    lent = await pool.acquire(5)
    cancelled = asyncio.create_task(pool.acquire(5))
    next_in_line = asyncio.create_task(pool.acquire(5))
    await asyncio.sleep(0.05)
    # Hand the connection over and cancel its receiver before it runs again.
    pool.release(lent)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await asyncio.wait_for(next_in_line, 5) is lent
    pool.release(lent)
    await pool.close(5)


async def test_a_broken_connection_is_dropped_and_its_place_goes_to_a_waiting_caller(database_url):
    pool = pool_for(database_url, 1)
    lent = await pool.acquire(5)
    waiting = asyncio.create_task(pool.acquire(5))
    await asyncio.sleep(0.05)
    pool.release(lent, reusable=False)
    assert lent.is_closed()
    replacement = await asyncio.wait_for(waiting, 5)
    assert replacement is not lent and await replacement.fetchval("SELECT 1") == 1
    pool.release(replacement)
    await pool.close(5)


async def test_a_connection_the_server_closed_while_idle_is_not_lent(database_url, connection):
    pool = pool_for(database_url, 1)
    lent = await pool.acquire(5)
    pid = await lent.fetchval("SELECT pg_backend_pid()")
    pool.release(lent)
    await connection.execute("SELECT pg_terminate_backend($1)", pid)
    for _ in range(100):
        if lent.is_closed():
            break
        await asyncio.sleep(0.02)
    fresh = await pool.acquire(5)
    assert fresh is not lent and await fresh.fetchval("SELECT pg_backend_pid()") != pid
    pool.release(fresh)
    await pool.close(5)


async def test_connections_idle_for_too_long_are_closed_down_to_those_kept(database_url):
    pool = ConnectionPool(partial(asyncpg.connect, database_url), 3, keep_idle=1, max_idle=0.2)
    burst = [await pool.acquire(5) for _ in range(3)]
    for connection in burst:
        pool.release(connection)
    assert pool.size == 3
    await asyncio.sleep(0.3)
    for _ in range(4):
        pool.release(await pool.acquire(5))
        await asyncio.sleep(0.05)
    assert pool.size == 1
    assert sum(connection.is_closed() for connection in burst) == 2
    assert await pool.close(5)


async def test_close_waits_for_lent_connections_and_then_lends_no_more(database_url):
    pool = pool_for(database_url, 1)
    lent = await pool.acquire(5)
    waiter = asyncio.create_task(pool.acquire(5))
    await asyncio.sleep(0.05)
    closing = asyncio.create_task(pool.close(5))
    # The caller that was waiting when the pool began to close is told so at once.
    with pytest.raises(asyncpg.InterfaceError):
        await asyncio.wait_for(waiter, 1)
    assert not closing.done() and not lent.is_closed()
    pool.release(lent)
    assert await closing
    assert lent.is_closed()
    with pytest.raises(asyncpg.InterfaceError):
        await pool.acquire(5)


async def test_close_terminates_what_is_still_lent_after_the_grace(database_url):
    pool = pool_for(database_url, 1)
    lent = await pool.acquire(5)
    assert not await pool.close(0.1)
    assert lent.is_closed()


async def test_a_statement_cancelled_mid_way_leaves_a_connection_that_works(database_url):
    database = Database(pool_for(database_url, 1), 5)

    async def slow() -> None:
        async with database.connection() as connection:
            await connection.execute("SELECT pg_sleep(10)")

    task = asyncio.create_task(slow())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with database.connection() as connection:
        assert await asyncio.wait_for(connection.fetchval("SELECT 41 + 1"), 5) == 42
    await database.close(5)


async def test_an_unreachable_database_is_service_unavailable_within_the_timeout(tmp_path):
    url = f"postgresql://postgres@/postgres?host={tmp_path}&port=1"
    database = Database(pool_for(url, 1), 0.5)
    with pytest.raises(ServiceUnavailable):
        async with database.connection():
            pass
    assert database.pool.size == 0
    await database.close(1)
