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

# where -> org -> [seconds waited, waits] since the last publish (by where first: no key tuple built and hashed
# per wait, which the pool's comes on nearly every request under load).
_pending: dict[str, dict[int | None, list[float]]] = {}
_sheds: dict[tuple[int | None, str], Any] = {}


def note_wait(org_id: int | None, where: str, seconds: float) -> None:
    """A request of this org waited `seconds` for its turn (`where`: fair_share, or pool for a connection)."""
    note_request_wait(seconds, where)
    by_org = _pending.get(where)
    if by_org is None:
        by_org = _pending[where] = {}
    pending = by_org.get(org_id)
    if pending is None:
        by_org[org_id] = [seconds, 1]
    else:
        pending[0] += seconds
        pending[1] += 1


def publish_waits() -> None:
    """Add the waits noted since the last call to their counters."""
    global _pending
    noted, _pending = _pending, {}
    for where, by_org in noted.items():
        for org_id, (seconds, count) in by_org.items():
            labels = {"org": str(org_id) if org_id is not None else "none", "where": where}
            metrics.TENANT_WAIT_SECONDS.labels(**labels).inc(seconds)
            metrics.TENANT_WAITS.labels(**labels).inc(count)


def note_shed(org_id: int | None, where: str, requests: int = 1) -> None:
    """Requests of this org were refused (503) because their turn would have come too late."""
    child = _sheds.get((org_id, where))
    if child is None:
        org = str(org_id) if org_id is not None else "none"
        child = _sheds[(org_id, where)] = metrics.SHED_REQUESTS.labels(org=org, where=where)
    child.inc(requests)
