"""Many instances against one database: two `loyalty-gateway serve` processes, each on a port of its own, agree on
what the database says and each keeps the rest to itself.

- an API key revoked with `loyalty-gateway api-key revoke` stops working on both within the key cache lifetime;
- a persisted query registered through one (Apollo's protocol) is answered by hash alone on the other, and a
  manifest registered with `loyalty-gateway documents register` is answered by both;
- rate limits are each worker's share of the deployment's: rate / (workers x instances), as `--instances` says;
  so two instances told `--instances 2` let a caller through twice a half burst, the configured burst in all,
  and two told `--instances 1` let it through twice the configured burst (README, "Rate limits").
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import GRAPHQL_CLIENT_HEADERS, Seed
from tests.serving import serving

ORG, PROGRAM, CUSTOMER = 400001, 41, 4101
LOOKUP = """
query Balance($value: String!) {
  pointsBalance(identifiers: [{type: EXTERNAL_ID, value: $value}], source: INSTORE) { entityId mainPoints }
}
"""
VARIABLES = {"value": f"ext-{CUSTOMER}"}
ANSWER = {"pointsBalance": {"entityId": str(CUSTOMER), "mainPoints": "250.500"}}
# A short key cache, so that the test takes seconds; what it shows holds for any lifetime (the default is 5 s).
KEY_CACHE_TTL = 1.0
# Time for a request to travel and be answered on a busy shared machine, beyond the cache lifetime itself.
SLACK = 1.0


@dataclass(frozen=True, slots=True)
class Deployment:
    urls: tuple[str, str]  # the two instances' /graphql
    key: str
    database_url: str


@contextmanager
def two_instances(database_url: str, *flags: str) -> Iterator[tuple[str, str]]:
    """Two gateways on one database, each with the short key cache (and a metrics port of its own)."""
    environment = {"LOYALTY_GATEWAY_API_KEY_CACHE_TTL": str(KEY_CACHE_TTL)}
    with ExitStack() as stack:
        ports = [stack.enter_context(serving(database_url, *flags, environment=environment)) for _ in range(2)]
        yield f"http://127.0.0.1:{ports[0]}/graphql", f"http://127.0.0.1:{ports[1]}/graphql"


async def seeded(connection: Any) -> str:
    seed = Seed(connection)
    await seed.org(ORG)
    await seed.program(ORG, PROGRAM, default=True)
    await seed.customer(ORG, CUSTOMER, ("INSTORE", None, "EXTERNAL_ID", f"ext-{CUSTOMER}"))
    await seed.balance(ORG, CUSTOMER, PROGRAM, "250.5")
    return await seed.api_key(ORG)


@pytest.fixture
async def deployment(database_url: str, connection: Any) -> AsyncIterator[Deployment]:
    key = await seeded(connection)
    with two_instances(database_url) as urls:
        yield Deployment(urls, key, database_url)


async def post(url: str, key: str, body: dict[str, Any]) -> httpx.Response:
    headers = {**GRAPHQL_CLIENT_HEADERS, "authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(url, json=body, headers=headers)


def cli(database_url: str, *args: str) -> str:
    """`loyalty-gateway ...` against the deployment's database: what an operator runs."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args, "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def code(response: httpx.Response) -> str | None:
    errors = response.json().get("errors")
    return errors[0]["extensions"]["code"] if errors else None


# --- API keys -------------------------------------------------------------------------------------------------------


async def test_a_revoked_key_stops_working_on_every_instance_within_the_key_cache_lifetime(deployment):
    lookup = {"query": LOOKUP, "variables": VARIABLES}
    for url in deployment.urls:  # both know the key, and keep it in their caches
        answer = await post(url, deployment.key, lookup)
        assert answer.status_code == 200 and answer.json() == {"data": ANSWER}
    prefix = deployment.key.split("_")[1]
    cli(deployment.database_url, "api-key", "revoke", prefix)
    revoked = time.monotonic()  # at the latest; the revocation committed before the command returned
    last_accepted = {url: 0.0 for url in deployment.urls}
    refused_since: dict[str, float] = {}
    # Ask both, over and over, until each has refused the key for a whole cache lifetime in a row.
    while len(refused_since) < 2 or time.monotonic() - max(refused_since.values()) < KEY_CACHE_TTL:
        assert time.monotonic() - revoked < 5 * KEY_CACHE_TTL + 10, "the key kept working"
        for url in deployment.urls:
            sent = time.monotonic()
            answer = await post(url, deployment.key, lookup)
            if answer.status_code == 200:
                last_accepted[url] = sent - revoked
                refused_since.pop(url, None)
            else:
                assert (answer.status_code, code(answer)) == (401, "UNAUTHENTICATED"), answer.text
                refused_since.setdefault(url, sent)
    for url, accepted in last_accepted.items():
        assert accepted < KEY_CACHE_TTL + SLACK, f"{url} accepted a revoked key {accepted:.2f} s after"


