"""Live balances: how soon a committed change reaches its subscribers, what an idle subscription costs, and the
query path beside them.

Run as `python bench/run.py --live [--customers 1000000] [--reuse] [--duration 15] [--warmup 3] [--pool-size 2]
[--live-subscribers 1000,10000] [--live-rates 100,1000] [--live-seconds 10] [--live-sockets-at-once 10]
[--live-writers 8] [--live-sync-commit]`, or `python bench/live.py` with the same flags.

The gateway (`loyalty-gateway serve`, 1 worker, the working tree's code as the other modes run it) serves the
bench's database. One client process (this one) opens N `pointsBalance` subscriptions (source INSTORE, one
identifier each) to N distinct real customers: identifiers that name one customer only, of customers with a
balance in their org's default program, spread over the orgs as the data is. They are multiplexed over
WebSocket connections of --live-per-connection subscriptions (one org's each, with a key of that org), spoken
in graphql-transport-ws by hand with the `websockets` library, --live-sockets-at-once of them opening at a time
(0: all at once); the bench waits for every subscription's first message (the balance now) and reports how long
that took, and how many starts the gateway refused for want of a database connection (SERVICE_UNAVAILABLE: the
client subscribes again after the delay the error names).

Changes: a writer in the same process (asyncpg, --live-writers connections, synchronous_commit off unless
--live-sync-commit) commits, open loop at R a second for --live-seconds, `UPDATE balances SET main_points =
<marker>` of one subscribed customer's default-program balance, each marker a value of its own, the customers
taken in turn from a fixed random order of all N (so that one customer's changes are N/R seconds apart, well
over the gateway's 0.1 s between two messages of one subscription). A change's latency is when the client
read the message carrying its marker less when the writer's commit returned (time.perf_counter, one clock). A
change whose marker never arrives is counted as merged when a later change of the same customer arrived instead
(the gateway merges changes within its interval), as gone to an ended subscription when the gateway had ended
that subscription (with a coded error), as never arrived otherwise. CPU per message is the gateway's CPU over
the phase (writing, then until the last messages arrived) divided by the messages delivered; "net of idle"
first takes off what the same subscriptions cost idle.

Memory: the gateway's RSS (its process and children) before the largest N subscriptions open and with them
open and idle, divided by N; with them idle, also the gateway's CPU and how long it takes to answer GET /healthz
(its event loop held up by garbage collections and the subscriptions' timers). The query path: wrk at
c=QUERY_CONCURRENCY over the sampled single lookups, as --ingest drives it: (a) with no subscription, (b) with
the largest N open and idle, (c) beside changes at the smallest R to them, and (a) again after every
subscription closed; ratios to the mean of the two (a).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import re
import shlex
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import orjson
import psutil
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from checkout import code_state_lines, current_gateway
from database import Postgres, embedded_postgres, install_signal_handlers
from dataset import Dataset, create_api_key, prepare
from measure import Workload, make_workloads
from report import opening_sections, write_markdown
from servers import Running, check_answers, free_port, gateway, running
from wrk import LoadResult, busy_cpu_seconds, cpu_seconds, require_wrk, run_wrk, wait_for_quiet

# The query path as --ingest drives it (ingest.py): single lookups at c=32, a pool of 2 (--pool-size overrides).
QUERY_CONCURRENCY = 32
QUERY_POOL_SIZE = 2
SUBSCRIBERS = (1_000, 10_000)
RATES = (100, 1_000)
PHASE_SECONDS = 10.0
PER_CONNECTION = 100  # the gateway's LOYALTY_GATEWAY_MAX_SUBSCRIPTIONS_PER_CONNECTION
WRITERS = 8
ASYNC_COMMIT = "off, so that the disk does not cap the rate: a commit is announced when it returns either way"
# After the last commit of a phase, its last messages are waited for: until every customer's last change arrived
# (each must: a subscriber always gets the latest balance), or for DRAIN_QUIET seconds neither did a message
# arrive nor did the gateway count one sent, or DRAIN_LIMIT seconds passed.
DRAIN_QUIET = 5.0
DRAIN_LIMIT = 120.0
# How long every subscription may take to get its first message; how often one refused at its start is
# subscribed again.
FIRST_TIMEOUT = 300.0
MAX_RETRIES = 20
# WebSockets opened at once, each waiting for its subscriptions' first messages before the next opens.
SOCKETS_AT_ONCE = 10
# The idle subscriptions' own cost is watched this long: a few checks of their API key (every 5 s, the key cache's
# lifetime), their only work while idle, and the garbage collections that their timers' objects bring about.
IDLE_SECONDS = 15.0
# Then the gateway's event loop is watched: GET /healthz every STALL_EVERY s for STALL_SECONDS.
STALL_SECONDS = 10.0
STALL_EVERY = 0.02
# Aims of the issue: push latency a tenth of a one-second refetch's (which shows a change 0.5 s late on average,
# 1 s at worst), at no fewer subscriptions per core than Hasura's published figure.
REFETCH_SECONDS = 1.0
HASURA_PER_CORE = 5_000

PROTOCOL = Subprotocol("graphql-transport-ws")
SUBSCRIPTION = (
    "subscription Live($ids: [IdentifierInput!]!) { "
    "pointsBalance(identifiers: $ids, source: INSTORE) { entityId mainPoints } }"
)
UPDATE = (
    "UPDATE balances SET main_points = $1 "
    "WHERE org_id = $2 AND entity_type = 'CUSTOMER' AND entity_id = $3 AND program_id = $4"
)

# Customers a subscription can name with one INSTORE identifier of theirs alone (no other customer of the org
# holds it; in a dual-eligibility org, of the primary type), with a balance in the org's default program:
# one identifier a customer, picked at random, from pages sampled over the whole table.
_PICK_CUSTOMERS = """
SELECT org_id, customer_id, program_id, type, value FROM (
    SELECT DISTINCT ON (i.org_id, i.customer_id) i.org_id, i.customer_id, p.program_id, i.type, i.value
    FROM customer_identifiers i TABLESAMPLE SYSTEM ({percent})
    JOIN orgs o ON o.org_id = i.org_id
    JOIN programs p ON p.org_id = i.org_id AND p.is_default
    JOIN balances b ON b.org_id = i.org_id AND b.entity_type = 'CUSTOMER' AND b.entity_id = i.customer_id
                   AND b.program_id = p.program_id
    WHERE i.source = 'INSTORE' AND i.account_id = ''
      AND (NOT o.dual_eligibility OR i.type = o.primary_identifier)
      AND NOT EXISTS (
          SELECT 1 FROM customer_identifiers j
          WHERE j.org_id = i.org_id AND j.source = i.source AND j.account_id = i.account_id AND j.type = i.type
            AND j.value = i.value AND j.customer_id <> i.customer_id)
    ORDER BY i.org_id, i.customer_id, random()
) picked
ORDER BY random()
LIMIT {count}
"""
# A sample of the gateway's /metrics: its name (without _total) and value, whatever its labels.
_METRIC = re.compile(rb"^(loyalty_gateway_\w+?)(?:_total)?(?:\{[^}]*\})? ([0-9.eE+-]+)$", re.MULTILINE)
MESSAGES = "loyalty_gateway_live_messages"
# Statements that could not have a connection in time (acquire_timeout): a live lookup then looks again 1 s later.
UNAVAILABLE = "loyalty_gateway_db_unavailable"


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of --live (every other flag it reads is the bench's: --customers, --reuse, --duration, --warmup,
    --quiet-wait, --pool-size, --samples)."""
    parser.add_argument(
        "--live-subscribers",
        type=_ints,
        default=list(SUBSCRIBERS),
        help="--live: subscriptions at once, one customer each (default 1000,10000; the largest also for memory "
        "and the query path)",
    )
    parser.add_argument(
        "--live-rates", type=_ints, default=list(RATES), help="--live: changes committed a second (default 100,1000)"
    )
    parser.add_argument(
        "--live-seconds", type=float, default=PHASE_SECONDS, help="--live: seconds of changes per phase (default 10)"
    )
    parser.add_argument(
        "--live-per-connection",
        type=int,
        default=PER_CONNECTION,
        help=f"--live: subscriptions per WebSocket (default {PER_CONNECTION}, the gateway's limit)",
    )
    parser.add_argument(
        "--live-sockets-at-once",
        type=int,
        default=SOCKETS_AT_ONCE,
        help=f"--live: WebSockets opening at once, each until its subscriptions' first messages (default "
        f"{SOCKETS_AT_ONCE}; 0: all of them at once, a reconnection storm)",
    )
    parser.add_argument(
        "--live-writers", type=int, default=WRITERS, help=f"--live: the writer's connections (default {WRITERS})"
    )
    parser.add_argument(
        "--live-sync-commit",
        action="store_true",
        help="--live: the writer's commits wait for the WAL's flush (default: synchronous_commit = off, so that "
        "the disk does not cap the rate; a commit is announced when it returns either way)",
    )


