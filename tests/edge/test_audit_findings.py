"""Findings of a black-box audit, each kept fixed by a test."""

from __future__ import annotations

import logging

from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.config import Settings


async def test_an_integer_literal_too_long_for_python_is_a_validation_error(gateway, caplog):
    await gateway.seed.org(1)
    key = await gateway.seed.api_key(1)
    query = '{ pointsBalance(identifiers: [{type: ID, value: "1"}], source: INSTORE, programId: %s) { totalPoints } }'
    with caplog.at_level(logging.ERROR):
        response = await gateway.query(query % ("9" * 5000), key=key)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_null_variable_for_an_argument_with_a_default_is_bad_user_input_not_a_fault(gateway, caplog):
    # `$all: Boolean` may stand for `fetchDataForAllPrograms: Boolean! = false` (the default covers an
    # absent variable), but an explicit null is refused while the field runs: the client's error, not ours.
    await gateway.seed.org(1)
    await gateway.seed.program(1, 10, default=True)
    key = await gateway.seed.api_key(1)
    query = """query ($all: Boolean) {
      pointsBalance(identifiers: [{type: ID, value: "1"}], source: INSTORE, fetchDataForAllPrograms: $all) {
        totalPoints
      }
    }"""
    with caplog.at_level(logging.ERROR):
        response = await gateway.query(query, {"all": None}, key=key)
    body = response.json()
    assert body["data"] == {"pointsBalance": None}
    error = body["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}, body
    assert "fetchDataForAllPrograms" in error["message"] and error["path"] == ["pointsBalance"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_incoming_request_id_that_is_not_plainly_an_id_is_replaced(gateway):
    response = await gateway.client.get("/healthz", headers={"x-request-id": "ok-123"})
    assert response.status_code == 200
    answer = await gateway.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"x-request-id": "<script>alert(1)</script>"}
    )
    assert answer.headers["x-request-id"] != "<script>alert(1)</script>"
    kept = await gateway.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"x-request-id": "abc-1.2:3"}
    )
    assert kept.headers["x-request-id"] == "abc-1.2:3"


async def test_a_client_that_leaves_mid_body_gets_no_answer_and_logs_no_error(database_url, caplog):
    app = create_app(Settings(database_url=database_url))
    sent: list[dict] = []
    messages = iter(
        [{"type": "http.request", "body": b'{"query": "{ __typ', "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive() -> dict:
        return next(messages)

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"authorization", b"Bearer x")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    async with LifespanManager(app) as manager:
        with caplog.at_level(logging.ERROR):
            await manager.app(scope, receive, send)
    assert sent == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
