"""Per org: how long its requests waited for their turn, and how many were refused to keep things fair.

Counted only when a request waited or was shed, never on the uncontended path. The `org` label takes only
the ids of orgs that have had to wait, which a deployment bounds by the orgs it serves.
"""

from __future__ import annotations

from typing import Any

from gateway.observability import metrics
from gateway.observability.requests import note_request_wait

# (org, where) -> (wait seconds counter, waits counter) or shed counter, resolved once.
_waits: dict[tuple[int, str], tuple[Any, Any]] = {}
_sheds: dict[tuple[int, str], Any] = {}


def note_wait(org_id: int, where: str, seconds: float) -> None:
    """A request of this org waited `seconds` for its turn (`where`: fair_share, or pool for a connection)."""
    note_request_wait(seconds)
    children = _waits.get((org_id, where))
    if children is None:
        labels = {"org": str(org_id), "where": where}
        children = _waits[(org_id, where)] = (
            metrics.TENANT_WAIT_SECONDS.labels(**labels),
            metrics.TENANT_WAITS.labels(**labels),
        )
    children[0].inc(seconds)
    children[1].inc()


def note_shed(org_id: int, where: str) -> None:
    """A request of this org was refused (503) because its turn would have come too late."""
    child = _sheds.get((org_id, where))
    if child is None:
        child = _sheds[(org_id, where)] = metrics.SHED_REQUESTS.labels(org=str(org_id), where=where)
    child.inc()