@dataclass(frozen=True, slots=True)
class Options:
    subscribers: list[int]  # largest first
    rates: list[int]
    seconds: float
    per_connection: int
    writers: int
    sync_commit: bool
    sockets_at_once: int

    @classmethod
    def of(cls, args: argparse.Namespace) -> Options:
        # run.py may not have called add_arguments: then the defaults.
        return cls(
            sorted(getattr(args, "live_subscribers", None) or SUBSCRIBERS, reverse=True),
            sorted(getattr(args, "live_rates", None) or RATES),
            getattr(args, "live_seconds", None) or PHASE_SECONDS,
            getattr(args, "live_per_connection", None) or PER_CONNECTION,
            getattr(args, "live_writers", None) or WRITERS,
            getattr(args, "live_sync_commit", False),
            getattr(args, "live_sockets_at_once", SOCKETS_AT_ONCE),
        )


# --- the subscribers ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Customer:
    org_id: int
    customer_id: int
    program_id: int  # the org's default program: whose main points the subscription shows
    type: str
    value: str


def pick_customers(postgres: Postgres, count: int) -> list[Customer]:
    total = int(postgres.psql("SELECT reltuples::bigint FROM pg_class WHERE relname = 'customer_identifiers'"))
    percent = min(100.0, 100.0 * 20 * count / max(total, 1))
    picked: list[Customer] = []
    for attempt in (percent, 100.0):
        out = postgres.psql(
            "COPY (" + _PICK_CUSTOMERS.format(percent=f"{attempt:.6f}", count=int(count)) + ") TO STDOUT"
        )
        picked = []
        for line in out.splitlines():
            org_id, customer_id, program_id, type_, value = line.split("\t")
            picked.append(Customer(int(org_id), int(customer_id), int(program_id), type_, value))
        if len(picked) >= count or attempt >= 100.0:
            break
    if len(picked) < count:
        raise SystemExit(
            f"--live: only {len(picked):,} customers can be subscribed to with one INSTORE identifier in this "
            f"database; ask for fewer subscribers (--live-subscribers) or more customers (--customers)"
        )
    return picked


