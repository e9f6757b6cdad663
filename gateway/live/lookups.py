"""Live subscriptions' lookups, batched: one statement at a time per org (and end user), for every lookup
asked meanwhile.

A subscription's first look and every refresh after a change are asked here. Those asked in the same turn of
the event loop share a statement (up to BATCH); while an org's statement runs, what is asked of it waits and
goes, all together, into its next one. Under a burst of changes the round trips stay one per org at a time
however many entities changed, and no lookup waits for a connection on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from gateway.db.balances import fetch_balances
from gateway.db.database import Database
from gateway.domain.lookup import Lookup, Matches

logger = logging.getLogger("gateway.live.lookups")

# Lookups in one statement, at most.
BATCH = 500

# Told the database's answer to one lookup, or why there is none.
Answer = Callable[[Matches | Exception], None]
# Whose lookups share statements: an org, and the customer an end-user token limits them to.
Scope = tuple[int, int | None]


class Lookups:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._waiting: dict[Scope, list[tuple[Lookup, Answer]]] = {}
        self._busy: set[Scope] = set()
        self._running: set[asyncio.Task[None]] = set()  # referenced until done, as asyncio requires
        self._flush_soon = False
        self._closed = False

    def ask(self, org_id: int, customer_id: int | None, lookup: Lookup, answer: Answer) -> None:
        """Look `lookup` up in the scope's next statement; `answer` is called with what it matched."""
        scope = (org_id, customer_id)
        self._waiting.setdefault(scope, []).append((lookup, answer))
        if scope not in self._busy and not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def matches(self, org_id: int, customer_id: int | None, lookup: Lookup) -> asyncio.Future[Matches]:
        """What `lookup` matches, as a future."""
        future: asyncio.Future[Matches] = asyncio.get_running_loop().create_future()

        def answer(result: Matches | Exception) -> None:
            if future.done():
                return
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

        self.ask(org_id, customer_id, lookup, answer)
        return future

    async def close(self) -> None:
        self._closed = True
        for task in tuple(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    def _flush(self) -> None:
        self._flush_soon = False
        for scope in tuple(self._waiting):
            if scope not in self._busy:
                self._start(scope)

    def _start(self, scope: Scope) -> None:
        waiting = self._waiting.pop(scope, None)
        if not waiting:
            return
        if len(waiting) > BATCH:
            self._waiting[scope] = waiting[BATCH:]
            waiting = waiting[:BATCH]
        self._busy.add(scope)
        task = asyncio.create_task(self._fetch(scope, waiting))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _fetch(self, scope: Scope, waiting: Sequence[tuple[Lookup, Answer]]) -> None:
        try:
            org_id, customer_id = scope
            try:
                found = await fetch_balances(
                    self._database, org_id, [lookup for lookup, _ in waiting], customer_id=customer_id
                )
            except Exception as error:
                for _, answer in waiting:
                    _tell(answer, error)
            else:
                for (_, answer), matches in zip(waiting, found, strict=True):
                    _tell(answer, matches)
        finally:
            self._busy.discard(scope)
            if scope in self._waiting and not self._closed:
                self._start(scope)


def _tell(answer: Answer, result: Matches | Exception) -> None:
    """One waiter's answer; a fault in one does not keep the others of its statement from theirs."""
    try:
        answer(result)
    except Exception:
        logger.exception("a live subscription could not take its lookup's answer")
