"""The connection pool against a real PostgreSQL: lending, waiting, handing over, dropping, closing."""

from __future__ import annotations

import asyncio
from functools import partial

import asyncpg
import pytest

from gateway.db.database import Database
from gateway.db.pool import ConnectionPool
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


async def test_each_waiting_caller_is_refused_about_when_its_own_acquire_timeout_passes(database_url):
    pool = pool_for(database_url, 1)
    lent = await pool.acquire(5)
    loop = asyncio.get_running_loop()

    async def refused_after(within: float) -> float:
        started = loop.time()
        with pytest.raises(TimeoutError):
            await pool.acquire(within)
        return loop.time() - started

    patient = asyncio.create_task(pool.acquire(5))
    await asyncio.sleep(0.02)
    # Shorter timeouts than the caller already waiting, and different ones: each is refused in its own time.
    waits = await asyncio.gather(*(refused_after(within) for within in (0.3, 0.1, 0.2, 0.1)))
    for within, waited in zip((0.3, 0.1, 0.2, 0.1), waits, strict=True):
        assert within - 0.01 <= waited <= within + 0.1, waits
    # Then again, once the sweep has found nobody else waiting but the patient caller.
    assert 0.05 - 0.01 <= await refused_after(0.05) <= 0.05 + 0.1
    assert not patient.done()
    pool.release(lent)
    assert await asyncio.wait_for(patient, 1) is lent
    pool.release(lent)
    await pool.close(5)


def test_a_pool_used_from_a_new_event_loop_still_refuses_callers_in_time(database_url):
    pool = pool_for(database_url, 1)

    async def first_loop() -> None:
        lent = await pool.acquire(5)
        waiter = asyncio.create_task(pool.acquire(0.3))  # the sweep is armed in this loop, then the loop ends
        await asyncio.sleep(0.05)
        waiter.cancel()
        lent.terminate()  # still counted as lent: the next loop's caller waits

    async def next_loop() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pool.acquire(0.5), 2)
        assert loop.time() - started < 0.6

    asyncio.run(first_loop())
    asyncio.run(next_loop())
    pool.terminate()


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


# --- turns: when every connection is lent, tenants take turns --------------------------------------------------------


async def test_a_tenant_with_a_backlog_does_not_hold_back_another_tenants_caller(database_url):
    database = Database(pool_for(database_url, 1), 5)
    served: list[str] = []

    async def lookup(tenant: int, cost: int) -> None:
        async with database.connection(tenant=tenant, cost=cost) as connection:
            await connection.execute("SELECT pg_sleep(0.02)")
        served.append("heavy" if tenant == 1 else "light")

    heavy = [asyncio.create_task(lookup(1, 50)) for _ in range(10)]
    # The first heavy statement runs and nine wait (however long the machine takes to get there).
    for _ in range(10_000):
        if database.waiting >= 9:
            break
        await asyncio.sleep(0.001)
    already = len(served)
    waiting = database.waiting
    light = asyncio.create_task(lookup(2, 1))
    await light
    # First come, first served would put it after the heavy statements waiting before it; taking turns, it
    # comes after the one running and at most one more.
    assert waiting >= 8
    assert served.index("light") - already <= 2
    await asyncio.gather(*heavy)
    await database.close(5)


async def test_a_caller_whose_turn_would_come_too_late_is_refused_at_once_with_retry_after(database_url):
    database = Database(pool_for(database_url, 1), 0.5)
    database.pool.note_hold(10)  # as if each connection were held for about a second

    async def lookup(tenant: int) -> None:
        async with database.connection(tenant=tenant) as connection:
            await connection.execute("SELECT pg_sleep(0.3)")

    running = asyncio.create_task(lookup(1))
    await asyncio.sleep(0.05)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ServiceUnavailable) as refused:
        await lookup(1)
    assert asyncio.get_running_loop().time() - started < 0.1  # not after waiting out the 0.5 s
    assert refused.value.headers["retry-after"] == str(refused.value.retry_after)
    assert refused.value.retry_after >= 1
    await running
    await database.close(5)


async def test_the_tenant_with_the_most_work_waiting_is_refused_first(database_url):
    database = Database(pool_for(database_url, 1), 5)

    async def lookup(tenant: int, cost: int) -> str:
        async with database.connection(tenant=tenant, cost=cost) as connection:
            await connection.execute("SELECT pg_sleep(0.05)")
        return "answered"

    running = asyncio.create_task(lookup(1, 50))
    await asyncio.sleep(0.02)
    heavy = [asyncio.create_task(lookup(1, 50)) for _ in range(3)]
    await asyncio.sleep(0.02)
    database.pool.note_hold(100)  # connections now look slow: the light caller could not wait its turn
    light = asyncio.create_task(lookup(2, 1))
    outcomes = await asyncio.gather(running, *heavy, light, return_exceptions=True)
    assert outcomes[-1] == "answered"  # the light tenant's caller kept its place
    refused = [outcome for outcome in outcomes[1:-1] if isinstance(outcome, ServiceUnavailable)]
    assert refused and outcomes[-2] is refused[-1]  # the heavy tenant's newest caller made room
    await database.close(5)
