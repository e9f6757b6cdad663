"""One structured line per request; nothing secret or personal in clear, whatever goes wrong."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Callable, Iterator

import pytest

from gateway.config import Settings
from gateway.observability.logs import (
    LINES_WAIT,
    MOST_LINES_KEPT,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    log_format,
    mask_email,
    mask_identifier,
    mask_mobile,
    scrub,
)
from gateway.observability.requests import RequestObserver
from tests.operations import ORG, TOM_EMAIL, TOM_MOBILE, lookup, seed_tom
from tests.operations.conftest import running_app


@pytest.fixture
def captured_log() -> Iterator[Callable[..., io.TextIOBase]]:
    """Route all logging to a buffer, exactly as `serve` does (pytest's own capture set aside); undone afterwards."""
    root = logging.getLogger()
    level, before = root.level, list(root.handlers)
    for handler in before:
        root.removeHandler(handler)

    def capture(log_format: str, level_name: str = "info", stream: io.TextIOBase | None = None) -> io.TextIOBase:
        for handler in list(root.handlers):  # pytest's, added for the test's call after the fixture's setup
            root.removeHandler(handler)
        buffer = stream if stream is not None else io.StringIO()
        configure_logging(level_name, log_format, buffer)  # type: ignore[arg-type]
        return buffer

    yield capture
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in before:
        root.addHandler(handler)
    root.setLevel(level)


def test_the_request_line_is_the_same_through_logging_or_the_short_path():
    fields = {
        "request_id": "r",
        "org": 1,
        "operation": "Q",
        "outcome": "OK",
        "status": 200,
        "cost": 1,
        "duration_ms": 1.5,
        "db_ms": 0.5,
        "wait_ms": 0.25,
    }
    anonymous = {**fields, "request_id": "é", "org": None, "operation": None, "outcome": "HTTP_500", "status": 500}
    for formatter in (JsonFormatter(), TextFormatter()):
        line = formatter.request_lines()
        for values in (fields, anonymous, fields):  # the short path's dict, refilled, keeps nothing of the last line
            record = logging.LogRecord("gateway.request", logging.INFO, "", 0, "request", (), None)
            record.request = values
            logged = formatter.format(record)
            assert logged == formatter.format_request(record.created, values)
            assert line(record.created, *values.values()) == (logged + "\n").encode()
    # Fields without cost and wait (a caller's own, through logging): formatted with what there is.
    record.request = {key: fields[key] for key in fields if key not in ("cost", "wait_ms")}
    assert list(json.loads(JsonFormatter().format(record)))[4:] == list(record.request)
    assert TextFormatter().format(record).endswith(" INFO gateway.request: 200 OK Q org 1 1.5 ms (db 0.5 ms) id r")


class _Writes(io.BytesIO):
    """A binary buffer that keeps what each write brought."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: object) -> int:
        self.writes.append(bytes(data))  # type: ignore[call-overload]
        return super().write(data)  # type: ignore[call-overload]


def _observe(observer: RequestObserver, request_id: str) -> None:
    record = observer.begin()
    record.request_id = request_id
    record.status = 200
    observer.end(record)


async def test_lines_kept_a_moment_are_written_together_in_one_write_after_text_written_before(captured_log):
    buffer = _Writes()
    stream = captured_log("json", stream=io.TextIOWrapper(buffer, encoding="utf-8"))
    observer = RequestObserver(metrics_enabled=False)
    stream.write("before\n")  # left in the text stream's own buffer
    _observe(observer, "a")
    await asyncio.sleep(0)
    for request_id in ("b", "c"):
        _observe(observer, request_id)
    assert buffer.writes == []
    await asyncio.sleep(LINES_WAIT * 2)
    first, *lines = buffer.getvalue().decode().splitlines()
    assert first == "before" and [json.loads(line)["request_id"] for line in lines] == ["a", "b", "c"]
    assert [write.count(b'"logger":"gateway.request"') for write in buffer.writes if b"gateway.request" in write] == [3]
    assert list(json.loads(lines[0])) == [
        "time", "level", "logger", "message", "request_id", "org", "operation", "outcome", "status",
        "cost", "duration_ms", "db_ms", "wait_ms",
    ]  # fmt: skip


async def test_as_many_lines_as_may_be_kept_are_written_at_once_and_flush_writes_the_rest(captured_log):
    buffer = _Writes()
    captured_log("json", stream=io.TextIOWrapper(buffer, encoding="utf-8"))
    observer = RequestObserver(metrics_enabled=False)
    for number in range(MOST_LINES_KEPT + 1):
        _observe(observer, str(number))
    assert len(request_lines(buffer.getvalue().decode())) == MOST_LINES_KEPT
    observer.flush()
    assert [line["request_id"] for line in request_lines(buffer.getvalue().decode())][-2:] == [
        str(MOST_LINES_KEPT - 1),
        str(MOST_LINES_KEPT),
    ]
    await asyncio.sleep(LINES_WAIT * 2)  # the timer finds nothing left to write
    assert len(request_lines(buffer.getvalue().decode())) == MOST_LINES_KEPT + 1


async def test_a_stream_in_another_encoding_is_written_as_text(captured_log):
    buffer = io.BytesIO()
    stream = captured_log("text", stream=io.TextIOWrapper(buffer, encoding="latin-1"))
    observer = RequestObserver(metrics_enabled=False)
    _observe(observer, "café")
    observer.flush()
    stream.flush()
    assert buffer.getvalue().endswith(b" id caf\xe9\n")


async def test_no_request_line_below_the_level_or_while_logging_is_disabled(captured_log):
    output = captured_log("json")
    observer = RequestObserver(metrics_enabled=False)
    logger = logging.getLogger("gateway.request")
    try:
        logger.setLevel(logging.WARNING)
        _observe(observer, "quiet")
        logger.setLevel(logging.NOTSET)
        logging.disable(logging.INFO)
        _observe(observer, "disabled")
        logging.disable(logging.NOTSET)
        _observe(observer, "heard")
    finally:
        logger.setLevel(logging.NOTSET)
        logging.disable(logging.NOTSET)
    observer.flush()
    assert [line["request_id"] for line in request_lines(output.getvalue())] == ["heard"]


def test_without_an_event_loop_the_line_is_written_at_once(captured_log):
    output = captured_log("json")
    _observe(RequestObserver(metrics_enabled=False), "now")
    assert [line["request_id"] for line in request_lines(output.getvalue())] == ["now"]


def test_lines_kept_for_a_loop_that_closed_before_writing_them_are_written_with_the_next_line(captured_log):
    output = captured_log("json")
    observer = RequestObserver(metrics_enabled=False)

    def observe_and_stop(loop: asyncio.AbstractEventLoop) -> None:
        _observe(observer, "left")
        loop.stop()  # the loop ends before its timer: the line is left pending

    loop = asyncio.new_event_loop()
    loop.call_soon(observe_and_stop, loop)
    loop.run_forever()
    loop.close()

    async def observe() -> None:
        _observe(observer, "next")
        await asyncio.sleep(LINES_WAIT * 2)

    asyncio.run(observe())
    assert [line["request_id"] for line in request_lines(output.getvalue())] == ["left", "next"]


def test_with_another_handler_the_line_goes_through_logging(captured_log):
    output = captured_log("text")
    other = io.StringIO()
    extra = logging.StreamHandler(other)
    extra.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(extra)
    _observe(RequestObserver(metrics_enabled=False), "both")
    assert re.fullmatch(
        r"\S+ \S+ INFO gateway\.request: 200 OK - org - \d+\.\d ms \(db 0\.0 ms\) id both\n", output.getvalue()
    )
    assert [line["request_id"] for line in request_lines(other.getvalue())] == ["both"]


def request_lines(text: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "gateway.request"]


async def test_each_request_is_one_json_line_with_its_id_org_operation_outcome_and_timings(database_url, captured_log):
    output = captured_log("json")
    key = await seed_tom(database_url)
    async with running_app(Settings(database_url=database_url)) as client:
        await client.post(
            "/graphql",
            json={
                "query": 'query TomBalance { pointsBalance(identifiers: [{type: ID, value: "565039505"}], '
                "source: INSTORE) { entityId } }"
            },
            headers={"authorization": f"Bearer {key}", "x-request-id": "req-42"},
        )
        await lookup(client, key, {"identifiers": [{"type": "EMAIL", "value": "nobody@example.com"}]})
        await lookup(client, "lgw_0123456789ab_" + "x" * 43)
        await client.post("/graphql", json={"query": "{"}, headers={"authorization": f"Bearer {key}"})
        await client.get("/healthz")

    for line in output.getvalue().splitlines():
        json.loads(line)  # every line is one JSON object
    lines = request_lines(output.getvalue())
    assert [(line["outcome"], line["status"], line["org"], line["operation"]) for line in lines] == [
        ("OK", 200, ORG, "TomBalance"),
        ("CUSTOMER_NOT_FOUND", 200, ORG, "TomBalance"),
        ("UNAUTHENTICATED", 401, None, None),
        ("GRAPHQL_PARSE_FAILED", 200, ORG, None),  # application/json (no Accept): parse errors are 200
    ]
    first = lines[0]
    assert first["request_id"] == "req-42"
    assert re.fullmatch(r"[0-9a-f]{32}", str(lines[1]["request_id"]))
    assert set(first) == {
        "time", "level", "logger", "message", "request_id", "org", "operation", "outcome", "status",
        "cost", "duration_ms", "db_ms", "wait_ms",
    }  # fmt: skip
    assert [line["cost"] for line in lines] == [1, 1, 0, 1]  # a lookup is 1; refused before admission: 0
    assert 0 < first["db_ms"] <= first["duration_ms"]  # type: ignore[operator]
    assert first["wait_ms"] == 0  # nobody else was asking
    assert first["level"] == "info" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(first["time"]))


async def test_the_text_format_is_one_readable_line_per_request(database_url, captured_log):
    output = captured_log("text")
    key = await seed_tom(database_url)
    async with running_app(Settings(database_url=database_url)) as client:
        await lookup(client, key)
    line = next(line for line in output.getvalue().splitlines() if "gateway.request" in line)
    assert re.fullmatch(
        r"\S+ \S+ INFO gateway\.request: 200 OK TomBalance org 100737 \d+\.\d ms \(db \d+\.\d ms\) id [0-9a-f]{32}",
        line,
    ), line


def test_logs_are_json_in_production_and_text_in_development():
    assert log_format(Settings()) == "json"
    assert log_format(Settings(demo=True)) == "text"
    assert log_format(Settings(demo=True, log_format="json")) == "json"


def test_emails_and_mobile_numbers_are_masked():
    assert mask_email("tom@example.com") == "t***@e***.com"
    assert mask_email(" Tom.Jones@Mail.Example.co.uk ") == "T***@M***.uk"
    assert mask_mobile("+44 7700 900123") == "+44******123"
    assert mask_mobile("447700900123") == "44******123"
    assert mask_identifier("CARD_NUMBER", "4111111111111111") == "4***11"
    assert mask_identifier("CUID", "abc") == "***"


def test_scrubbing_leaves_no_key_token_email_or_phone_number():
    key = "lgw_0123456789ab_" + "S" * 43
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    text = scrub(
        f"key={key} header='Bearer {key}' token {jwt} bad lgw_nothex_secret "
        f"mail {TOM_EMAIL} mobile {TOM_MOBILE} stored as 447700900123 and (020) 7946-0958"
    )
    for secret in (key, "S" * 43, jwt, "nothex_secret", TOM_EMAIL, "7700 900123", "447700900123", "7946-0958"):
        assert secret not in text, (secret, text)
    assert "lgw_0123456789ab_***" in text and "T***@E***.com" in text and "+44******123" in text


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_nothing_secret_or_personal_reaches_the_log(database_url, captured_log, monkeypatch, log_format):
    """Keys, tokens, emails and mobile numbers in requests, failures and tracebacks: none of them in clear."""
    output = captured_log(log_format, "debug")
    key = await seed_tom(database_url)
    secret = key.split("_", 2)[2]
    wrong_secret = key[: -len(secret)] + "A" * len(secret)
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    by_email = {"identifiers": [{"type": "EMAIL", "value": TOM_EMAIL}]}
    by_mobile = {"identifiers": [{"type": "MOBILE", "value": TOM_MOBILE}]}
    async with running_app(Settings(database_url=database_url)) as client:
        assert (await lookup(client, key, by_email)).status_code == 200
        assert (await lookup(client, key, by_mobile)).status_code == 200
        await lookup(client, key, {"identifiers": [{"type": "EMAIL", "value": "x" + TOM_EMAIL}]})
        await lookup(client, wrong_secret, by_email)
        await lookup(client, jwt, by_mobile)
        await client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"authorization": f"Bearer {key}", "x-request-id": f"{TOM_EMAIL}/{TOM_MOBILE}"},
        )

        # An unexpected failure whose message quotes the values (as a driver's message may): logged, scrubbed.
        async def failing(*args: object, **kwargs: object) -> None:
            raise RuntimeError(f"lookup of {TOM_EMAIL} / {TOM_MOBILE} / 447700900123 failed with {key}")

        monkeypatch.setattr("gateway.resolvers.balance.fetch_balances", failing)
        response = await lookup(client, key, by_email)
        assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"

    logged = output.getvalue()
    assert "RuntimeError" in logged and "gateway.request" in logged  # the failure and the requests were logged
    assert "t***@e***.com" in logged.lower() and "+44******123" in logged
    for clear in (key, secret, wrong_secret, jwt, TOM_EMAIL, TOM_EMAIL.lower(), TOM_MOBILE, "447700900123"):
        assert clear not in logged, clear
    assert "7700 900123" not in logged and "900123" not in logged
