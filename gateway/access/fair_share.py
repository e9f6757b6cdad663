"""Fair shares of a worker: no org's requests can crowd out another's.

One event loop and one pool serve every org. First come, first served, an
org with 64 requests in flight has 64 chunks of work queued on the loop for
each one of a light org's, and the light org's answers wait behind them.
Here each org may have at most `per_org` requests in progress in a worker
at once (past authentication: pricing, the lookup, the answer); its further
requests wait, in its own queue, costing nothing but a future, and go in as
its own requests finish. An org that sends little never waits here at all.

A request waits no longer than it can afford (`max_wait`): when its org's
queue is so long that its turn would come later than that, it is refused at
once (503 SERVICE_UNAVAILABLE with Retry-After), and a request still waiting
when max_wait has passed is refused then. Only orgs with `per_org` requests
already in progress ever wait, so only the heaviest are ever refused.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque

from gateway.errors import ServiceUnavailable
from gateway.observability.metrics import REQUESTS_WAITING
from gateway.observability.tenants import note_shed, note_wait

# How much the newest interval between two of an org's queued requests going in weighs in its estimate.
_SMOOTHING = 0.2


# Orgs remembered between their requests (an org's entry is reused, not made anew per request); beyond this,
# idle ones are forgotten.
MAX_ORGS = 10_000


class _Queue:
    """An org's requests in progress, and those waiting to go in."""

    __slots__ = ("in_progress", "interval", "last_entry", "timer", "waiting")

    def __init__(self) -> None:
        self.in_progress = 0
        # (a waiting request's future, when it stops waiting), oldest first: the deadlines come in order.
        self.waiting: deque[tuple[asyncio.Future[None], float]] = deque()
        # One timer per queue, for its oldest waiter's deadline (not one per waiter).
        self.timer: asyncio.TimerHandle | None = None
        # Seconds between two queued requests going in, smoothed: how fast the queue moves when it is full.
        self.interval = 0.0
        self.last_entry = 0.0


class FairShare:
    def __init__(self, per_org: int, max_wait: float) -> None:
        if per_org < 1:
            raise ValueError("each org needs room for at least one request in progress")
        self.per_org = per_org
        self.max_wait = max_wait
        self._orgs: dict[int, _Queue] = {}
        # Requests waiting for their org's turn now, all orgs (sampled into a gauge).
        self.waiting_now = 0

    def enter(self, org_id: int) -> asyncio.Future[None] | None:
        """None: go in now. Otherwise pass the future to wait(); raises ServiceUnavailable when the org's turn
        would come too late. Once in, call leave(org_id) when the request is done."""
        queue = self._orgs.get(org_id)
        if queue is None:
            if len(self._orgs) >= MAX_ORGS:
                self._forget_idle()
            queue = self._orgs[org_id] = _Queue()
        if queue.in_progress < self.per_org:
            queue.in_progress += 1
            return None
        expected = (len(queue.waiting) + 1) * queue.interval
        if expected > self.max_wait:
            raise _shed(org_id, expected)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        deadline = loop.time() + self.max_wait
        queue.waiting.append((waiter, deadline))
        if queue.timer is None:
            queue.timer = loop.call_at(deadline, self._time_out, org_id, queue)
        return waiter

    async def wait(self, org_id: int, waiter: asyncio.Future[None]) -> None:
        """Wait for the org's turn (enter's future); raises ServiceUnavailable when it does not come in time."""
        started = time.perf_counter()
        self.waiting_now += 1
        try:
            await waiter
            note_wait(org_id, "fair_share", time.perf_counter() - started)
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.leave(org_id)  # its turn came just as it gave up (a deadline, a client gone): pass it on
            raise
        finally:
            self.waiting_now -= 1

    def leave(self, org_id: int) -> None:
        """One of the org's requests is done: its place goes to the org's next waiting request, if any."""
        queue = self._orgs[org_id]
        waiting = queue.waiting
        while waiting:
            waiter, _ = waiting.popleft()
            if waiter.done():
                continue  # timed out, or its request is gone
            now = asyncio.get_running_loop().time()
            if queue.last_entry:
                interval = now - queue.last_entry
                queue.interval += _SMOOTHING * (interval - queue.interval) if queue.interval else interval
            queue.last_entry = now
            waiter.set_result(None)  # the place passes on: in_progress stays as it is
            return
        queue.in_progress -= 1
        # Nobody waits: the next time the queue fills, how fast it moves is measured afresh (an idle gap is not
        # an interval between two requests going in).
        queue.last_entry = 0.0

    def in_progress(self, org_id: int) -> int:
        queue = self._orgs.get(org_id)
        return queue.in_progress if queue is not None else 0

    def _time_out(self, org_id: int, queue: _Queue) -> None:
        """The oldest waiters have waited as long as they may: refuse them; the timer moves to the next."""
        queue.timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        waiting = queue.waiting
        while waiting and waiting[0][1] <= now:
            waiter, _ = waiting.popleft()
            if not waiter.done():
                waiter.set_exception(_shed(org_id, self.max_wait))
        if waiting:
            queue.timer = loop.call_at(waiting[0][1], self._time_out, org_id, queue)

    def _forget_idle(self) -> None:
        for org_id in [org for org, queue in self._orgs.items() if not queue.in_progress and not queue.waiting]:
            del self._orgs[org_id]


def sample_fair_share(share: FairShare) -> None:
    """Copy the number of requests waiting for their org's turn into its gauge."""
    REQUESTS_WAITING.set(share.waiting_now)


def _shed(org_id: int, wait: float) -> ServiceUnavailable:
    note_shed(org_id, "fair_share")
    retry_after = max(1, math.ceil(wait))
    return ServiceUnavailable(
        f"this org has more requests in progress than its share of the server; try again in {retry_after} s",
        retry_after=retry_after,
    )
