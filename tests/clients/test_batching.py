"""Apollo's BatchHttpLink against `serve --max-batch-size 10`: operations in flight together share one request,
and each gets its own data or errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.clients.harness import (
    TINY_RATE_LIMIT,
    check_outcome,
    exhaust_rate_limit,
    lookup_cases,
    rate_limited_case,
    run_stack,
    where,
)
from tests.demo_server import DemoServer, demo_server

BATCHING = ("--max-batch-size", "10")


@pytest.fixture(scope="module")
def batching(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("batching"), *BATCHING) as server:
        yield server


def test_batched_operations_each_get_their_answer(batching: DemoServer) -> None:
    cases = lookup_cases(batching.key)
    run = run_stack("apollo-batch", batching.url, cases)
    for case in cases:
        check_outcome(run.outcomes[case.name], case, where("apollo-batch", case))
    # The operations with the demo's key went in one request (the others have a client, and a batch, each).
    batch_sizes = sorted(len(request["body"]) for request in run.requests)
    assert batch_sizes == [1, 1, len(cases) - 2], run.requests


def test_a_batch_over_the_rate_limit_surfaces_rate_limited(tmp_path_factory: pytest.TempPathFactory) -> None:
    with demo_server(tmp_path_factory.mktemp("batching-limited"), *BATCHING, *TINY_RATE_LIMIT) as server:
        exhaust_rate_limit(server.url, server.key)
        first = rate_limited_case(server.key, "first")
        # Other variables: Apollo sends an operation identical to one in flight only once.
        cases = [first, replace(first, name="second", variables={"email": "nobody@example.com"})]
        run = run_stack("apollo-batch", server.url, cases)
    assert [len(request["body"]) for request in run.requests] == [2], run.requests
    for case in cases:
        check_outcome(run.outcomes[case.name], case, where("apollo-batch", case))
