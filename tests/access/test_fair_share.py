"""Fair shares of a worker: an org's requests beyond its share wait their turn, and only they."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from gateway.access.fair_share import FairShare
from gateway.errors import ServiceUnavailable
from gateway.observability.tenants import publish_waits

HEAVY, LIGHT = 1, 2


async def test_requests_within_the_share_go_in_at_once_and_the_rest_wait_for_their_org():
    share = FairShare(per_org=2, max_wait=5)
    assert share.enter(HEAVY) is None and share.enter(HEAVY) is None
    third = share.enter(HEAVY)
    assert third is not None
    # Another org is not behind the first one's queue.
    assert share.enter(LIGHT) is None
    share.leave(LIGHT)
    waiting = asyncio.create_task(share.wait(HEAVY, third))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    share.leave(HEAVY)  # its place passes to the waiting request
    await waiting
    assert share.in_progress(HEAVY) == 2
    share.leave(HEAVY)
    share.leave(HEAVY)
    assert share.in_progress(HEAVY) == 0


async def test_a_request_that_waited_as_long_as_it_can_is_refused_with_retry_after():
    share = FairShare(per_org=1, max_wait=0.1)
    assert share.enter(HEAVY) is None
    waiter = share.enter(HEAVY)
    assert waiter is not None
    with pytest.raises(ServiceUnavailable) as refused:
        await share.wait(HEAVY, waiter)
    assert refused.value.headers == {"retry-after": "1"}
    share.leave(HEAVY)
    assert share.in_progress(HEAVY) == 0


async def test_a_queue_that_moves_too_slowly_refuses_newcomers_at_once():
    share = FairShare(per_org=1, max_wait=1.0)
    assert share.enter(HEAVY) is None
    queued = [share.enter(HEAVY) for _ in range(3)]
    waits = [asyncio.create_task(share.wait(HEAVY, waiter)) for waiter in queued if waiter is not None]
    # Its requests take about 0.2 s each: three waiting are 0.6 s of waiting; two more would be 1.0 s.
    for _ in range(2):
        await asyncio.sleep(0.2)
        share.leave(HEAVY)
    await asyncio.gather(*waits[:2])
    share.enter(HEAVY)  # 0.2 s ahead: accepted
    with pytest.raises(ServiceUnavailable) as refused:
        for _ in range(10):
            share.enter(HEAVY)
    assert "try again in" in refused.value.message
    for waiter in waits:
        waiter.cancel()
    await asyncio.gather(*waits, return_exceptions=True)


async def test_a_place_handed_to_a_request_that_gave_up_passes_on():
    share = FairShare(per_org=1, max_wait=5)
    assert share.enter(HEAVY) is None
    gives_up, next_in_line = share.enter(HEAVY), share.enter(HEAVY)
    assert gives_up is not None and next_in_line is not None
    leaving = asyncio.create_task(share.wait(HEAVY, gives_up))
    staying = asyncio.create_task(share.wait(HEAVY, next_in_line))
    await asyncio.sleep(0.01)
    share.leave(HEAVY)  # handed to the first waiter ...
    leaving.cancel()  # ... which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await leaving
    await staying
    assert share.in_progress(HEAVY) == 1


async def test_waits_are_counted_per_org_once_published():
    labels = {"org": str(HEAVY), "where": "fair_share"}
    publish_waits()  # whatever earlier tests left
    before = REGISTRY.get_sample_value("loyalty_gateway_tenant_waits_total", labels) or 0
    share = FairShare(per_org=1, max_wait=5)
    assert share.enter(HEAVY) is None
    waiter = share.enter(HEAVY)
    assert waiter is not None
    waiting = asyncio.create_task(share.wait(HEAVY, waiter))
    await asyncio.sleep(0.05)
    share.leave(HEAVY)
    await waiting
    assert (REGISTRY.get_sample_value("loyalty_gateway_tenant_waits_total", labels) or 0) == before  # not yet
    publish_waits()
    assert REGISTRY.get_sample_value("loyalty_gateway_tenant_waits_total", labels) == before + 1
    seconds = REGISTRY.get_sample_value("loyalty_gateway_tenant_wait_seconds_total", labels)
    assert seconds is not None and seconds >= 0.04


async def test_an_idle_gap_is_not_taken_for_a_slow_queue():
    share = FairShare(per_org=1, max_wait=1.0)

    async def busy(steps: int) -> None:
        """Five requests waiting all along: each step one goes in and a new one joins."""
        assert share.enter(HEAVY) is None
        waits = []
        for _ in range(5):
            waiter = share.enter(HEAVY)
            assert waiter is not None
            waits.append(asyncio.create_task(share.wait(HEAVY, waiter)))
        for _ in range(steps):
            await asyncio.sleep(0.01)
            share.leave(HEAVY)
            waiter = share.enter(HEAVY)  # would be refused if the queue looked slow
            assert waiter is not None
            waits.append(asyncio.create_task(share.wait(HEAVY, waiter)))
        for _ in range(6):
            await asyncio.sleep(0.01)
            share.leave(HEAVY)
        await asyncio.gather(*waits)

    await busy(5)
    await asyncio.sleep(1.5)  # idle, longer than max_wait
    await busy(5)  # the queue moves at 10 ms a request again: nobody is refused
