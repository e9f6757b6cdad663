"""Fair to every tenant, through a real server: one org's flood does not take the service from another.

`loyalty-gateway serve --env production` runs as its own process on a free port, with its default limits.
Org B sends single lookups at a steady 80 per second, each timed from when it was due; org A floods with
documents of 50 aliased lookups from 64 connections, each sending again as soon as it is answered, whatever
the answer. B is measured alone, then under A's flood.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.factories import Seed
from tests.serving import serving

ORG_A, ORG_B = 200001, 200002
PROGRAM_A, PROGRAM_B = 11, 21
A_CUSTOMERS = range(1, 51)
B_CUSTOMERS = range(1001, 1021)
STEADY_RATE = 80
FLOOD_CONNECTIONS = 64
FLOOD_LOOKUPS = 50
# Longer than the API key cache lifetime (5 s): the flood goes on while A's and B's keys are read again.
SECONDS = 6.0


@dataclass(frozen=True, slots=True)
class Served:
    url: str
    host: str
    port: int
    key_a: str
    key_b: str


@pytest.fixture
def flags() -> tuple[str, ...]:
    return ()


@pytest.fixture
async def served(database_url: str, connection, flags: tuple[str, ...]) -> AsyncIterator[Served]:
    seed = Seed(connection)
    for org, program, customers in ((ORG_A, PROGRAM_A, A_CUSTOMERS), (ORG_B, PROGRAM_B, B_CUSTOMERS)):
        await seed.org(org)
        await seed.program(org, program, default=True)
        for customer in customers:
            await seed.customer(org, customer, ("INSTORE", None, "ID", str(customer)))
            await seed.balance(org, customer, program, f"{customer}.5")
    key_a, key_b = await seed.api_key(ORG_A), await seed.api_key(ORG_B)
    with serving(database_url, *flags) as port:
        yield Served(f"http://127.0.0.1:{port}/graphql", "127.0.0.1", port, key_a, key_b)


# --- a small HTTP/1.1 client: keep-alive connections, bytes prepared once -------------------------------------------


def post_bytes(host: str, port: int, key: str, body: dict[str, object]) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nAuthorization: Bearer {key}\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    def close(self) -> None:
        self.writer.close()


@dataclass
class Steady:
    latencies: list[float]  # seconds, of the answered lookups
    statuses: Counter[int]
    seconds: float  # from the first request due to the last answer

    @property
    def answered_per_second(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[int(0.99 * len(ordered))]


async def steady(served: Served, seconds: float) -> Steady:
    """B's lookups, open loop: each sent when due (on a free connection), timed from when it was due."""
    loop = asyncio.get_running_loop()
    requests = [
        post_bytes(served.host, served.port, served.key_b, {
            "query": "query B($id: String!) { pointsBalance(identifiers: [{type: ID, value: $id}], source: INSTORE)"
                     " { entityId totalPoints } }",
            "variables": {"id": str(customer)},
        })
        for customer in B_CUSTOMERS
    ]  # fmt: skip
    idle: list[Connection] = [await Connection.open(served.host, served.port) for _ in range(8)]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def one(number: int, due: float) -> None:
        connection = idle.pop() if idle else await Connection.open(served.host, served.port)
        status, _, body = await connection.exchange(requests[number % len(requests)])
        idle.append(connection)
        statuses[status] += 1
        customer = B_CUSTOMERS[number % len(B_CUSTOMERS)]
        if status == 200:
            answer = json.loads(body)
            assert answer == {"data": {"pointsBalance": {"entityId": str(customer), "totalPoints": f"{customer}.500"}}}
            latencies.append(loop.time() - due)

    start = loop.time() + 0.05
    tasks = []
    for number in range(int(STEADY_RATE * seconds)):
        due = start + number / STEADY_RATE
        await asyncio.sleep(max(0.0, due - loop.time()))
        tasks.append(asyncio.create_task(one(number, due)))
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.close()
    return Steady(latencies, statuses, loop.time() - start)


