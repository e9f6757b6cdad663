"""Whose turn it is when connections are scarce: deficit round robin over tenants, weighted by cost."""

from __future__ import annotations

import asyncio
import math

import pytest

from gateway.db.turns import QUANTUM, Turns


class Refused(Exception):
    pass


def waiters(turns: Turns[int], tenant: str, cost: int, count: int) -> list[asyncio.Future[int]]:
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(count):
        waiter: asyncio.Future[int] = loop.create_future()
        turns.join(waiter, tenant, cost)
        out.append(waiter)
    return out


async def test_a_tenant_alone_is_served_in_order():
    turns: Turns[int] = Turns()
    queued = waiters(turns, "a", 50, 3)
    assert [turns.next() for _ in range(3)] == queued
    assert turns.next() is None and not turns


async def test_tenants_with_work_waiting_share_by_cost_not_by_count():
    turns: Turns[int] = Turns()
    heavy = waiters(turns, "heavy", 50, 40)
    waiters(turns, "light", 1, 2000)
    served = {"heavy": 0, "light": 0}
    for _ in range(400):
        waiter = turns.next()
        assert waiter is not None
        if waiter in heavy:
            served["heavy"] += 50
        else:
            served["light"] += 1
    # Each got about as many cost units; the light tenant far more statements.
    assert abs(served["heavy"] - served["light"]) <= 50 + QUANTUM
    assert served["light"] > 300


async def test_a_light_caller_goes_before_a_heavy_tenants_backlog():
    turns: Turns[int] = Turns()
    waiters(turns, "heavy", 50, 20)
    (light,) = waiters(turns, "light", 1, 1)
    order = [turns.next() for _ in range(3)]
    assert light in order  # within the next few turns, not after twenty heavy statements


async def test_callers_that_gave_up_are_skipped():
    turns: Turns[int] = Turns()
    first, second = waiters(turns, "a", 1, 2)
    first.cancel()
    assert turns.next() is second


async def test_making_room_refuses_the_newest_caller_of_the_tenant_with_the_most_work_waiting():
    turns: Turns[int] = Turns()
    heavy = waiters(turns, "heavy", 50, 3)
    waiters(turns, "light", 1, 1)
    turns.make_room("light", 1, Refused())
    assert isinstance(heavy[-1].exception(), Refused)
    assert not heavy[0].done() and not heavy[1].done()
    # The heaviest tenant's own newcomer is the one refused.
    with pytest.raises(Refused):
        turns.make_room("heavy", 50, Refused())


async def test_closing_fails_every_waiter():
    turns: Turns[int] = Turns()
    queued = waiters(turns, "a", 1, 2) + waiters(turns, "b", 1, 1)
    turns.fail_all(Refused())
    assert all(isinstance(waiter.exception(), Refused) for waiter in queued)
    assert not turns


async def test_expiring_fails_the_callers_past_their_deadline_and_tells_the_next_deadline():
    turns: Turns[int] = Turns()
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(4)]
    for waiter, (tenant, deadline) in zip(futures, [("a", 5.0), ("a", 1.0), ("b", 3.0), ("b", 2.0)], strict=True):
        turns.join(waiter, tenant, 1, deadline)
    futures[3].set_result(0)  # served already: not failed, and its deadline no longer counts
    assert turns.expire(1.5) == 3.0
    assert isinstance(futures[1].exception(), TimeoutError)
    assert not futures[0].done() and not futures[2].done()
    assert turns.expire(10.0) == math.inf
    assert all(isinstance(waiter.exception(), TimeoutError) for waiter in (futures[0], futures[2]))
    assert turns.next() is None


async def test_a_charge_after_its_turn_makes_a_tenant_wait_that_many_more_turns():
    turns: Turns[int] = Turns()
    grown = waiters(turns, "grown", 1, 1)
    waiters(turns, "other", 1, 100)
    served = [turns.next() for _ in range(2)]
    assert grown[0] in served
    # Its caller (a group of lookups) joined as 1 and answered 31: 30 more units than its turn spent.
    turns.charge("grown", 30)
    again = waiters(turns, "grown", 1, 1)
    order = []
    while again[0] not in order:
        order.append(turns.next())
    # Its debt is paid off QUANTUM a round before it is served again, and each of those rounds "other" spends
    # QUANTUM units of its own (without the charge, it would have been served after one such round).
    assert len(order) - 1 >= 3 * QUANTUM
    assert all(waiter is not again[0] for waiter in order[:-1])


async def test_a_charge_does_not_delay_a_tenant_alone():
    turns: Turns[int] = Turns()
    turns.charge("alone", 50)
    queued = waiters(turns, "alone", 1, 2)
    assert [turns.next(), turns.next()] == queued