class Subscribers:
    """N subscriptions over WebSockets of up to `per_connection` each, spoken in graphql-transport-ws; what they
    received, when (time.perf_counter).

    A subscription refused at its start with SERVICE_UNAVAILABLE (the gateway's pool too busy for its first look)
    is subscribed again after the delay the error names, as a client would, at most MAX_RETRIES times; each
    refusal is counted."""

    def __init__(self, url: str, customers: Sequence[Customer], keys: dict[int, str], per_connection: int) -> None:
        self.url = url
        self.customers = list(customers)
        self.keys = keys
        self.per_connection = per_connection
        self.sockets: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []
        self.socket_of: dict[int, ClientConnection] = {}
        self.subscribed_at: list[float] = [0.0] * len(self.customers)
        self.first_at: list[float | None] = [None] * len(self.customers)
        self.firsts = 0
        self.failed: set[int] = set()  # ended or erred before their first message, for good
        self.refused = 0  # SERVICE_UNAVAILABLE at a subscription's start, each time
        self.retries: dict[int, int] = {}  # subscription -> times subscribed again
        self.retrying: set[int] = set()  # refused, waiting to be subscribed again: its `complete` is expected
        self.pending: dict[int, int] = {}  # group -> its subscriptions still without a first message
        self.group_of: dict[int, int] = {}
        self.group_done: dict[int, asyncio.Event] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        # (subscription, main points) -> when it was read; later messages only (not the first).
        self.received: dict[tuple[int, int], float] = {}
        self.messages = 0
        self.duplicates = 0  # a later message carrying the same value as one before it
        self.problems: list[str] = []  # errors, ends, closed sockets, wrong entities (not the refusals retried)
        # Subscriptions the gateway ended after their first message, and the codes it gave.
        self.ended: set[int] = set()
        self.end_codes: Counter[str] = Counter()

    def groups(self) -> list[list[int]]:
        """The subscriptions' indexes by connection: one org's each, at most per_connection."""
        by_org: dict[int, list[int]] = {}
        for index, customer in enumerate(self.customers):
            by_org.setdefault(customer.org_id, []).append(index)
        return [
            members[start : start + self.per_connection]
            for members in by_org.values()
            for start in range(0, len(members), self.per_connection)
        ]

    async def open(self, sockets_at_once: int) -> float:
        """Open the connections, `sockets_at_once` at a time (0: all at once), each subscribing to all of its
        subscriptions at once and done when each has its first message; returns the seconds until every
        subscription had its first message."""
        started = time.perf_counter()
        groups = self.groups()
        for number, group in enumerate(groups):
            self.pending[number] = len(group)
            self.group_done[number] = asyncio.Event()
            for index in group:
                self.group_of[index] = number
        limit = asyncio.Semaphore(sockets_at_once or len(groups))
        deadline = started + FIRST_TIMEOUT

        async def one(number: int, group: list[int]) -> None:
            async with limit:
                await self._open(group)
                with suppress(TimeoutError):
                    await asyncio.wait_for(self.group_done[number].wait(), max(0.0, deadline - time.perf_counter()))

        await asyncio.gather(*(one(number, group) for number, group in enumerate(groups)))
        if self.firsts < len(self.customers):
            missing = len(self.customers) - self.firsts
            raise RuntimeError(
                f"{missing:,} of {len(self.customers):,} subscriptions had no first message within "
                f"{FIRST_TIMEOUT:.0f} s ({len(self.failed):,} ended or erred first; {self.refused:,} refusals "
                f"retried); problems: {self.problems[:5]}"
            )
        return time.perf_counter() - started

    async def _open(self, group: list[int]) -> None:
        key = self.keys[self.customers[group[0]].org_id]
        socket = await connect(self.url, subprotocols=[PROTOCOL], open_timeout=60, max_queue=None)
        await socket.send(
            orjson.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}}).decode()
        )
        ack = orjson.loads(await asyncio.wait_for(socket.recv(), 60))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"connection_init answered {ack}")
        self.sockets.append(socket)
        self.readers.append(asyncio.create_task(self._read(socket)))
        for index in group:
            self.socket_of[index] = socket
            self.subscribed_at[index] = time.perf_counter()
            await self._subscribe(index)

    async def _subscribe(self, index: int) -> None:
        customer = self.customers[index]
        variables = {"ids": [{"type": customer.type, "value": customer.value}]}
        message = {"id": str(index), "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": variables}}
        await self.socket_of[index].send(orjson.dumps(message).decode())

    async def _again(self, index: int, delay: float) -> None:
        await asyncio.sleep(delay)
        self.retrying.discard(index)
        self.retries[index] = self.retries.get(index, 0) + 1
        with suppress(ConnectionClosed):
            await self._subscribe(index)

    async def _read(self, socket: ClientConnection) -> None:
        try:
            async for raw in socket:
                now = time.perf_counter()
                message = orjson.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    self._next(int(message["id"]), message.get("payload") or {}, now)
                elif kind == "ping":
                    await socket.send('{"type":"pong"}')
                elif kind in ("error", "complete"):
                    index = int(message["id"])
                    if kind == "complete" and index in self.retrying:
                        continue
                    self.problems.append(f"subscription {index} ended: {str(message)[:300]}")
                    if self.first_at[index] is not None:
                        self.ended.add(index)
                    self._failed(index)
        except ConnectionClosed as closed:
            if closed.rcvd is not None and closed.rcvd.code != 1000:
                self.problems.append(f"the gateway closed a socket: {closed.rcvd.code} {closed.rcvd.reason}")
        except Exception as error:  # a message the client cannot read: said, not raised in a forgotten task
            self.problems.append(f"the client failed to read a message: {error!r}")

    def _done(self, index: int) -> None:
        """A subscription no longer waited for (its first message came, or it failed for good)."""
        group = self.group_of.get(index)
        if group is not None:
            self.pending[group] -= 1
            if not self.pending[group]:
                self.group_done[group].set()

    def _failed(self, index: int) -> None:
        if self.first_at[index] is None and index not in self.failed:
            self.failed.add(index)
            self._done(index)

    def _refused(self, index: int, errors: list[dict[str, Any]]) -> bool:
        """A start refused for want of a database connection: subscribe again later (True), if not too often."""
        error = errors[0] if errors else {}
        if (error.get("extensions") or {}).get("code") != "SERVICE_UNAVAILABLE":
            return False
        if self.first_at[index] is not None or self.retries.get(index, 0) >= MAX_RETRIES:
            return False
        self.refused += 1
        self.retrying.add(index)
        found = re.search(r"try again in (\d+) s", str(error.get("message", "")))
        task = asyncio.create_task(self._again(index, float(found[1]) if found else 1.0))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    def _next(self, index: int, payload: dict[str, Any], now: float) -> None:
        balance = (payload.get("data") or {}).get("pointsBalance")
        if payload.get("errors") or not balance:
            errors = payload.get("errors") or []
            if not self._refused(index, errors):
                self.problems.append(f"subscription {index}: {str(payload)[:300]}")
                if self.first_at[index] is not None:
                    self.ended.add(index)
                    self.end_codes[str(((errors or [{}])[0].get("extensions") or {}).get("code"))] += 1
                self._failed(index)
            return
        if self.first_at[index] is None:
            if index in self.failed:
                return
            self.first_at[index] = now
            if balance.get("entityId") != str(self.customers[index].customer_id):
                self.problems.append(f"subscription {index} shows {balance.get('entityId')}, not its customer")
            self.firsts += 1
            self._done(index)
            return
        self.messages += 1
        marker = int(Decimal(balance["mainPoints"]))
        if (index, marker) in self.received:
            self.duplicates += 1
        else:
            self.received[(index, marker)] = now

    def first_message_ms(self) -> list[float]:
        """Per subscription: its first message's time after its (first) subscribe message was sent."""
        return sorted(
            1000 * (first - sent) for first, sent in zip(self.first_at, self.subscribed_at, strict=True) if first
        )

    async def close(self) -> None:
        for task in tuple(self.tasks):
            task.cancel()
        await asyncio.gather(*(socket.close() for socket in self.sockets), return_exceptions=True)
        await asyncio.gather(*self.readers, return_exceptions=True)
        self.sockets, self.readers = [], []


