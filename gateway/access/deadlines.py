"""Per-request deadlines, enforced by one periodic sweep rather than a timer per request.

asyncio.timeout() arms and disarms a timer for every request (about 5 µs on
the hot path). Here a request costs a dict insert and delete; a sweep every
`tick` seconds, scheduled only while requests are in flight, cancels the
tasks past their deadline. A request is stopped between `seconds` and
`seconds + tick` after it began; cancelling its task cancels the database
statement it is waiting on (asyncpg asks the server to cancel it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.errors import GatewayError, RequestTimeout

logger = logging.getLogger("gateway.access.deadlines")
Answer = TypeVar("Answer")


class Deadlines:
    def __init__(self, seconds: float, *, tick: float = 0.1) -> None:
        self.seconds = seconds
        self._tick = min(tick, seconds)
        self._running: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def begin(self) -> asyncio.Task[object]:
        """Start the current task's clock; pair with end()."""
        loop = asyncio.get_running_loop()
        # Given the loop, current_task does not look it up again (in Python 3.11 each lookup calls getpid()).
        task: asyncio.Task[object] = asyncio.current_task(loop)  # type: ignore[assignment]
        self._running[task] = loop.time() + self.seconds
        if self._sweep_handle is None or self._loop is not loop:
            self._loop = loop
            self._sweep_handle = loop.call_later(self._tick, self._sweep)
        return task

    def end(self, task: asyncio.Task[object]) -> bool:
        """Stop the task's clock; True when its deadline passed and it was cancelled for it."""
        del self._running[task]
        if self._expired and task in self._expired:
            self._expired.discard(task)
            return True
        return False

    async def within(
        self,
        respond: Awaitable[Answer],
        refuse: Callable[[GatewayError], Answer],
        fault: Callable[[], Answer],
        *,
        request_id: str,
        gone: tuple[type[BaseException], ...] = (),
    ) -> Answer | None:
        """The answer of `respond` (a coroutine, awaited here) within the deadline: refuse(error) for a
        GatewayError it raises, and refuse(RequestTimeout) once the deadline passes (what it was doing is
        cancelled, database statements included); fault() for anything else, logged with the request id. None
        when it raised one of `gone`: the client left, nobody is there to answer."""
        task = self.begin()
        expired = False
        try:
            try:
                answer = await respond
            except gone:
                return None
            except GatewayError as error:
                answer = refuse(error)
            except Exception:
                logger.exception("unexpected error, request id %s", request_id)
                answer = fault()
            finally:
                expired = self.end(task)
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()
            return refuse(RequestTimeout(f"the request took longer than {self.seconds:g} s and was stopped"))
        if expired:
            await absorb_late_cancellation(task)
        return answer

    def _sweep(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        for task, deadline in self._running.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._sweep_handle = loop.call_later(self._tick, self._sweep) if self._running else None


async def absorb_late_cancellation(task: asyncio.Task[object]) -> None:
    """The deadline struck just as the answer was ready: take back the cancellation still pending."""
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        task.uncancel()
