"""examples/: the Apollo Client and gql scripts print the demo customer's balance, and a refusal's code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.clients.harness import BAD_KEY, ROOT, graphql_url
from tests.demo_server import DemoServer

EXAMPLES = {
    "apollo": ["node", str(ROOT / "examples/apollo/lookup.mjs")],
    "python": [sys.executable, str(ROOT / "examples/python/lookup.py")],
}


def _run(example: str, url: str, key: str) -> subprocess.CompletedProcess[str]:
    if example == "apollo" and not (ROOT / "examples/apollo/node_modules").is_dir():
        pytest.fail("the Apollo example needs `npm ci` in examples/apollo: ./scripts/test runs it")
    assert shutil.which(EXAMPLES[example][0]), EXAMPLES[example][0]
    env = {**os.environ, "GATEWAY_URL": url, "LOYALTY_API_KEY": key}
    return subprocess.run(EXAMPLES[example], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_example_prints_the_balance(demo: DemoServer, example: str) -> None:
    done = _run(example, graphql_url(demo.url), demo.key)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Customer 565039505 has 8512.500 points.\n"


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_example_prints_the_code_of_a_refusal(demo: DemoServer, example: str) -> None:
    done = _run(example, graphql_url(demo.url), BAD_KEY)
    assert done.returncode == 1
    assert done.stderr.startswith("UNAUTHENTICATED: "), done.stderr
