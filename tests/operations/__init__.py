"""Helpers for the operations tests: a seeded org, a lookup, and steady client load."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from tests.factories import Seed

ORG = 100737
TOM = 565039505
TOM_EMAIL = "Tom.Jones@Example.com"
TOM_MOBILE = "+44 7700 900123"
LOOKUP = """
query TomBalance($identifiers: [IdentifierInput!]!) {
  pointsBalance(identifiers: $identifiers, source: INSTORE) { entityId mainPoints }
}
"""
BY_ID = {"identifiers": [{"type": "ID", "value": str(TOM)}]}


async def seed_tom(database_url: str) -> str:
    """Org 100737 with Tom (an email and a mobile number) and 8500 points; returns an API key of the org."""
    connection = await asyncpg.connect(database_url)
    try:
        seed = Seed(connection)
        await seed.org(ORG)
        await seed.program(ORG, 973, default=True)
        await seed.customer(ORG, TOM, ("INSTORE", None, "EMAIL", TOM_EMAIL), ("INSTORE", None, "MOBILE", TOM_MOBILE))
        await seed.balance(ORG, TOM, 973, "8500")
        return await seed.api_key(ORG)
    finally:
        await connection.close()


def code_of(response: httpx.Response) -> str:
    """OK, or the code of the response's first error."""
    body = response.json()
    return body["errors"][0]["extensions"]["code"] if body.get("errors") else "OK"


async def lookup(client: httpx.AsyncClient, key: str, variables: dict[str, Any] | None = None) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": LOOKUP, "variables": variables or BY_ID},
        headers={"authorization": f"Bearer {key}"},
    )


@dataclass(frozen=True)
class Answer:
    started: float
    finished: float
    status: int
    code: str


class SteadyLoad:
    """A few clients sending lookups back to back (with a short pause), recording every answer."""

    def __init__(self, client: httpx.AsyncClient, key: str, *, clients: int = 4, pause: float = 0.005) -> None:
        self._client = client
        self._key = key
        self._clients = clients
        self._pause = pause
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.answers: list[Answer] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run()) for _ in range(self._clients)]

    async def stop(self) -> list[Answer]:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        return self.answers

    async def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                response = await asyncio.wait_for(lookup(self._client, self._key), timeout=30)
                status, code = response.status_code, code_of(response)
            except Exception as error:  # recorded, and counted as an error by the test
                status, code = 0, type(error).__name__
            self.answers.append(Answer(started, time.monotonic(), status, code))
            await asyncio.sleep(self._pause)


def between(answers: list[Answer], after: float, before: float) -> list[Answer]:
    """The answers to requests sent after `after` and answered before `before`."""
    return [answer for answer in answers if answer.started >= after and answer.finished <= before]


def errors(answers: list[Answer]) -> list[Answer]:
    return [answer for answer in answers if answer.status != 200 or answer.code != "OK"]
