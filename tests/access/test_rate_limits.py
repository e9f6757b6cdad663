"""Rate limits: a token bucket per API key and per end user; 429 with Retry-After past it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gateway.access.end_user_tokens import mint
from gateway.access.rate_limits import RateLimiter
from gateway.config import Settings
from gateway.errors import RateLimited

ORG = 100737
TOM = 565039505
QUERY = "{ __typename }"
SECRET = b"s" * 40


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the bucket -----------------------------------------------------------------------------------------------------


def test_a_bucket_allows_the_burst_then_refills_at_the_rate():
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    for _ in range(3):
        limiter.take("k")
    with pytest.raises(RateLimited) as refused:
        limiter.take("k")
    assert refused.value.retry_after == 1
    # Three tokens a bucket, two back a second: full again within 2 s, none left now.
    assert refused.value.headers == {
        "retry-after": "1",
        "ratelimit-policy": '"cost";q=3;w=2',
        "ratelimit": '"cost";r=0;t=2',
    }
    clock.now += 0.5  # one token back
    limiter.take("k")
    with pytest.raises(RateLimited):
        limiter.take("k")
    clock.now += 3600  # never more than the burst
    for _ in range(3):
        limiter.take("k")
    with pytest.raises(RateLimited):
        limiter.take("k")


def test_retry_after_is_the_whole_seconds_until_a_token_is_back():
    clock = Clock()
    limiter = RateLimiter(0.1, 1, clock=clock)
    limiter.take("k")
    with pytest.raises(RateLimited) as refused:
        limiter.take("k")
    assert refused.value.retry_after == 10


def test_subjects_have_their_own_buckets():
    limiter = RateLimiter(1.0, 1, clock=Clock())
    limiter.take("a")
    limiter.take("b")
    with pytest.raises(RateLimited):
        limiter.take("a")


def test_the_bucket_table_is_bounded():
    clock = Clock()
    limiter = RateLimiter(1.0, 2, max_subjects=100, clock=clock)
    for n in range(10_000):
        limiter.take(n)
        assert len(limiter) <= 100
        if n % 50 == 0:
            clock.now += 0.01


def test_a_full_table_forgets_idle_subjects_not_busy_ones():
    clock = Clock()
    limiter = RateLimiter(1.0, 2, max_subjects=100, clock=clock)
    for n in range(98):
        limiter.take(("idle", n))
    clock.now += 1.0  # the idle ones are full again: forgetting them changes nothing
    limiter.take("busy")
    limiter.take("busy")  # no token left
    limiter.take("new")
    limiter.take("newer")  # the table is full: a sweep runs
    assert len(limiter) == 3
    with pytest.raises(RateLimited):
        limiter.take("busy")  # remembered: a full table is no way to a fresh burst


def test_a_deployment_budget_is_shared_by_every_worker_of_every_instance():
    share = RateLimiter.share_of(100.0, 40, processes=2 * 4)
    assert share is not None
    assert share.rate == pytest.approx(12.5)
    assert share.burst == pytest.approx(5)
    assert RateLimiter.share_of(0, 10, processes=1) is None
    assert RateLimiter.share_of(1.0, 2, processes=8).burst == 1  # type: ignore[union-attr]


# --- through HTTP ---------------------------------------------------------------------------------------------------


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    secret = tmp_path / "jwt-secret"
    secret.write_bytes(SECRET)
    return Settings(
        database_url=database_url,
        rate_limit=2.0,
        rate_limit_burst=3,
        user_rate_limit=1.0,
        user_rate_limit_burst=2,
        jwt_secret_file=str(secret),
    )


@pytest.fixture
async def keys(gateway: Any) -> tuple[str, str]:
    await gateway.seed.org(ORG)
    await gateway.seed.program(ORG, 973, default=True)
    await gateway.seed.customer(ORG, TOM)
    return await gateway.seed.api_key(ORG), await gateway.seed.api_key(ORG)


def assert_rate_limited(response: Any) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body == {
        "errors": [{"message": body["errors"][0]["message"], "extensions": {"code": "RATE_LIMITED", "retryAfter": 1}}]
    }
    assert response.headers["x-request-id"]


async def test_an_api_key_over_its_rate_is_told_when_to_retry(gateway, keys):
    first, second = keys
    refused_before = REGISTRY.get_sample_value("loyalty_gateway_rate_limit_rejections_total", {"limit": "api_key"})
    for _ in range(3):
        assert (await gateway.query(QUERY, key=first)).status_code == 200
    assert_rate_limited(await gateway.query(QUERY, key=first))
    refused = REGISTRY.get_sample_value("loyalty_gateway_rate_limit_rejections_total", {"limit": "api_key"})
    assert (refused or 0) - (refused_before or 0) == 1
    # Another key of the same org has its own budget.
    assert (await gateway.query(QUERY, key=second)).status_code == 200
    await asyncio.sleep(0.6)
    assert (await gateway.query(QUERY, key=first)).status_code == 200


async def test_refused_credentials_spend_no_budget(gateway, keys):
    first, _ = keys
    for _ in range(10):
        assert (await gateway.query(QUERY, key=first[:-1] + "x")).status_code == 401
    assert (await gateway.query(QUERY, key=first)).status_code == 200


async def test_an_end_user_over_their_rate_is_limited_on_their_own(gateway, keys):
    first, _ = keys
    token = mint(SECRET, org_id=ORG, customer_id=TOM, ttl_seconds=60)
    other = mint(SECRET, org_id=ORG, customer_id=TOM + 1, ttl_seconds=60)
    for _ in range(2):
        assert (await gateway.query(QUERY, key=token)).status_code == 200
    assert_rate_limited(await gateway.query(QUERY, key=token))
    # A new token for the same customer shares the customer's bucket.
    again = mint(SECRET, org_id=ORG, customer_id=TOM, ttl_seconds=120)
    assert (await gateway.query(QUERY, key=again)).status_code == 429
    assert (await gateway.query(QUERY, key=other)).status_code == 200
    assert (await gateway.query(QUERY, key=first)).status_code == 200


class TestShares:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        # 8/s and a burst of 8 for the deployment: 2 workers x 2 instances -> 2 each.
        return Settings(database_url=database_url, rate_limit=8.0, rate_limit_burst=8, workers=2, instances=2)

    async def test_each_worker_enforces_its_share_of_the_deployment_budget(self, gateway, keys):
        first, _ = keys
        for _ in range(2):
            assert (await gateway.query(QUERY, key=first)).status_code == 200
        assert (await gateway.query(QUERY, key=first)).status_code == 429


class TestOff:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, rate_limit=0)

    async def test_a_rate_of_zero_turns_rate_limiting_off(self, gateway, keys):
        first, _ = keys
        for _ in range(50):
            assert (await gateway.query(QUERY, key=first)).status_code == 200


def test_the_defaults_are_the_documented_ones():
    settings = Settings()
    assert (settings.rate_limit, settings.rate_limit_burst) == (200.0, 400)
    assert (settings.user_rate_limit, settings.user_rate_limit_burst) == (5.0, 20)
    assert settings.instances == 1
