"""Apollo's automatic persisted queries: a query travels whole once, then as its SHA-256 alone, across restarts."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.clients.harness import BALANCE, TOM, Case, Run, check_outcome, graphql_url, run_stack
from tests.demo_server import DemoServer, demo_server


def _new_lookup(key: str, name: str) -> Case:
    # An operation name no test used before: a document the server has never seen.
    query = BALANCE.replace("query Balance", f"query Balance{uuid.uuid4().hex}")
    return Case(name, query, TOM, key, None, "")


def _carried_query(run: Run) -> list[bool]:
    return ["query" in request["body"] for request in run.requests]


def _hash_only(base_url: str, key: str, sha256: str, *, get: bool = False) -> dict[str, Any]:
    """A request with the hash and no query, as Apollo sends it (POST, or GET with useGETForHashedQueries)."""
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256}}
    headers = {"authorization": f"Bearer {key}"}
    if get:
        params = {"extensions": json.dumps(extensions), "variables": json.dumps(TOM)}
        response = httpx.get(graphql_url(base_url), params=params, headers=headers)
    else:
        response = httpx.post(graphql_url(base_url), json={"extensions": extensions, "variables": TOM}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_second_identical_query_travels_as_its_hash_alone(demo: DemoServer) -> None:
    first = _new_lookup(demo.key, "first")
    second = Case("second", first.query, TOM, demo.key, None, "")
    run = run_stack("apollo-apq", demo.url, [first, second])
    check_outcome(run.outcomes["first"], first, None)
    check_outcome(run.outcomes["second"], second, None)
    # The hash alone (unknown), then hash and query (registered), then the hash alone (answered).
    assert _carried_query(run) == [False, True, False], run.requests
    miss = run.requests[0]["answer"]["errors"][0]
    assert miss["message"] == "PersistedQueryNotFound"
    assert miss["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = run.requests[1]["body"]
    sha256 = registered["extensions"]["persistedQuery"]["sha256Hash"]
    assert sha256 == hashlib.sha256(registered["query"].encode()).hexdigest()
    # Other clients with the hash get the same answer, over POST and GET.
    for get in (False, True):
        assert _hash_only(demo.url, demo.key, sha256, get=get)["data"]["pointsBalance"]["totalPoints"] == "8512.500"


@pytest.mark.parametrize("get", [False, True], ids=["POST", "GET"])
def test_an_unknown_hash_asks_for_the_query(demo: DemoServer, get: bool) -> None:
    answer = _hash_only(demo.url, demo.key, hashlib.sha256(uuid.uuid4().bytes).hexdigest(), get=get)
    assert answer["errors"][0]["message"] == "PersistedQueryNotFound"
    assert answer["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


def test_a_registered_query_is_known_after_a_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("apq-restart")
    with demo_server(directory) as before:
        case = _new_lookup(before.key, "before")
        registering = run_stack("apollo-apq", before.url, [case])
    check_outcome(registering.outcomes["before"], case, None)
    assert _carried_query(registering) == [False, True]
    # The same data directory: the demo data and the registered document are still there; the key is new.
    with demo_server(directory) as after:
        again = Case("after", case.query, TOM, after.key, None, "")
        run = run_stack("apollo-apq", after.url, [again])
    check_outcome(run.outcomes["after"], again, None)
    assert _carried_query(run) == [False], run.requests
