"""Per org: how long its requests waited for their turn, and how many were refused to keep things fair.

Counted only when a request waited or was shed, never on the uncontended path; waits are summed per worker
and published when sampled (every second and at each scrape), so that waiting takes no metric lock. The
`org` label takes only the ids of orgs that have had to wait, which a deployment bounds by the orgs it
serves.
"""

from __future__ import annotations

from typing import Any

from gateway.observability import metrics
from gateway.observability.requests import note_request_wait

# (org, where) -> [seconds waited, waits] since the last publish.
_pending: dict[tuple[int | None, str], list[float]] = {}
# org -> [seconds waited, waits] for a pool connection since the last publish.
_pool_pending: dict[int | None, list[float]] = {}
_sheds: dict[tuple[int | None, str], Any] = {}


def note_wait(org_id: int | None, where: str, seconds: float) -> None:
    """A request of this org waited `seconds` for its turn (`where`: fair_share, or pool for a connection)."""
    note_request_wait(seconds, where)
    pending = _pending.get((org_id, where))
    if pending is None:
        _pending[(org_id, where)] = [seconds, 1]
    else:
        pending[0] += seconds
        pending[1] += 1


def note_pool_wait(org_id: int | None, seconds: float) -> None:
    """note_wait(org_id, "pool", seconds) for the database layer, which waits on nearly every request under
    load: noted by org alone, no key tuple built and hashed."""
    note_request_wait(seconds, "pool")
    pending = _pool_pending.get(org_id)
    if pending is None:
        _pool_pending[org_id] = [seconds, 1]
    else:
        pending[0] += seconds
        pending[1] += 1


def publish_waits() -> None:
    """Add the waits noted since the last call to their counters."""
    global _pending, _pool_pending
    noted, _pending = _pending, {}
    pool, _pool_pending = _pool_pending, {}
    for (org_id, where), (seconds, count) in noted.items():
        _publish(org_id, where, seconds, count)
    for org_id, (seconds, count) in pool.items():
        _publish(org_id, "pool", seconds, count)


def _publish(org_id: int | None, where: str, seconds: float, count: float) -> None:
    labels = {"org": str(org_id) if org_id is not None else "none", "where": where}
    metrics.TENANT_WAIT_SECONDS.labels(**labels).inc(seconds)
    metrics.TENANT_WAITS.labels(**labels).inc(count)


def note_shed(org_id: int | None, where: str) -> None:
    """A request of this org was refused (503) because its turn would have come too late."""
    child = _sheds.get((org_id, where))
    if child is None:
        org = str(org_id) if org_id is not None else "none"
        child = _sheds[(org_id, where)] = metrics.SHED_REQUESTS.labels(org=org, where=where)
    child.inc()
