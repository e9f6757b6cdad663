"""Over the rate limit, every stock client surfaces RATE_LIMITED (a 429) with its message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clients.harness import (
    STACKS,
    TINY_RATE_LIMIT,
    check_outcome,
    exhaust_rate_limit,
    rate_limited_case,
    run_client,
    where,
)
from tests.demo_server import DemoServer, demo_server


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("rate-limited"), *TINY_RATE_LIMIT) as server:
        exhaust_rate_limit(server.url, server.key)
        yield server


@pytest.mark.parametrize("stack", STACKS)
def test_the_client_surfaces_rate_limited(limited: DemoServer, stack: str) -> None:
    case = rate_limited_case(limited.key)
    run = run_client(stack, limited.url, [case])
    check_outcome(run.outcomes[case.name], case, where(stack, case))
