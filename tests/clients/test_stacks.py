"""Stock GraphQL clients against `serve --demo`: each gets the data, and surfaces every error's message and code.

Apollo Client 3 (HttpLink), Apollo with automatic persisted queries, urql, graphql-request and Python's gql, each
with its stock settings. Where a client puts the errors is recorded in harness.WHERE.
"""

from __future__ import annotations

import pytest

from tests.clients.harness import STACKS, Case, Run, check_outcome, lookup_cases, run_client, where
from tests.demo_server import DemoServer

CASES = [case.name for case in lookup_cases("key")]


@pytest.fixture(scope="module")
def runs(demo: DemoServer) -> dict[str, Run]:
    """Each stack's run of every case, made on first use (one Node process per stack)."""
    return {}


def _run(runs: dict[str, Run], demo: DemoServer, stack: str) -> tuple[Run, dict[str, Case]]:
    cases = lookup_cases(demo.key)
    if stack not in runs:
        runs[stack] = run_client(stack, demo.url, cases)
    return runs[stack], {case.name: case for case in cases}


@pytest.mark.parametrize("case_name", CASES)
@pytest.mark.parametrize("stack", STACKS)
def test_the_client_surfaces_the_answer(runs: dict[str, Run], demo: DemoServer, stack: str, case_name: str) -> None:
    run, cases = _run(runs, demo, stack)
    case = cases[case_name]
    check_outcome(run.outcomes[case_name], case, where(stack, case))
