"""Probes and the work that makes a gateway ready.

- `GET /healthz`: the process is up and answering (no database involved).
- `GET /readyz`: the database is reachable and its schema is current — 200,
  or 503 with a JSON reason. One trivial statement at most once a second,
  however many probes ask: concurrent checks share one, and its answer is
  kept for a second. With read replicas it also lists each database (the
  primary, then each replica with its state and lag, as their background
  check last found them); it stays ready as long as the primary serves.

A gateway starts whether or not its database is there. Migrations are
tried once at start-up; if the database cannot be reached they are retried
in the background with backoff, and lookups answer SERVICE_UNAVAILABLE at
once until they are done. Requests never wait for the database to come back:
each one fails within the acquire timeout, and the first after its return
succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.config import Settings
from gateway.db.database import Database
from gateway.db.migrations import migrate
from gateway.db.pool import SERVER_SETTINGS
from gateway.db.replicas import DatabaseReport, ReplicaSet
from gateway.db.schema import required_version, schema_version
from gateway.errors import ServiceUnavailable
from gateway.observability import metrics

logger = logging.getLogger("gateway.edge.health")

# How long a readiness answer is kept, and how long its statement may take.
READINESS_TTL = 1.0
READINESS_TIMEOUT = 1.0
# Backoff between migration attempts while the database cannot be reached.
FIRST_RETRY = 0.25
LONGEST_RETRY = 5.0
# How often sampled gauges (pool, requests in flight) are refreshed between scrapes.
SAMPLE_INTERVAL = 1.0


class SchemaMigrator:
    """Applies pending migrations on a connection of its own, retrying until the database can be reached."""

    def __init__(self, database_url: str, database: Database, *, connect_timeout: float, warm_up: int) -> None:
        self._url = database_url
        self._database = database
        self._connect_timeout = connect_timeout
        self._warm_up = warm_up
        self.done = False
        # Why the last attempt failed: the kind of error only (a probe may be public).
        self.problem = "migrations have not run yet"

    async def attempt(self) -> bool:
        try:
            connection = await asyncpg.connect(
                self._url, server_settings=SERVER_SETTINGS, timeout=self._connect_timeout
            )
            try:
                applied = await migrate(connection)
            finally:
                await connection.close(timeout=self._connect_timeout)
        except Exception as error:  # whatever it is, the gateway keeps running and tries again
            self.problem = f"the database cannot be migrated yet ({type(error).__name__})"
            return False
        for migration in applied:
            logger.info("applied migration %03d_%s", migration.version, migration.name)
        self.done = True
        self._database.mark_ready()
        await self._database.warm_up(self._warm_up)
        return True

    async def run(self) -> None:
        """Retry with exponential backoff (and jitter, so that workers do not retry in step) until done."""
        delay = FIRST_RETRY
        attempts = 1
        logger.warning("the database cannot be reached: serving SERVICE_UNAVAILABLE; %s", self.problem)
        while not self.done:
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, LONGEST_RETRY)
            attempts += 1
            if await self.attempt():
                logger.info("the database is reachable and migrated (after %d attempts)", attempts)
            elif attempts % 10 == 0:
                logger.warning("still cannot reach the database after %d attempts: %s", attempts, self.problem)


class Readiness:
    """The answer of /readyz: None when ready, else the reason; shared and cached."""

    def __init__(
        self,
        database: Database,
        migrator: SchemaMigrator,
        *,
        ttl: float = READINESS_TTL,
        replicas: ReplicaSet | None = None,
    ) -> None:
        self._database = database
        self.replicas = replicas
        self._migrator = migrator
        self._ttl = ttl
        self._required = required_version()
        self._reason: str | None = "not checked yet"
        self._expires = 0.0
        self._probe: asyncio.Future[str | None] | None = None
        self._reported: str | None = None

    async def check(self) -> str | None:
        if time.monotonic() < self._expires:
            return self._reason
        if self._probe is None:
            self._probe = asyncio.ensure_future(self._refresh())
        # Shielded: a probe that gives up does not cancel the check the others wait for.
        return await asyncio.shield(self._probe)

    async def close(self) -> None:
        """Stop a check under way (at shutdown)."""
        if self._probe is not None:
            self._probe.cancel()
            with suppress(asyncio.CancelledError):
                await self._probe

    async def _refresh(self) -> str | None:
        try:
            reason = await self._check_now()
        finally:
            self._probe = None
        self._reason, self._expires = reason, time.monotonic() + self._ttl
        metrics.READY.set(0 if reason else 1)
        if reason != self._reported:
            if reason is None:
                logger.info("ready: the database is reachable and its schema is current")
            else:
                logger.warning("not ready: %s", reason)
            self._reported = reason
        return reason

    async def _check_now(self) -> str | None:
        if not self._migrator.done:
            return self._migrator.problem
        timeout = min(READINESS_TIMEOUT, self._database.acquire_timeout)
        try:
            version = await schema_version(self._database, timeout)
        except ServiceUnavailable:
            return "the database cannot be reached"
        except asyncpg.PostgresError as error:
            return f"the database answered with an error ({type(error).__name__})"
        if version < self._required:
            return f"the database schema is at version {version}; this gateway needs {self._required}"
        return None


def sample_pool(database: Database) -> None:
    """Copy the pool's state into its gauges (each worker its own; a scrape adds them up)."""
    metrics.DB_POOL_CONNECTIONS.set(database.size)
    metrics.DB_POOL_IN_USE.set(database.in_use)
    metrics.DB_POOL_WAITING.set(database.waiting_all)
    metrics.DB_POOL_MAX.set(database.pool.max_size)


