"""When to try again, and how fast the whole pool may go.

`RetryPolicy` decides the wait before another attempt: exponential backoff with full jitter,
never shorter than the server's Retry-After, and never longer than `max_delay`, whatever a
server asks (a Retry-After of a year is a server to try again later, not a run to freeze).
`Pacer` is shared by every worker: it holds the
concurrency limit, spends a token bucket of `requests_per_minute`, and on a 429 slows the pool
as a whole (halving the in-flight limit and pausing everyone for the Retry-After) before
growing back one slot per limit's worth of successes, as TCP's congestion control does.
Clock, sleep and randomness are injectable so tests never wait.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 2.0
    max_delay: float = 120.0  # the longest wait, Retry-After included
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError(f"invalid retry policy: {self}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(attempt - 1, 64))
        return min(self.max_delay, max(self.rng.uniform(0, ceiling), retry_after or 0.0))

    def over_cap(self, retry_after: float | None) -> bool:
        """Did the server ask for a longer wait than this policy allows?"""
        return retry_after is not None and not retry_after <= self.max_delay


class Pacer:
    def __init__(
        self,
        concurrency: int,
        requests_per_minute: float | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        stopped: Callable[[], bool] = lambda: False,
        max_pause: float = 120.0,
    ) -> None:
        self.concurrency = concurrency
        self.limit = float(concurrency)  # adaptive in-flight limit, 1 <= limit <= concurrency
        self.in_flight = 0
        self._rate = requests_per_minute / 60 if requests_per_minute else None  # tokens a second
        self._tokens = 1.0
        self._refilled = clock()
        self._paused_until = 0.0
        self._clock = clock
        self._sleep = sleep
        self._stopped = stopped  # once True, places are granted at once: their holders send nothing
        self._max_pause = max_pause
        self._waiters: deque[asyncio.Future[None]] = deque()  # workers waiting for a place
        self._slot = _Slot(self)

    def slot(self) -> _Slot:
        """Hold one of the pool's in-flight places for one request: `async with pacer.slot():`."""
        return self._slot

    async def acquire(self) -> None:
        while True:
            if self._stopped():
                # A stopped run sends nothing new: whoever asked only looks at the stop and leaves.
                self.in_flight += 1
                return
            wait = self._paused_until - self._clock()
            if wait > 0:
                await self._sleep(wait)
                continue
            if self.in_flight >= int(self.limit):
                await self._wait_for_a_place()
                continue
            wait = self._take_token()
            if wait > 0:
                await self._sleep(wait)
                continue
            self.in_flight += 1
            return

    def release(self) -> None:
        self.in_flight -= 1
        self._wake_one()

    async def _wait_for_a_place(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake_one()  # woken, then cancelled: the place goes to the next in line
            raise

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _take_token(self) -> float:
        """0 if a token was taken, else the seconds until one will be there."""
        if self._rate is None:
            return 0.0
        now = self._clock()
        self._tokens = min(1.0, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate

    def throttled(self, retry_after: float | None) -> None:
        """The API said 429: everyone waits, and fewer go at once for a while."""
        self.limit = max(1.0, self.limit / 2)
        pause = min(self._max_pause, retry_after if retry_after is not None and not math.isnan(retry_after) else 1.0)
        self._paused_until = max(self._paused_until, self._clock() + pause)

    def succeeded(self) -> None:
        if self.limit < self.concurrency:
            before = int(self.limit)
            self.limit = min(float(self.concurrency), self.limit + 1 / self.limit)
            if int(self.limit) > before:
                self._wake_one()  # one more place: a worker the old limit held back may go


class _Slot:
    """`async with pacer.slot():` without a generator per request: the pool's hottest path."""

    __slots__ = ("_pacer",)

    def __init__(self, pacer: Pacer) -> None:
        self._pacer = pacer

    async def __aenter__(self) -> None:
        await self._pacer.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._pacer.release()