# wrk (Debian's package): a flood no Python client on the same machine could send. It counts the answers by
# status, and the refusals (429, 503) that came without a Retry-After header.
FLOOD_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("FLOOD_KEY")
local file = io.open(os.getenv("FLOOD_BODY"), "rb")
wrk.body = file:read("*a")
file:close()
local threads = {}
ok, limited, shed, other, untold = 0, 0, 0, 0, 0
function setup(thread) threads[#threads + 1] = thread end
function response(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 429 then limited = limited + 1
  elseif status == 503 then shed = shed + 1
  else other = other + 1 end
  if status ~= 200 and headers["Retry-After"] == nil and headers["retry-after"] == nil then untold = untold + 1 end
end
function done(summary, latency, requests)
  local total = { ok = 0, limited = 0, shed = 0, other = 0, untold = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(total) do total[name] = total[name] + thread:get(name) end
  end
  io.write(string.format('{"200": %d, "429": %d, "503": %d, "other": %d, "without_retry_after": %d, "errors": %d}\\n',
    total.ok, total.limited, total.shed, total.other, total.untold,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def flood_body() -> bytes:
    """A's document: 50 lookups, each's identifiers and source in variables, as apps write them."""
    variables = ", ".join(f"$ids{n}: [IdentifierInput!]!, $source{n}: Source!" for n in range(FLOOD_LOOKUPS))
    fields = " ".join(
        f"a{n}: pointsBalance(identifiers: $ids{n}, source: $source{n}) {{ entityId totalPoints }}"
        for n in range(FLOOD_LOOKUPS)
    )
    values: dict[str, object] = {}
    for n, customer in enumerate(A_CUSTOMERS):
        values[f"ids{n}"] = [{"type": "ID", "value": str(customer)}]
        values[f"source{n}"] = "INSTORE"
    return json.dumps({"query": f"query Flood({variables}) {{ {fields} }}", "variables": values}).encode()


def start_flood(served: Served, seconds: float, directory: Path) -> subprocess.Popen[bytes]:
    """wrk: 64 connections, each sending A's document again as soon as it is answered, whatever the answer."""
    wrk = shutil.which("wrk")
    assert wrk is not None, "wrk is not installed (./scripts/test installs it)"
    (directory / "flood.lua").write_text(FLOOD_SCRIPT)
    (directory / "flood.json").write_bytes(flood_body())
    env = {**os.environ, "FLOOD_KEY": served.key_a, "FLOOD_BODY": str(directory / "flood.json")}
    command = [
        wrk, "-t1", f"-c{FLOOD_CONNECTIONS}", f"-d{math.ceil(seconds)}s", "--timeout", "10s",
        "-s", str(directory / "flood.lua"), served.url,
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def flood_answers(process: subprocess.Popen[bytes]) -> dict[str, int]:
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode()
    line = [line for line in stdout.decode().splitlines() if line.startswith("{")][-1]
    answers: dict[str, int] = json.loads(line)
    return answers


async def measure(served: Served, directory: Path) -> tuple[Steady, Steady, dict[str, int]]:
    await steady(served, 1.0)  # warm: B's key known, its document parsed, connections open
    alone = await steady(served, SECONDS)
    flooding = start_flood(served, SECONDS + 2.0, directory)
    await asyncio.sleep(1.0)  # the flood under way, A's burst spent
    flooded = await steady(served, SECONDS)
    answers = await asyncio.to_thread(flood_answers, flooding)
    return alone, flooded, answers


def fair(alone: Steady, flooded: Steady) -> bool:
    return flooded.answered_per_second >= 0.9 * alone.answered_per_second and flooded.p99 <= max(
        3 * alone.p99, alone.p99 + 0.050
    )


async def measured(
    served: Served, directory: Path, holds: Callable[[Steady, Steady], bool]
) -> tuple[bool, dict[str, int], str]:
    """Whether B's figures hold under A's flood, A's answers, and the figures in words. On a shared machine one
    measurement may be disturbed by other work: a second one is taken then, and must hold."""
    for attempt in (1, 2):
        alone, flooded, answers = await measure(served, directory)
        if holds(alone, flooded) or attempt == 2:
            break
        await asyncio.sleep(2)
    figures = (
        f"B alone: {alone.answered_per_second:.1f}/s p99 {1000 * alone.p99:.1f} ms; under the flood: "
        f"{flooded.answered_per_second:.1f}/s p99 {1000 * flooded.p99:.1f} ms; A's answers {answers}"
    )
    print(figures)
    assert set(alone.statuses) == {200} and set(flooded.statuses) == {200}, figures
    return holds(alone, flooded), answers, figures


async def test_a_flooding_org_does_not_take_the_service_from_a_steady_one(served: Served, tmp_path: Path) -> None:
    held, answers, figures = await measured(served, tmp_path, fair)
    assert held, figures
    # A was refused what exceeds its budget or its share, and told when to come back.
    assert answers["200"] > 0 and answers["429"] + answers["503"] > answers["200"], figures
    assert answers["other"] == 0 and answers["errors"] == 0 and answers["without_retry_after"] == 0, figures


class TestWithABudgetLargeEnoughForTheFlood:
    """A big tenant whose budget admits its whole flood, on a pool of one connection: only the gateway's
    sharing stands between A and B. The machine itself is then saturated (the flood, PostgreSQL and the
    gateway share its two cores), so B cannot keep its unloaded latency; it must keep its throughput and
    get its answers within a fraction of a second, where first come, first served kept it waiting for
    seconds (p99 1.8 s measured)."""

    @pytest.fixture
    def flags(self) -> tuple[str, ...]:
        return ("--rate-limit", "1000000", "--rate-limit-burst", "1000000", "--pool-max-size", "1")

    async def test_the_steady_org_still_gets_its_answers(self, served: Served, tmp_path: Path) -> None:
        def kept(alone: Steady, flooded: Steady) -> bool:
            return flooded.answered_per_second >= 0.9 * alone.answered_per_second and flooded.p99 <= 0.25

        held, answers, figures = await measured(served, tmp_path, kept)
        assert held, figures
        assert answers["200"] > 0, figures
