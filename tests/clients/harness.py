"""Stock GraphQL clients against a running gateway: the Node stacks of node/ as subprocesses, Python's gql in process.

Each client runs the same cases and reports what it surfaced: the data, the errors (message and extensions) and
where in the client's result or exception they were (`where`), so a test can hold every stack to the same answers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXTransport
from graphql import FieldNode, NameNode, Visitor, parse, visit

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).parent / "node"

BALANCE = (
    "query Balance($email: String!) {"
    " pointsBalance(identifiers: [{type: EMAIL, value: $email}], source: INSTORE) { entityId totalPoints } }"
)
TOM = {"email": "tom@example.com"}
TOM_BALANCE = {"entityId": "565039505", "totalPoints": "8512.500"}
# Well-formed, but no key the gateway issued.
BAD_KEY = "lgw_000000000000_" + "A" * 43

# Every stack but the batching one, which needs a server started with --max-batch-size.
STACKS = ["apollo", "apollo-apq", "urql", "graphql-request", "gql"]
# A burst of one and a token every 100 s: once the burst is spent, nothing gets through during a test.
TINY_RATE_LIMIT = ("--rate-limit", "0.01", "--rate-limit-burst", "1")


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    query: str
    variables: dict[str, Any] | None
    key: str | None  # None: no Authorization header
    code: str | None  # the extensions.code every client must surface; None: the data arrives
    message: str  # a pattern the surfaced message must match
    break_document: bool = False  # send a document that does not parse
    refused: bool = False  # refused with a non-2xx answer before any GraphQL runs (401, 429)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "query": self.query,
            "variables": self.variables,
            "key": self.key,
            "breakDocument": self.break_document,
        }


def lookup_cases(key: str) -> list[Case]:
    """The data and every error class a client meets on a gateway with default limits."""
    return [
        Case("found", BALANCE, TOM, key, None, ""),
        Case("customer_not_found", BALANCE, {"email": "nobody@example.com"}, key, "CUSTOMER_NOT_FOUND", r"\w"),
        Case(
            "unknown_field",
            BALANCE.replace("totalPoints", "totalPoints noSuchField"),
            TOM,
            key,
            "GRAPHQL_VALIDATION_FAILED",
            "noSuchField",
        ),
        Case("syntax_error", BALANCE, TOM, key, "GRAPHQL_PARSE_FAILED", "^Syntax Error", break_document=True),
        Case("variable_of_wrong_type", BALANCE, {"email": 5}, key, "BAD_USER_INPUT", r"\$email"),
        Case("no_key", BALANCE, TOM, None, "UNAUTHENTICATED", r"\w", refused=True),
        Case("bad_key", BALANCE, TOM, BAD_KEY, "UNAUTHENTICATED", r"\w", refused=True),
    ]


def rate_limited_case(key: str, name: str = "rate_limited") -> Case:
    return Case(name, BALANCE, TOM, key, "RATE_LIMITED", r"\w", refused=True)


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    data: Any
    errors: list[dict[str, Any]]
    where: str | None  # which property of the client's result or exception held the errors


@dataclass(frozen=True, slots=True)
class Run:
    outcomes: dict[str, Outcome]  # by case name
    requests: list[dict[str, Any]]  # what went over the wire (Node stacks): method, query, body, status, answer


def graphql_url(base: str) -> str:
    return f"{base}/graphql"


def check_outcome(outcome: Outcome, case: Case, where: str | None) -> None:
    """The client surfaced what the gateway answered for this case, where `where` says."""
    if case.code is None:
        assert outcome.errors == [], outcome
        balance = {name: outcome.data["pointsBalance"][name] for name in TOM_BALANCE}
        assert balance == TOM_BALANCE, outcome
        return
    assert outcome.errors, outcome
    error = outcome.errors[0]
    assert (error["extensions"] or {}).get("code") == case.code, outcome
    assert re.search(case.message, error["message"]), outcome
    if case.code == "CUSTOMER_NOT_FOUND":
        assert error["extensions"]["errorCode"] == 8015, outcome
        assert outcome.data in (None, {"pointsBalance": None}), outcome
    assert outcome.where == where, outcome


def run_node(script: str, *args: str, stdin: Any = None, env: dict[str, str] | None = None) -> Any:
    """Run a script of node/ and return the JSON it prints."""
    if shutil.which("node") is None or not (NODE_DIR / "node_modules").is_dir():
        pytest.fail("the client tests need node and `npm ci` in tests/clients/node: ./scripts/test installs both")
    done = subprocess.run(
        ["node", script, *args],
        cwd=NODE_DIR,
        input=json.dumps(stdin) if stdin is not None else "",
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run_stack(stack: str, base_url: str, cases: list[Case]) -> Run:
    """The cases through one Node client stack (apollo, apollo-apq, apollo-batch, urql, graphql-request)."""
    printed = run_node("stacks.mjs", stack, stdin={"url": graphql_url(base_url), "cases": [c.to_json() for c in cases]})
    outcomes = {result["name"]: Outcome(**result) for result in printed["results"]}
    return Run(outcomes, printed["requests"])


class _BreakPointsBalance(Visitor):
    def enter_field(self, node: FieldNode, *_: Any) -> FieldNode | None:
        if node.name.value == "pointsBalance":
            # A field name no parser accepts: the printed document has a syntax error.
            return replace(node, name=NameNode(value="pointsBalance !"))
        return None


def run_gql(base_url: str, cases: list[Case]) -> Run:
    """The cases through Python's gql with its httpx transport, as examples/python/lookup.py uses it."""
    outcomes = {}
    for case in cases:
        headers = {} if case.key is None else {"Authorization": f"Bearer {case.key}"}
        client = Client(transport=HTTPXTransport(url=graphql_url(base_url), headers=headers))
        document = parse(case.query, no_location=True)
        if case.break_document:
            document = visit(document, _BreakPointsBalance())
        request = GraphQLRequest(document, variable_values=case.variables)
        try:
            outcome = Outcome(case.name, client.execute(request), [], None)
        except TransportQueryError as error:
            outcome = Outcome(case.name, error.data, list(error.errors or []), "TransportQueryError.errors")
        outcomes[case.name] = outcome
    return Run(outcomes, [])