async def _keep_fresh(samplers: Sequence[Callable[[], None]], readiness: Readiness) -> None:
    """Every second: the sampled gauges, and the readiness check (so that `loyalty_gateway_ready` and the
    log's "not ready" warnings follow the database even when nothing probes; probes share the check)."""
    while True:
        for sample in samplers:
            sample()
        await readiness.check()
        await asyncio.sleep(SAMPLE_INTERVAL)


@asynccontextmanager
async def kept_ready(
    database_url: str,
    database: Database,
    settings: Settings,
    samplers: Sequence[Callable[[], None]] = (),
    *,
    replicas: ReplicaSet | None = None,
) -> AsyncIterator[Readiness]:
    """For the app's lifespan: migrate (now, or in the background until the database is there), and keep
    the sampled gauges (the pool's, and those of `samplers`) fresh for scrapes of other workers."""
    migrator = SchemaMigrator(
        database_url, database, connect_timeout=settings.acquire_timeout, warm_up=settings.pool_min_size
    )
    readiness = Readiness(database, migrator, replicas=replicas)
    tasks = []
    if not await migrator.attempt():
        tasks.append(asyncio.create_task(migrator.run()))
    tasks.append(asyncio.create_task(_keep_fresh([*samplers, lambda: sample_pool(database)], readiness)))
    try:
        yield readiness
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
        await readiness.close()


_NO_STORE = {"cache-control": "no-store"}


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json", headers=_NO_STORE)


async def readyz(request: Request) -> Response:
    readiness: Readiness = request.state.readiness
    reason = await readiness.check()
    replicas = readiness.replicas
    if reason is None and replicas is None:
        return Response(b'{"status":"ready"}', media_type="application/json", headers=_NO_STORE)
    answer: dict[str, object] = {"status": "ready"} if reason is None else {"status": "unavailable", "reason": reason}
    if replicas is not None:
        # Names and states only (never a URL): a probe may be public.
        primary = DatabaseReport("primary", "ready" if reason is None else "unavailable")
        answer["databases"] = [asdict(database) for database in (primary, *replicas.report())]
    status = 200 if reason is None else 503
    return Response(orjson.dumps(answer), status_code=status, media_type="application/json", headers=_NO_STORE)
