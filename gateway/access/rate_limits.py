"""Rate limiting: a token bucket per caller (an API key, an end user), counted in cost units.

Each worker process keeps its own buckets; the configured rate is the
deployment's total, so each worker enforces rate / (workers x instances)
(see the README, "Rate limits"). On the request path it is a dict lookup
and a little arithmetic; asyncio runs it without interleaving, so no lock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import NamedTuple

from gateway.errors import RateLimited

# More subjects than this at once and the idle ones are forgotten (an idle
# bucket is full, which is what a forgotten one starts as again).
MAX_SUBJECTS = 100_000


class Budget(NamedTuple):
    """Where a caller stands after a request: this worker's share of its bucket, in cost units."""

    limiter: RateLimiter
    remaining: float

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers): the policy (a quota over
        the seconds a bucket takes to refill whole), and what is left and until when it is whole again."""
        limiter = self.limiter
        refill = math.ceil((limiter.burst - self.remaining) / limiter.rate)
        return [limiter.policy_header, (b"ratelimit", b'"cost";r=%d;t=%d' % (self.remaining, refill))]

    def headers(self) -> dict[str, str]:
        return {name.decode(): value.decode() for name, value in self.raw_headers()}

    def extension(self, cost: int) -> dict[str, object]:
        """`extensions.cost` of an answer, as Shopify's API writes it."""
        return {
            "requestedQueryCost": cost,
            "actualQueryCost": cost,
            "throttleStatus": {
                "maximumAvailable": self.limiter.burst,
                "currentlyAvailable": math.floor(self.remaining),
                "restoreRate": self.limiter.rate,
            },
        }


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_subjects: int = MAX_SUBJECTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limiter needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._max_subjects = max_subjects
        # The policy never changes: its header is written once.
        window = math.ceil(burst / rate)
        self.policy_header = (b"ratelimit-policy", b'"cost";q=%d;w=%d' % (burst, window))
        self._clock = clock
        # subject -> [tokens left, when they were counted]
        self._buckets: dict[Hashable, list[float]] = {}

    @classmethod
    def share_of(cls, rate: float, burst: float, processes: int) -> RateLimiter | None:
        """This process's share of a deployment-wide budget; None when rate limiting is off (rate 0)."""
        if rate <= 0:
            return None
        processes = max(1, processes)
        return cls(rate / processes, max(1.0, burst / processes))

    def take(self, subject: Hashable, cost: int = 1) -> Budget:
        """Spend `cost` units of subject's budget and say what is left; raises RateLimited, spending
        nothing, when there is not that much left."""
        now = self._clock()
        bucket = self._buckets.get(subject)
        if bucket is None:
            if len(self._buckets) >= self._max_subjects:
                self._forget_idle(now)
            bucket = self._buckets[subject] = [self.burst, now]
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens >= cost:
            bucket[0] = tokens - cost
            return Budget(self, bucket[0])
        bucket[0] = tokens
        raise self._refusal(tokens, cost)

    def check(self, subject: Hashable, cost: int) -> None:
        """Raise RateLimited, as take would, when subject cannot afford `cost` now; spend nothing."""
        bucket = self._buckets.get(subject)
        if bucket is None:
            return  # a full bucket
        tokens = min(self.burst, bucket[0] + (self._clock() - bucket[1]) * self.rate)
        if tokens < cost:
            raise self._refusal(tokens, cost)

    def _refusal(self, tokens: float, cost: int) -> RateLimited:
        budget = Budget(self, tokens)
        if cost > self.burst:
            return RateLimited(
                f"this request costs {cost}, more than this caller's burst of {self.burst:g} allows",
                60,
                budget.headers(),
            )
        retry_after = max(1, math.ceil((cost - tokens) / self.rate))
        return RateLimited(f"too many requests; try again in {retry_after} s", retry_after, budget.headers())

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets that have refilled; if that frees too little, the oldest down to half.

        Each sweep leaves at most 3/4 of the table, so sweeps cost O(1) per new subject.
        """
        buckets = self._buckets
        for subject in [s for s, (tokens, at) in buckets.items() if tokens + (now - at) * self.rate >= self.burst]:
            del buckets[subject]
        if len(buckets) > self._max_subjects * 3 // 4:
            # Most subjects are busy: forgetting one gives it a fresh burst, the price of bounded memory.
            for subject in list(buckets)[: len(buckets) - self._max_subjects // 2]:
                del buckets[subject]