# --- the writer ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    subscription: int
    marker: int
    sent_at: float
    committed_at: float


class Writer:
    """Commits changes to subscribed customers' balances, open loop, each with a marker value of its own."""

    def __init__(
        self, pool: asyncpg.Pool, customers: Sequence[Customer], markers: Iterator[int], seed: int = 1
    ) -> None:
        self.pool = pool
        self.customers = customers
        self.order = list(range(len(customers)))
        random.Random(seed).shuffle(self.order)
        self.turn = 0  # where in the order the next change goes
        self.markers = markers

    async def run(self, rate: float, seconds: float | None, stop: asyncio.Event | None = None) -> list[Change]:
        """`rate` changes a second for `seconds` (or until `stop`), each at its time whatever the earlier ones
        are doing; returns them once every one committed."""
        start = time.perf_counter()
        number = 0
        commits: list[asyncio.Task[Change]] = []
        while (seconds is None or number < rate * seconds) and (stop is None or not stop.is_set()):
            delay = start + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            index = self.order[self.turn % len(self.order)]
            self.turn += 1
            number += 1
            commits.append(asyncio.create_task(self._commit(index, next(self.markers))))
        return list(await asyncio.gather(*commits))

    async def _commit(self, index: int, marker: int) -> Change:
        customer = self.customers[index]
        async with self.pool.acquire() as connection:
            sent = time.perf_counter()
            await connection.execute(UPDATE, marker, customer.org_id, customer.customer_id, customer.program_id)
            return Change(index, marker, sent, time.perf_counter())


# --- measuring ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds over a span: the gateway's, PostgreSQL's, this process's (client and writer), everyone's."""

    seconds: float
    server: float
    postgres: float
    client: float
    busy: float

    @property
    def other(self) -> float:
        return max(0.0, self.busy - self.server - self.postgres - self.client)


class Meter:
    def __init__(self, server: psutil.Process, postmaster: psutil.Process) -> None:
        self.server, self.postmaster, self.me = server, postmaster, psutil.Process()

    def read(self) -> tuple[float, ...]:
        mine = self.me.cpu_times()  # this process only: the server and wrk are its children
        return (
            time.perf_counter(), cpu_seconds(self.server), cpu_seconds(self.postmaster), mine.user + mine.system,
            busy_cpu_seconds(),
        )  # fmt: skip

    def since(self, before: tuple[float, ...]) -> Usage:
        return Usage(*(after - then for after, then in zip(self.read(), before, strict=True)))


def rss_bytes(process: psutil.Process) -> int:
    total = 0
    for member in (process, *process.children(recursive=True)):
        with suppress(psutil.NoSuchProcess):
            total += member.memory_info().rss
    return total


@dataclass(slots=True)
class Outcome:
    subscribers: int
    rate: int
    changes: list[Change]
    latency_ms: list[float]
    merged: int  # no message of its own: a later change of the same customer arrived instead
    lost: int  # no message, and none of a later change of that customer either
    to_ended: int  # no message: the gateway had ended that subscription
    usage: Usage
    writing_seconds: float  # first change sent to last committed
    gateway_messages: float  # the gateway's own count of messages sent meanwhile (its metrics)
    unavailable: float  # the gateway's statements that found no connection in time meanwhile (its metrics)
    other_messages: int  # messages that matched no change of the phase
    idle_cores: float  # the gateway's CPU, in cores, with these subscriptions idle
    beside: str = ""

    def percentile(self, p: float) -> float:
        ordered = self.latency_ms
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    @property
    def sent_rate(self) -> float:
        return len(self.changes) / self.writing_seconds if self.writing_seconds else 0.0

    @property
    def server_ms_per_message(self) -> float:
        return 1000 * self.usage.server / len(self.latency_ms) if self.latency_ms else float("nan")

    @property
    def net_server_ms_per_message(self) -> float:
        net = self.usage.server - self.idle_cores * self.usage.seconds
        return 1000 * net / len(self.latency_ms) if self.latency_ms else float("nan")

    @property
    def postgres_ms_per_change(self) -> float:
        return 1000 * self.usage.postgres / len(self.changes) if self.changes else float("nan")

    @property
    def server_cores(self) -> float:
        return self.usage.server / self.usage.seconds if self.usage.seconds else 0.0


def settle(changes: Sequence[Change], subscribers: Subscribers) -> tuple[list[float], int, int, int, int]:
    """Latencies (ms, sorted) of the changes whose message arrived; how many merged into a later one; how many
    were lost; how many went to subscriptions the gateway had ended; how many messages matched no change."""
    latency, merged, lost, to_ended = [], 0, 0, 0
    latest: dict[int, int] = {}  # subscription -> the largest marker it received among these changes
    markers = set()
    for change in changes:
        markers.add((change.subscription, change.marker))
        if (change.subscription, change.marker) in subscribers.received:
            latest[change.subscription] = max(latest.get(change.subscription, 0), change.marker)
    for change in changes:
        at = subscribers.received.get((change.subscription, change.marker))
        if at is not None:
            latency.append(1000 * (at - change.committed_at))
        elif latest.get(change.subscription, 0) > change.marker:
            merged += 1
        elif change.subscription in subscribers.ended:
            to_ended += 1
        else:
            lost += 1
    others = sum(1 for key in subscribers.received if key not in markers)
    return sorted(latency), merged, lost, to_ended, others


async def live_metrics(server: Running) -> dict[str, float]:
    """The gateway's gauges and counters (its /metrics, beside /graphql), each summed over its labels."""
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(server.url.rsplit("/", 1)[0] + "/metrics")
    sums: dict[str, float] = {}
    for name, value in _METRIC.findall(answer.content):
        if not name.endswith(b"_created"):
            sums[name.decode()] = sums.get(name.decode(), 0.0) + float(value)
    return sums