# --- persisted documents --------------------------------------------------------------------------------------------


def by_hash(document: str) -> dict[str, Any]:
    sha256 = hashlib.sha256(document.encode()).hexdigest()
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256}}, "variables": VARIABLES}


async def test_a_persisted_query_registered_through_one_instance_is_answered_by_the_other(deployment):
    first, second = deployment.urls
    document = LOOKUP.replace("query Balance", "query SeenByBoth")
    # Neither knows it yet: Apollo's link then sends hash and document together, here to the first.
    for url in deployment.urls:
        unknown = await post(url, deployment.key, by_hash(document))
        assert (unknown.status_code, code(unknown)) == (404, "PERSISTED_QUERY_NOT_FOUND")
    registered = await post(first, deployment.key, {**by_hash(document), "query": document})
    assert registered.json() == {"data": ANSWER}
    # The second never saw the text: it reads the registration from the database.
    answered = await post(second, deployment.key, by_hash(document))
    assert answered.status_code == 200 and answered.json() == {"data": ANSWER}


async def test_a_manifest_registered_with_the_command_is_answered_by_every_instance(deployment, tmp_path: Path):
    by_id = {"documentId": "balance-v7", "variables": VARIABLES}
    for url in deployment.urls:  # both have read the (empty) trusted set, and keep it for the cache lifetime
        unknown = await post(url, deployment.key, by_id)
        assert (unknown.status_code, code(unknown)) == (404, "PERSISTED_QUERY_NOT_FOUND")
    manifest = tmp_path / "persisted_queries.json"  # Relay's format: id -> document
    manifest.write_text(json.dumps({"balance-v7": LOOKUP}))
    cli(deployment.database_url, "documents", "register", str(manifest))
    registered = time.monotonic()
    pending = set(deployment.urls)
    while pending:
        assert time.monotonic() - registered < KEY_CACHE_TTL + SLACK, f"not answered by {sorted(pending)}"
        for url in sorted(pending):
            answer = await post(url, deployment.key, by_id)
            if answer.status_code == 200:
                assert answer.json() == {"data": ANSWER}
                pending.discard(url)


# --- rate limits ----------------------------------------------------------------------------------------------------

# A burst of 10 cost units per key for the deployment, refilled so slowly that the test never sees it refill.
BURST = 10
RATE = 0.01


@pytest.mark.parametrize(
    ("instances", "per_instance"),
    [
        (2, BURST // 2),  # told the truth: each instance half the burst, the deployment the whole burst
        (1, BURST),  # told too few: each instance lets the whole burst through, the deployment twice it
    ],
)
async def test_rate_limits_are_each_instances_share_of_what_instances_says(
    database_url: str, connection: Any, instances: int, per_instance: int
):
    key = await seeded(connection)
    flags = ("--rate-limit", str(RATE), "--rate-limit-burst", str(BURST), "--instances", str(instances))
    lookup = {"query": LOOKUP, "variables": VARIABLES}
    with two_instances(database_url, *flags) as urls:
        allowed = {}
        for url in urls:
            answers = [await post(url, key, lookup) for _ in range(per_instance + 3)]
            allowed[url] = sum(answer.status_code == 200 for answer in answers)
            assert [answer.status_code for answer in answers] == [200] * per_instance + [429] * 3
            refused = answers[-1]
            assert code(refused) == "RATE_LIMITED" and int(refused.headers["retry-after"]) >= 1
            # Each instance states its own share: the burst it holds.
            assert refused.headers["ratelimit-policy"].startswith(f'"cost";q={per_instance};')
    assert sum(allowed.values()) == per_instance * 2 == BURST * 2 // instances
