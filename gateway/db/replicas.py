"""Read replicas: balance lookups spread over healthy streaming replicas; the primary for everything else.

Only balance lookups (gateway.db.balances.fetch_balances) are read here. API keys, token keys, persisted
documents, migrations, imports and the live subscriptions' notifications and reads stay on the primary: they
write, or must see the latest commit.

Each replica has a pool of its own and a state, refreshed by one background check per second (a probe
connection per replica and one to the primary), never by requests: a request only picks the next healthy
replica in turn, O(1). Lag is how long ago a replica last held everything the primary had flushed: each check
reads the primary's flushed WAL position, then the replica's replay position; when the replica has replayed up
to it, the replica held everything committed before the check began. An idle primary writes nothing, so its
position stays put and an up-to-date replica stays at lag 0 (a bare `now() - pg_last_xact_replay_timestamp()`
would grow). A replica never seen caught up yet is judged by PostgreSQL's replay timestamp; while the
primary cannot be asked, by its own view (all it received replayed: 0, else the replay timestamp's age).

A replica is taken out while its lag is above the limit, while it cannot be reached, once it is no longer in
recovery (promoted), or while its schema is behind this gateway's; it is back at the first check that finds
it well. A replica lost in the middle of a lookup is taken out at once and the lookup is tried once more on
the next healthy replica, or on the primary.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from enum import StrEnum

import asyncpg

from gateway.config import Settings
from gateway.db.database import Database
from gateway.db.pool import CONNECTION_ERRORS, SERVER_SETTINGS, create_pool
from gateway.db.schema import required_version
from gateway.db.sql import PRIMARY_WAL_POSITION, REPLICA_STATE
from gateway.errors import ServiceUnavailable

logger = logging.getLogger("gateway.db.replicas")

# Seconds between two checks of every replica, and how long one check may take.
CHECK_INTERVAL = 1.0
CHECK_TIMEOUT = 1.0


class ReplicaState(StrEnum):
    STARTING = "starting"  # not checked yet
    HEALTHY = "healthy"
    LAGGING = "lagging"
    UNREACHABLE = "unreachable"
    PROMOTED = "promoted"  # no longer in recovery: not a replica of the primary any more
    SCHEMA_BEHIND = "schema_behind"


@dataclass(slots=True, eq=False)
class Replica:
    """One replica: its pool, and what the last check found. `name` (replica-1, …, in the order configured)
    is what logs and /readyz show: never the URL, which may hold a password."""

    name: str
    url: str = field(repr=False)
    database: Database = field(repr=False)
    state: ReplicaState = ReplicaState.STARTING
    # Seconds behind the primary at the last check; None when it could not be measured.
    lag: float | None = None
    # time.monotonic() at the start of the last check that found it holding all the primary had flushed.
    caught_up_at: float | None = None
    probe: asyncpg.Connection | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class DatabaseReport:
    """One database as /readyz shows it."""

    name: str
    state: str
    lag_seconds: float | None = None


class ReplicaSet:
    """Where balance lookups are read (Database.reads): the healthy replicas in turn, else the primary."""

    def __init__(
        self,
        primary: Database,
        primary_url: str,
        replicas: Sequence[Replica],
        *,
        max_lag: float,
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        self.primary = primary
        self.replicas = list(replicas)
        self.max_lag = max_lag
        self._primary_url = primary_url
        self._interval = check_interval
        self._required = required_version()
        self._healthy: list[Replica] = []
        self._turn = 0
        self._primary_probe: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    async def fetch(
        self, statement: str, arguments: Sequence[object], *, tenant: int, cost: int
    ) -> list[asyncpg.Record]:
        """The statement's rows from the next healthy replica; retried once elsewhere if that replica is lost."""
        replica = self._next()
        if replica is not None:
            try:
                return await _fetch(replica.database, statement, arguments, tenant, cost)
            except ServiceUnavailable as error:
                if not _lost(error.__cause__):
                    raise
                self._take_out(replica, ReplicaState.UNREACHABLE, f"lost ({type(error.__cause__).__name__})")
            except asyncpg.SerializationError:
                pass  # cancelled by a conflict with recovery: the replica stays, the lookup goes elsewhere
            replica = self._next()  # once more: another healthy replica, or the primary
        database = self.primary if replica is None else replica.database
        return await _fetch(database, statement, arguments, tenant, cost)

    def _next(self) -> Replica | None:
        """The healthy replicas in turn; None when there is none."""
        healthy = self._healthy
        if not healthy:
            return None
        self._turn += 1
        return healthy[self._turn % len(healthy)]

    def report(self) -> list[DatabaseReport]:
        """Each replica's state and lag, as the last check found them (no database is asked)."""
        return [
            DatabaseReport(replica.name, replica.state.value, None if replica.lag is None else round(replica.lag, 3))
            for replica in self.replicas
        ]

    def start(self) -> None:
        """Check every replica now and then every interval, in the background."""
        self._task = asyncio.get_running_loop().create_task(self._keep_checking())

    async def close(self, grace: float) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        probes = [replica.probe for replica in self.replicas] + [self._primary_probe]
        for probe in probes:
            if probe is not None:
                probe.terminate()
        await asyncio.gather(*(replica.database.close(grace) for replica in self.replicas))

    async def _keep_checking(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # a check must never stop the checks that follow
                logger.exception("checking the read replicas failed")
            await asyncio.sleep(self._interval)

    async def check(self) -> None:
        """One check of every replica (concurrently), then the healthy list rebuilt."""
        started = time.monotonic()
        position = await self._primary_position()
        await asyncio.gather(*(self._check(replica, position, started) for replica in self.replicas))
        self._healthy = [replica for replica in self.replicas if replica.state is ReplicaState.HEALTHY]

    async def _primary_position(self) -> str | None:
        try:
            if self._primary_probe is None or self._primary_probe.is_closed():
                self._primary_probe = await _connect(self._primary_url)
            position: str = await self._primary_probe.fetchval(PRIMARY_WAL_POSITION, timeout=CHECK_TIMEOUT)
            return position
        except (*CONNECTION_ERRORS, asyncpg.PostgresError):
            if self._primary_probe is not None:
                self._primary_probe.terminate()
                self._primary_probe = None
            return None

    async def _check(self, replica: Replica, position: str | None, started: float) -> None:
        try:
            if replica.probe is None or replica.probe.is_closed():
                replica.probe = await _connect(replica.url)
            row = await replica.probe.fetchrow(REPLICA_STATE, position, timeout=CHECK_TIMEOUT)
        except (*CONNECTION_ERRORS, asyncpg.PostgresError) as error:
            if replica.probe is not None:
                replica.probe.terminate()
                replica.probe = None
            replica.lag = None
            self._set(replica, ReplicaState.UNREACHABLE, type(error).__name__)
            return
        assert row is not None
        if not row["in_recovery"]:
            replica.lag = None
            self._set(replica, ReplicaState.PROMOTED, "no longer in recovery")
            return
        replica.lag = lag = self._lag(replica, row, position, started)
        if row["schema_version"] < self._required:
            self._set(replica, ReplicaState.SCHEMA_BEHIND, f"schema version {row['schema_version']}")
        elif lag > self.max_lag:
            self._set(replica, ReplicaState.LAGGING, f"{lag:.1f} s behind")
        else:
            self._set(replica, ReplicaState.HEALTHY, f"{lag:.1f} s behind")

    @staticmethod
    def _lag(replica: Replica, row: asyncpg.Record, position: str | None, started: float) -> float:
        age: float | None = row["replay_age"]
        if position is None:  # the primary could not be asked: the replica's own view
            return 0.0 if row["replayed_all_received"] else (age if age is not None else math.inf)
        if row["caught_up"]:
            replica.caught_up_at = started
            return 0.0
        if replica.caught_up_at is not None:
            return time.monotonic() - replica.caught_up_at
        return age if age is not None else math.inf

    def _take_out(self, replica: Replica, state: ReplicaState, why: str) -> None:
        self._set(replica, state, why)
        self._healthy = [other for other in self._healthy if other is not replica]

    def _set(self, replica: Replica, state: ReplicaState, why: str) -> None:
        if state is not replica.state:
            log = logger.info if state is ReplicaState.HEALTHY else logger.warning
            log("read replica %s is %s (%s)", replica.name, state.value, why)
        replica.state = state


async def _fetch(
    database: Database, statement: str, arguments: Sequence[object], tenant: int, cost: int
) -> list[asyncpg.Record]:
    async with database.connection(tenant=tenant, cost=cost) as connection:
        rows: list[asyncpg.Record] = await connection.fetch(statement, *arguments)
    return rows


def _lost(cause: BaseException | None) -> bool:
    """Whether a lookup failed because its database went away (worth one more try elsewhere), rather than
    because time ran out (a timeout: trying again would only wait longer)."""
    return isinstance(cause, CONNECTION_ERRORS) and not isinstance(cause, TimeoutError)


async def _connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        url, server_settings=SERVER_SETTINGS, timeout=CHECK_TIMEOUT, command_timeout=CHECK_TIMEOUT
    )


async def open_replicas(primary: Database, primary_url: str, settings: Settings) -> ReplicaSet | None:
    """The replicas of settings.replica_urls, each with a pool like the primary's (opened on demand), and
    their checks started; None when there are none."""
    if not settings.replica_urls:
        return None
    replicas = []
    for number, url in enumerate(settings.replica_urls, start=1):
        pool = await create_pool(url, settings)
        database = Database(pool, settings.acquire_timeout, on_query=primary.on_query)
        replicas.append(Replica(f"replica-{number}", url, database))
    reads = ReplicaSet(primary, primary_url, replicas, max_lag=settings.max_replica_lag)
    reads.start()
    return reads
