"""Whose turn it is: callers waiting for something scarce (a connection), queued per tenant.

Served by deficit round robin weighted by cost: each time a tenant's turn
comes round it gains QUANTUM units of credit, and its first caller goes
when the credit covers that caller's cost. A tenant with many heavy
statements waiting gets no more than one with a few light ones; a tenant
alone is served at once, in order.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

# The cost units a tenant may spend each time its turn comes round (a lookup of one identifier costs 1).
QUANTUM = 10


class Turns(Generic[T]):
    def __init__(self) -> None:
        # Per tenant, in the order their turns come: (the caller's future, its cost, when it gives up).
        self._queues: dict[Hashable, deque[tuple[asyncio.Future[T], int, float]]] = {}
        self._credit: dict[Hashable, int] = {}
        # Callers waiting now (those that gave up leave at once).
        self.waiting = 0

    def __bool__(self) -> bool:
        return bool(self._queues)

    def join(self, waiter: asyncio.Future[T], tenant: Hashable, cost: int, deadline: float = math.inf) -> None:
        """The caller waits for its turn, until `deadline` (see expire); call left() when it stops waiting,
        whatever the reason."""
        queue = self._queues.get(tenant)
        if queue is None:
            queue = self._queues[tenant] = deque()
        queue.append((waiter, cost, deadline))
        self.waiting += 1

    def left(self) -> None:
        self.waiting -= 1

    def next(self) -> asyncio.Future[T] | None:
        """The caller whose turn it is, taken off its queue; None when nobody waits."""
        queues, credit = self._queues, self._credit
        while queues:
            tenant = next(iter(queues))
            queue = queues[tenant]
            while queue and queue[0][0].done():  # gave up meanwhile
                queue.popleft()
            if not queue:
                del queues[tenant]
                credit.pop(tenant, None)
                continue
            waiter, cost, _ = queue[0]
            left = credit.get(tenant, 0)
            if left >= cost or len(queues) == 1:
                queue.popleft()
                if queue:
                    credit[tenant] = max(0, left - cost)
                else:
                    del queues[tenant]
                    credit.pop(tenant, None)
                return waiter
            # Its credit does not cover its next caller: more credit, and the next tenant's turn.
            credit[tenant] = left + QUANTUM
            del queues[tenant]
            queues[tenant] = queue
        return None

    def charge(self, tenant: Hashable, units: int) -> None:
        """A caller of `tenant`, already served, cost `units` more than it joined with (a group of lookups that
        grew while it waited): the units are taken from the tenant's credit, which may go below zero, so that
        its next callers wait that many more turns while other tenants wait too."""
        self._credit[tenant] = self._credit.get(tenant, 0) - units

    def make_room(self, tenant: Hashable, cost: int, refusal: BaseException) -> None:
        """A caller of `tenant` would wait too long: refuse the newest caller of the tenant with the most
        work waiting, or this caller (raising `refusal`) when that is its own tenant."""
        heaviest, most = tenant, cost + self._waiting_cost(tenant)
        for other in self._queues:
            work = self._waiting_cost(other)
            if work > most:
                heaviest, most = other, work
        queue = self._queues.get(heaviest) if heaviest != tenant else None
        while queue:
            waiter = queue.pop()[0]
            if not waiter.done():
                waiter.set_exception(refusal)
                return
        raise refusal

    def fail_all(self, error: BaseException) -> None:
        queues, self._queues = self._queues, {}
        self._credit.clear()
        for queue in queues.values():
            for waiter, _, _ in queue:
                if not waiter.done():
                    waiter.set_exception(error)

    def expire(self, now: float) -> float:
        """Fail the callers whose deadline is `now` or earlier with TimeoutError; the earliest deadline of those
        still waiting (math.inf when none is). One sweep for all callers costs less than a timer for each."""
        earliest = math.inf
        for queue in self._queues.values():
            for waiter, _, deadline in queue:
                if waiter.done():
                    continue
                if deadline <= now:
                    waiter.set_exception(TimeoutError())
                elif deadline < earliest:
                    earliest = deadline
        return earliest

    def _waiting_cost(self, tenant: Hashable) -> int:
        return sum(entry[1] for entry in self._queues.get(tenant, ()) if not entry[0].done())