async def drain(server: Running, changes: Sequence[Change], subscribers: Subscribers, last: float) -> None:
    """Wait for every customer's last change of the phase to arrive (DRAIN_QUIET, DRAIN_LIMIT)."""
    final = {change.subscription: change.marker for change in changes}  # in the order sent: the last wins
    progress: tuple[int, float] = (-1, -1.0)
    heard = time.perf_counter()
    while (now := time.perf_counter()) < last + DRAIN_LIMIT:
        if all((subscription, marker) in subscribers.received for subscription, marker in final.items()):
            return
        # Progress: a message received, or one the gateway counts as sent (a backlog may hold the sockets quiet).
        sent = (await live_metrics(server)).get(MESSAGES, 0.0) if now - heard > 1 else progress[1]
        if (len(subscribers.received), sent) != progress:
            progress, heard = (len(subscribers.received), sent), now
        elif now - heard > DRAIN_QUIET:
            return
        await asyncio.sleep(0.1)


async def changes_phase(
    server: Running, meter: Meter, writer: Writer, subscribers: Subscribers, rate: int, seconds: float,
    idle_cores: float, stop: asyncio.Event | None = None, beside: str = "",
) -> Outcome:  # fmt: skip
    """R changes a second to the subscribers for `seconds` (or until `stop`), then waits for their last
    messages (drain)."""
    subscribers.received.clear()
    metrics = await live_metrics(server)
    before = meter.read()
    changes = await writer.run(rate, seconds if stop is None else None, stop)
    last = max((change.committed_at for change in changes), default=time.perf_counter())
    await drain(server, changes, subscribers, last)
    usage = meter.since(before)
    after = await live_metrics(server)
    sent = after.get(MESSAGES, 0) - metrics.get(MESSAGES, 0)
    unavailable = after.get(UNAVAILABLE, 0) - metrics.get(UNAVAILABLE, 0)
    latency, merged, lost, to_ended, others = settle(changes, subscribers)
    writing = last - min((change.sent_at for change in changes), default=last)
    return Outcome(
        len(subscribers.customers), rate, changes, latency, merged, lost, to_ended, usage, writing, sent,
        unavailable, others, idle_cores, beside,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Opening:
    subscribers: int
    connections: int
    seconds: float  # until every subscription had its first message
    first_ms: list[float]  # per subscription, sorted: first message after its subscribe was sent
    usage: Usage
    refused: int  # starts refused with SERVICE_UNAVAILABLE (then subscribed again)
    retried: int  # subscriptions refused at least once


@dataclass(frozen=True, slots=True)
class QueryRun:
    name: str
    result: LoadResult
    client_cpu: float  # this process's CPU over the measured run (the idle sockets; the writer in (c))


@dataclass(slots=True)
class Findings:
    openings: list[Opening] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    queries: list[QueryRun] = field(default_factory=list)
    rss_before: int = 0
    rss_with: int = 0
    memory_subscribers: int = 0
    idle: dict[int, Usage] = field(default_factory=dict)  # subscribers -> the gateway idle with them
    problems: list[str] = field(default_factory=list)
    duplicates: int = 0  # messages that repeated the balance the subscription had just been sent
    ended: int = 0  # subscriptions the gateway ended after their first message
    stalls: dict[int, list[float]] = field(default_factory=dict)  # subscribers -> GET /healthz times (ms)
    end_codes: Counter[str] = field(default_factory=Counter)
    gauges: dict[int, dict[str, float]] = field(default_factory=dict)  # subscribers -> the gateway's live gauges


def load(server: Running, postmaster: psutil.Process, workload: Workload, seconds: float) -> LoadResult:
    """One wrk run as measure.drive makes it, its errors counted rather than raised: they are a finding here."""
    return run_wrk(
        server.url, workload.file, concurrency=QUERY_CONCURRENCY, duration=seconds, server=server.psutil,
        postmaster=postmaster, expect_status=workload.expect_status, fresh=workload.fresh,
    )  # fmt: skip


async def measure_queries(
    name: str, server: Running, postmaster: psutil.Process, workload: Workload, args: argparse.Namespace,
    quiet_above: float | None,
) -> QueryRun:  # fmt: skip
    """wrk's warm-up then measured run (in a thread: this loop keeps serving the sockets meanwhile); first, unless
    `quiet_above` is None, a wait for the machine to go quiet (but for that many cores the gateway uses idle)."""
    if args.quiet_wait > 0 and quiet_above is not None:
        await asyncio.to_thread(wait_for_quiet, args.quiet_wait, 0.25 + quiet_above)
    print(f"query path: {name} ...", flush=True)
    if args.warmup > 0:
        await asyncio.to_thread(load, server, postmaster, workload, args.warmup)
    mine = psutil.Process()
    before = sum(mine.cpu_times()[:2])
    result = await asyncio.to_thread(load, server, postmaster, workload, args.duration)
    run = QueryRun(name, result, sum(mine.cpu_times()[:2]) - before)
    print(f"  {query_line(run, None)}", flush=True)
    return run


async def open_subscribers(
    server: Running, meter: Meter, customers: Sequence[Customer], keys: dict[int, str], options: Options,
    findings: Findings,
) -> Subscribers:  # fmt: skip
    url = server.url.replace("http://", "ws://")
    subscribers = Subscribers(url, customers, keys, options.per_connection)
    print(f"opening {len(customers):,} subscriptions over {len(subscribers.groups())} WebSockets ...", flush=True)
    before = meter.read()
    seconds = await subscribers.open(options.sockets_at_once)
    opening = Opening(
        len(customers),
        len(subscribers.groups()),
        seconds,
        subscribers.first_message_ms(),
        meter.since(before),
        subscribers.refused,
        len(subscribers.retries),
    )
    findings.openings.append(opening)
    print(f"  {opening_line(opening)}", flush=True)
    return subscribers


async def idle(server: Running, meter: Meter, subscribers: Subscribers, findings: Findings) -> float:
    """Watch the gateway with the subscriptions idle; returns its CPU in cores."""
    before = meter.read()
    await asyncio.sleep(IDLE_SECONDS)
    usage = meter.since(before)
    count = len(subscribers.customers)
    findings.idle[count] = usage
    findings.gauges[count] = await live_metrics(server)
    cores = usage.server / usage.seconds
    print(f"  idle: the gateway used {cores:.3f} cores with {count:,} subscriptions open", flush=True)
    findings.stalls[count] = await stalls(server)
    print(f"  {stall_line(count, findings.stalls[count])}", flush=True)
    return cores


async def stalls(server: Running) -> list[float]:
    """How long the gateway takes to answer GET /healthz (no database), one request every STALL_EVERY seconds
    for STALL_SECONDS, sorted (ms): how long its event loop is held up by other work (garbage collections, timers,
    subscriptions) while nothing else asks it anything."""
    url = server.url.rsplit("/", 1)[0] + "/healthz"
    times: list[float] = []
    async with httpx.AsyncClient(timeout=30) as client:
        end = time.perf_counter() + STALL_SECONDS
        while time.perf_counter() < end:
            started = time.perf_counter()
            await client.get(url)
            times.append(1000 * (time.perf_counter() - started))
            await asyncio.sleep(STALL_EVERY)
    return sorted(times)


def stall_line(count: int, times: list[float]) -> str:
    return (
        f"GET /healthz with {count:,} idle subscriptions: p50 {_pct(times, 50):.1f} ms, p99 {_pct(times, 99):.1f} "
        f"ms, max {times[-1] if times else float('nan'):.0f} ms ({len(times)} requests over {STALL_SECONDS:.0f} s)"
    )


async def close_subscribers(server: Running, subscribers: Subscribers, findings: Findings) -> None:
    findings.problems += subscribers.problems
    findings.duplicates += subscribers.duplicates
    findings.ended += len(subscribers.ended)
    findings.end_codes.update(subscribers.end_codes)
    await subscribers.close()
    deadline = time.monotonic() + 30
    while (await live_metrics(server)).get("loyalty_gateway_live_subscriptions", 0) > 0:
        if time.monotonic() > deadline:
            findings.problems.append("subscriptions were still counted by the gateway 30 s after their sockets closed")
            break
        await asyncio.sleep(0.2)


async def all_phases(
    postgres: Postgres, server: Running, workload: Workload, customers: list[Customer], keys: dict[int, str],
    options: Options, args: argparse.Namespace,
) -> Findings:  # fmt: skip
    findings = Findings()
    postmaster = postgres.postmaster()
    meter = Meter(server.psutil, postmaster)
    settings = {"synchronous_commit": "on" if options.sync_commit else "off"}
    pool = await asyncpg.create_pool(
        postgres.url, min_size=options.writers, max_size=options.writers, server_settings=settings
    )
    assert pool is not None
    # Marker values: larger than every earlier run's, unique within this one.
    markers = itertools.count(int(time.time()) * 100_000)
    writer = Writer(pool, customers[: options.subscribers[0]], markers)
    try:
        # The live path's first use (imports, the document's parse) is not any subscription's cost.
        warm = Subscribers(server.url.replace("http://", "ws://"), customers[:10], keys, options.per_connection)
        await warm.open(options.sockets_at_once)
        await close_subscribers(server, warm, findings)

        findings.queries.append(
            await measure_queries("(a) no subscription, before", server, postmaster, workload, args, 0)
        )
        largest, *others = options.subscribers
        findings.stalls[0] = await stalls(server)
        print(f"  {stall_line(0, findings.stalls[0])}", flush=True)
        await asyncio.sleep(1)
        findings.rss_before = rss_bytes(server.psutil)
        subscribers = await open_subscribers(server, meter, customers[:largest], keys, options, findings)
        idle_cores = await idle(server, meter, subscribers, findings)
        findings.rss_with, findings.memory_subscribers = rss_bytes(server.psutil), largest
        print(f"  memory: {memory_line(findings)}", flush=True)
        findings.queries.append(
            await measure_queries(f"(b) {largest:,} idle subscriptions", server, postmaster, workload, args, idle_cores)
        )
        for rate in options.rates:
            await latency_phase(server, meter, writer, subscribers, rate, options, args, idle_cores, findings)
        # (c): the query path beside changes at the smallest rate; their latency is measured too.
        stop = asyncio.Event()
        rate = options.rates[0]
        if args.quiet_wait > 0:
            await asyncio.to_thread(wait_for_quiet, args.quiet_wait, 0.25 + idle_cores)
        flowing = asyncio.create_task(
            changes_phase(server, meter, writer, subscribers, rate, 0, idle_cores, stop, f"wrk c={QUERY_CONCURRENCY}")
        )
        try:
            run = await measure_queries(
                f"(c) {largest:,} subscriptions, {rate:,} changes/s to them", server, postmaster, workload, args, None
            )
        except BaseException:
            flowing.cancel()
            await asyncio.gather(flowing, return_exceptions=True)
            raise
        stop.set()
        findings.queries.append(run)
        outcome = await flowing
        findings.outcomes.append(outcome)
        print(f"  {outcome_line(outcome)}", flush=True)
        await close_subscribers(server, subscribers, findings)

        for count in others:
            await asyncio.sleep(1)
            subscribers = await open_subscribers(server, meter, customers[:count], keys, options, findings)
            idle_cores = await idle(server, meter, subscribers, findings)
            writer = Writer(pool, customers[:count], markers)
            for rate in options.rates:
                await latency_phase(server, meter, writer, subscribers, rate, options, args, idle_cores, findings)
            await close_subscribers(server, subscribers, findings)

        findings.queries.append(
            await measure_queries("(a) no subscription, after", server, postmaster, workload, args, 0)
        )
    finally:
        await pool.close()
    return findings


async def latency_phase(
    server: Running, meter: Meter, writer: Writer, subscribers: Subscribers, rate: int, options: Options,
    args: argparse.Namespace, idle_cores: float, findings: Findings,
) -> None:  # fmt: skip
    if args.quiet_wait > 0:
        await asyncio.to_thread(wait_for_quiet, args.quiet_wait, 0.25 + idle_cores)
    print(
        f"{len(subscribers.customers):,} subscriptions, {rate:,} changes/s for {options.seconds:.0f} s ...", flush=True
    )
    outcome = await changes_phase(server, meter, writer, subscribers, rate, options.seconds, idle_cores)
    findings.outcomes.append(outcome)
    print(f"  {outcome_line(outcome)}", flush=True)


# --- the report ---------------------------------------------------------------------------------------------------


def _pct(values: Sequence[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


def opening_line(opening: Opening) -> str:
    first = opening.first_ms
    return (
        f"| {opening.subscribers:,} | {opening.connections} | {opening.seconds:.2f} | {_pct(first, 50):.0f} "
        f"| {_pct(first, 99):.0f} | {first[-1] if first else float('nan'):.0f} "
        f"| {opening.refused:,} | {opening.retried:,} "
        f"| {opening.usage.server:.1f} | {opening.usage.postgres:.1f} | {opening.usage.client:.1f} |"
    )


def outcome_line(outcome: Outcome) -> str:
    u = outcome.usage
    # Beside the lookups, the CPU is theirs too: no figure per message.
    per_message = (
        "| — | — | — "
        if outcome.beside
        else f"| {outcome.server_ms_per_message:.3f} | {outcome.net_server_ms_per_message:.3f} "
        f"| {outcome.postgres_ms_per_change:.3f} "
    )
    return (
        f"| {outcome.subscribers:,} | {outcome.rate:,}" + (f" beside {outcome.beside}" if outcome.beside else "")
        + f" | {outcome.sent_rate:,.0f} | {len(outcome.latency_ms):,} / {len(outcome.changes):,} "
        f"| {outcome.merged} | {outcome.lost} | {outcome.to_ended} | {outcome.gateway_messages:,.0f} "
        f"| {outcome.unavailable:,.0f} | {outcome.percentile(50):.1f} "
        f"| {outcome.percentile(99):.1f} | {outcome.latency_ms[-1] if outcome.latency_ms else float('nan'):.1f} "
        + per_message
        + f"| {outcome.server_cores:.2f} | {u.client / u.seconds:.2f} | {u.other:.1f} |"
    )  # fmt: skip


def memory_line(findings: Findings) -> str:
    grown = findings.rss_with - findings.rss_before
    return (
        f"RSS {findings.rss_before / 2**20:,.1f} MiB before, {findings.rss_with / 2**20:,.1f} MiB with "
        f"{findings.memory_subscribers:,} idle subscriptions: **{grown / 1024 / findings.memory_subscribers:.1f} "
        "KiB per subscription**"
    )


def query_line(run: QueryRun, alone: tuple[float, float] | None) -> str:
    r = run.result
    rps = f"**{r.rps / alone[0]:.2f}**" if alone else "—"
    p99 = f"**{r.p99_ms / alone[1]:.2f}**" if alone else "—"
    errors = f"{r.errors:,} ({r.error_detail})" if r.errors else "0"
    return (
        f"| {run.name} | {r.rps:,.0f} | {rps} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {p99} | {errors} "
        f"| {r.server_ms_per_request:.3f} | {r.postgres_ms_per_request:.3f} | {run.client_cpu:.1f} "
        f"| {max(0.0, r.other_cpu - run.client_cpu):.1f} |"
    )


def tables(findings: Findings) -> dict[str, list[str]]:
    openings = [
        "| subscriptions | WebSockets | s until every first message | first message after subscribe p50 ms "
        "| p99 ms | max ms | starts refused (SERVICE_UNAVAILABLE) | subscriptions retried | server CPU s | PG CPU s "
        "| client CPU s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(opening_line(opening) for opening in findings.openings),
    ]
    latency = [
        "| subscriptions | changes/s asked | changes/s sent | delivered / sent | merged | never arrived "
        "| to ended subscriptions | gateway sent | no connection in time | p50 ms | p99 ms | max ms "
        "| server CPU ms/message | net of idle | PG CPU ms/change | server cores | client cores | other CPU s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(outcome_line(outcome) for outcome in findings.outcomes),
    ]
    alone_runs = [run.result for run in findings.queries if run.name.startswith("(a)")]
    alone = (statistics.mean(r.rps for r in alone_runs), statistics.mean(r.p99_ms for r in alone_runs))
    queries = [
        "| beside the lookups | req/s | req/s ÷ (a) | p50 ms | p99 ms | p99 ÷ (a) | errors | server CPU ms/req "
        "| PG CPU ms/req | client CPU s | other CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(query_line(run, alone) for run in findings.queries),
    ]
    return {"openings": openings, "latency": latency, "queries": queries}


def memory_lines(findings: Findings) -> list[str]:
    lines = [f"- {memory_line(findings)} (the gateway's process and its children, psutil)"]
    for count, usage in sorted(findings.idle.items()):
        cores = usage.server / usage.seconds
        gauges = findings.gauges.get(count, {})
        lines.append(
            f"- {count:,} idle subscriptions: the gateway used {cores:.3f} cores over {usage.seconds:.0f} s "
            f"(their API keys' checks every 5 s, garbage collections), PostgreSQL "
            f"{usage.postgres / usage.seconds:.3f}; its gauges: "
            f"{gauges.get('loyalty_gateway_live_subscriptions', float('nan')):,.0f} subscriptions, "
            f"{gauges.get('loyalty_gateway_live_connections', float('nan')):,.0f} connections, listening "
            f"{gauges.get('loyalty_gateway_live_listening', float('nan')):.0f}"
        )
    lines += [f"- {stall_line(count, times)}" for count, times in sorted(findings.stalls.items())]
    return lines


def verdict(findings: Findings) -> list[str]:
    lines = []
    mean_ms, worst_ms = 1000 * REFETCH_SECONDS / 2, 1000 * REFETCH_SECONDS
    for outcome in findings.outcomes:
        p50, p99 = outcome.percentile(50), outcome.percentile(99)
        ok = p50 <= mean_ms / 10 and p99 <= worst_ms / 10
        per_core = outcome.subscribers / outcome.server_cores if outcome.server_cores else float("inf")
        beside = f" beside {outcome.beside}" if outcome.beside else ""
        lines.append(
            f"- {outcome.subscribers:,} subscriptions, {outcome.rate:,} changes/s{beside}: p50 {p50:.1f} ms, p99 "
            f"{p99:.1f} ms against a {REFETCH_SECONDS:.0f} s refetch's {mean_ms:.0f} ms on average and "
            f"{worst_ms:.0f} ms at worst: {mean_ms / p50:.0f} and {worst_ms / p99:.0f} times lower (aim: 10 times): "
            f"{'met' if ok else '**not met**'}; the gateway used {outcome.server_cores:.2f} cores: "
            f"{per_core:,.0f} subscriptions per busy core at this rate (Hasura: about {HASURA_PER_CORE:,} per CPU)"
        )
    for count, usage in sorted(findings.idle.items()):
        cores = usage.server / usage.seconds
        lines.append(
            f"- {count:,} idle subscriptions on one worker took {cores:.3f} cores: "
            f"{count / cores if cores else float('inf'):,.0f} per busy core"
        )
    return lines


def log_lines(server: Running) -> list[str]:
    """What the gateway logged (at --log-level warning: warnings and errors only), at most 10 distinct lines."""
    text = server.log.read_text(errors="replace").splitlines()
    distinct = list(dict.fromkeys(line[:300] for line in text if line.strip()))
    return [f"- the gateway logged {len(text)} lines (warnings and errors)"] + [
        f"  - `{line}`" for line in distinct[:10]
    ]


def run_live(args: argparse.Namespace, command_line: str) -> int:
    require_wrk()
    options = Options.of(args)
    stamp = datetime.now()
    current = current_gateway()
    with embedded_postgres(f"pg-{args.customers}", fresh=not args.reuse) as postgres:
        dataset = prepare(postgres, args.customers, samples=args.samples, reuse=args.reuse)
        customers = pick_customers(postgres, options.subscribers[0])
        orgs = sorted({customer.org_id for customer in customers})
        # Keys of their own: the subscriptions' per-key limit is not shared with the lookups'.
        keys = {org_id: create_api_key(postgres, org_id) for org_id in orgs}
        workload = make_workloads(dataset, f"c{args.customers}").gateway
        pool_size = args.pool_size or QUERY_POOL_SIZE
        contender = gateway(postgres, workers=1, pool_size=pool_size, port=free_port())
        with running(contender, workload.requests[0]) as server:
            check_answers(server, workload.requests)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                findings = runner.run(all_phases(postgres, server, workload, customers, keys, options, args))
            logged = log_lines(server)
        version = postgres.version()
    sections = report_sections(command_line, version, dataset, findings, options, args, pool_size, orgs, logged)
    for heading, lines in sections[3:]:
        print("\n".join(["", f"{heading}:", *lines]))
    sections = [*sections[:2], (sections[2][0], [*sections[2][1], *code_state_lines(current)]), *sections[3:]]
    path = write_markdown(
        f"Live balances {stamp:%Y-%m-%d %H:%M}, {args.customers:,} customers", sections, stamp, "live"
    )
    print(f"\nwritten to {path}")
    return 0


def report_sections(
    command_line: str, version: str, dataset: Dataset, findings: Findings, options: Options,
    args: argparse.Namespace, pool_size: int, orgs: list[int], logged: list[str],
) -> list[tuple[str, list[str]]]:  # fmt: skip
    made = tables(findings)
    setup = [
        f"- {args.customers:,} customers; {options.subscribers[0]:,} of them subscribed to (distinct, from "
        f"{len(orgs)} orgs, an INSTORE identifier of theirs alone each, a default-program balance each)",
        "- the gateway: `loyalty-gateway serve --workers 1`, pool "
        f"{pool_size}, its live settings at their defaults (0.1 s between two messages of a subscription; 100 "
        "subscriptions a WebSocket); every API key's rate limit far above the load, as in every mode",
        f"- the client: this process (uvloop), `websockets` speaking graphql-transport-ws by hand, "
        f"{options.per_connection} subscriptions a WebSocket (one org's each), per-message deflate as the "
        "library offers it by default; `subscription { pointsBalance(identifiers: [one], source: INSTORE) "
        "{ entityId mainPoints } }`; "
        + (
            f"{options.sockets_at_once} WebSockets opening at once, each sending all its subscribe messages at "
            "once and counted open when every one had its first message"
            if options.sockets_at_once
            else "every WebSocket opened and every subscription sent at once (a reconnection storm)"
        )
        + "; a start refused with SERVICE_UNAVAILABLE is subscribed again after the delay its message names "
        f"(at most {MAX_RETRIES} times; its first message then counts from its first subscribe)",
        f"- the writer: the same process, {options.writers} asyncpg connections "
        f"(synchronous_commit {'on' if options.sync_commit else ASYNC_COMMIT}), "
        "one `UPDATE balances SET main_points = <marker>` per change (autocommitted; the triggers announce it at "
        "commit), open loop at "
        f"the rate asked for {options.seconds:.0f} s, the customers in a fixed random order so that one "
        "customer's changes are N/R seconds apart; latency: the client's read of the message with the marker "
        "less the return of the commit (time.perf_counter, one process); merged: no message of its own, a later "
        "change of the same customer's arrived; never arrived: not even that. Gateway sent: its "
        "loyalty_gateway_live_messages counter over the phase",
        "- server CPU ms/message: the gateway's CPU over the phase (writing, then until every customer's last "
        f"change arrived, or no message came for {DRAIN_QUIET:.0f} s) ÷ messages delivered; net of idle: less "
        f"what the same subscriptions cost idle over as long ({IDLE_SECONDS:.0f} s watched after they opened); "
        "PG CPU includes the writer's backends; "
        "client cores: this process (client and writer); other CPU: the rest of the machine (the noise)",
        f"- the query path: wrk at c={QUERY_CONCURRENCY} over {len(dataset.samples):,} sampled single lookups "
        f"(answers checked first), {args.warmup:.0f} s warm-up then {args.duration:.0f} s measured; ratios to the "
        "mean of the two (a); client CPU: this process over the measured run (sockets; the writer in (c))",
    ]
    problems = list(dict.fromkeys(findings.problems))
    checks = [
        f"- problems seen by the client: {len(findings.problems)}"
        + "".join(f"\n  - {problem}" for problem in problems[:10]),
        f"- messages repeating the value the subscription had been sent just before: {findings.duplicates}",
        f"- subscriptions the gateway ended after their first message: {findings.ended}"
        + (f" (codes: {dict(findings.end_codes)})" if findings.end_codes else ""),
        *logged,
    ]
    return [
        *opening_sections(command_line, version, setup),
        ("Subscribing", made["openings"]),
        ("Commit → message latency", made["latency"]),
        ("Memory and idle cost", memory_lines(findings)),
        ("The query path beside subscriptions", made["queries"]),
        ("Against the aims", verdict(findings)),
        ("Checks", checks),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """`python bench/live.py …`: run.py's flags and these, as `python bench/run.py --live …` will take them."""
    import run  # run.py imports the modes' modules only when run: no cycle

    parser = run.build_parser()
    args = parser.parse_args(argv)
    if args.customers and len(args.customers) > 1:
        parser.error("--customers takes one count here")
    args.customers = args.customers[0] if args.customers else run.DEFAULT_CUSTOMERS
    install_signal_handlers()
    command_line = "python bench/live.py " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    started = time.monotonic()
    try:
        return run_live(args, command_line)
    except KeyboardInterrupt:
        print("\ninterrupted; every process the bench started has been stopped", file=sys.stderr)
        return 130
    finally:
        print(f"bench finished in {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
