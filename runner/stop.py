"""When dispatching ends: a signal, a bad key, a cap, a full disk, or the deadline.

Set once, by whoever notices first. Every wait in a run (a backoff, a Retry-After, a pause of
the pacer, a poll) goes through `Stop.sleep`, so no wait outlives a stop or the deadline: a
SIGTERM or 06:30 ends a sleep at once, not when the server said it could end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from runner.errors import StopReason

# Reasons that end the run's waits of every kind, a paid image's fetch included: the user wants
# out, or the run dir cannot take more. A bad key or a cap only stops sending new requests.
_LEAVING = frozenset({StopReason.SIGNAL, StopReason.DEADLINE, StopReason.DISK, StopReason.WRITER, StopReason.ENDPOINT})


class Stop:
    def __init__(self, deadline: float | None = None, clock: Callable[[], float] = time.time) -> None:
        self.reason: StopReason | None = None
        self.message = ""
        self.deadline = deadline  # clock() time after which nothing new is dispatched
        self._clock = clock
        self._stopped = asyncio.Event()
        self._leaving = asyncio.Event()

    def request(self, reason: StopReason, message: str = "") -> bool:
        """Ask the run to stop dispatching; True if this was the first request."""
        if self.reason is not None:
            return False
        self.reason, self.message = reason, message
        self._stopped.set()
        if reason in _LEAVING:
            self._leaving.set()
        return True

    @property
    def requested(self) -> bool:
        """True once the run should send nothing new; reaching the deadline counts."""
        if self.reason is None and self.deadline is not None and self._clock() >= self.deadline:
            self.request(StopReason.DEADLINE, "the deadline has passed")
        return self.reason is not None

    @property
    def leaving(self) -> bool:
        """True once even a paid image's fetch should give up waiting (it is recorded with its
        aiRecord, for the next run): a signal, the deadline, a disk that refuses."""
        return self.requested and self.reason in _LEAVING

    async def sleep(self, seconds: float, any_stop: bool = True) -> None:
        """Wait `seconds`, or less: until the deadline comes or a stop is requested (with
        `any_stop` False, only a stop that means leaving)."""
        if self.deadline is not None:
            seconds = min(seconds, max(0.0, self.deadline - self._clock()))
        if seconds <= 0 or (self.leaving if not any_stop else self.requested):
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await (self._stopped if any_stop else self._leaving).wait()