def run_client(stack: str, base_url: str, cases: list[Case]) -> Run:
    return run_gql(base_url, cases) if stack == "gql" else run_stack(stack, base_url, cases)


def exhaust_rate_limit(base_url: str, key: str) -> None:
    """Spend the key's burst, so that every request after this is over the limit."""
    for _ in range(5):
        response = httpx.post(
            graphql_url(base_url), json={"query": "{ __typename }"}, headers={"authorization": f"Bearer {key}"}
        )
        if response.status_code == 429:
            return
    pytest.fail(f"the gateway never said RATE_LIMITED; its last answer: {response.status_code} {response.text}")


# Where each client puts the errors it surfaces, for a GraphQL answer and for a refusal (401, 429). Apollo Client 3
# sends `Accept: */*` and so gets application/json, where request errors are 200s: they land in graphQLErrors, and a
# non-2xx answer's errors in networkError.result.errors. urql and graphql-request ask for
# application/graphql-response+json (request errors are 400s) and read the errors of any JSON answer alike.
# gql (httpx, `Accept: */*`) raises TransportQueryError with the errors of any JSON answer.
WHERE: dict[str, tuple[str, str]] = {
    "apollo": ("error.graphQLErrors", "error.networkError.result.errors"),
    "apollo-apq": ("error.graphQLErrors", "error.networkError.result.errors"),
    "apollo-batch": ("error.graphQLErrors", "error.networkError.result.errors"),
    "urql": ("result.error.graphQLErrors", "result.error.graphQLErrors"),
    "graphql-request": ("error.response.errors", "error.response.errors"),
    "gql": ("TransportQueryError.errors", "TransportQueryError.errors"),
}


def where(stack: str, case: Case) -> str | None:
    if case.code is None:
        return None
    answered, refused = WHERE[stack]
    return refused if case.refused else answered
