"""When to try again, and how fast the whole pool may go.

`RetryPolicy` decides the wait before another attempt: exponential backoff with full jitter,
never shorter than the server's Retry-After, and never longer than `max_delay`, whatever a
server asks (a Retry-After of a year is a server to try again later, not a run to freeze).
`Pacer` is shared by every worker: it holds the
concurrency limit and keeps the pool to a `Pace` (told, stated by the server, or learned from
its 429s). The first 429 also pauses everyone for the Retry-After and halves the in-flight
limit, which grows back one place per limit's worth of successes, as TCP's congestion
control does.
Clock, sleep and randomness are injectable so tests never wait.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from runner.errors import ApiError
from runner.pace import Change, Pace, parse_policy

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
        learned_per_minute: float | None = None,
        on_change: Callable[[Change], None] = lambda change: None,
    ) -> None:
        self.concurrency = concurrency
        self.limit = float(concurrency)  # adaptive in-flight limit, 1 <= limit <= concurrency
        self.in_flight = 0
        self.pace = Pace(
            requests_per_minute / 60 if requests_per_minute else None,
            learned_per_minute / 60 if learned_per_minute else None,
            on_change,
        )
        self._paused_until = 0.0
        self._clock = clock
        self._sleep = sleep
        self._stopped = stopped  # once True, places are granted at once: their holders send nothing
        self._max_pause = max_pause
        # Workers waiting for a place: the highest priority first, and in turn within one, so
        # the manifests of a night share the pool by their number of workers, which is equal.
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._turn = asyncio.Lock()  # one worker at a time waits for the pace; the rest queue
        self._policy_seen: str | None = None

    def slot(self, priority: int = 0) -> _Slot:
        """Hold one of the pool's in-flight places for one request: `async with pacer.slot():`."""
        return _Slot(self, priority)

    async def acquire(self, priority: int = 0) -> None:
        while not self._stopped():
            if self.in_flight < int(self.limit) and not self._someone_waits():
                break
            await self._wait_for_a_place(priority)
            if self.in_flight < int(self.limit):
                break
        self.in_flight += 1  # a stopped run sends nothing new: whoever asked only looks and leaves
        if self._stopped():
            return
        now = self._clock()
        if self.pace.rate is None and self._paused_until <= now:
            self.pace.wait(now)  # no pace and no pause: the hot path, counted and gone
            return
        try:
            async with self._turn:
                while not self._stopped():
                    now = self._clock()
                    wait = self._paused_until - now
                    if wait <= 0:
                        wait = self.pace.wait(now)
                        if wait <= 0:
                            return
                    await self._sleep(wait)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake_one()

    async def _wait_for_a_place(self, priority: int) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-priority, next(self._arrivals), waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake_one()  # woken, then cancelled: the place goes to the next in line
            raise

    def _someone_waits(self) -> bool:
        while self._waiters and self._waiters[0][2].done():
            heapq.heappop(self._waiters)  # cancelled while waiting: nobody
        return bool(self._waiters)

    def _wake_one(self) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)
                return

    def answered(self, sent_at: float, error: BaseException | None) -> None:
        """A request that held a place has its answer (`error`, if it raised one). On a 429
        the pace slows; the first 429 of a run that knows no limit also pauses everyone for the
        Retry-After and halves the in-flight limit, which grows back as requests succeed."""
        throttled = isinstance(error, ApiError) and error.status == 429
        first = throttled and self.pace.rate is None
        retry_after = error.retry_after if isinstance(error, ApiError) else None
        if retry_after is not None and math.isnan(retry_after):
            retry_after = None
        now = self._clock()
        pause = min(self._max_pause, self.pace.answered(sent_at, now, throttled, retry_after))
        if first:
            self.limit = max(1.0, self.limit / 2)
        if pause > 0:
            self._paused_until = max(self._paused_until, now + pause)

    def advised(self, policy: str) -> None:
        """A RateLimit-Policy header from the API."""
        if policy == self._policy_seen:
            return
        self._policy_seen = policy
        stated = parse_policy(policy)
        if stated is not None:
            self.pace.advised(self._clock(), *stated)

    def succeeded(self) -> None:
        if self.limit < self.concurrency:
            before = int(self.limit)
            self.limit = min(float(self.concurrency), self.limit + 1 / self.limit)
            if int(self.limit) > before:
                self._wake_one()  # one more place: a worker the old limit held back may go


class _Slot:
    """`async with pacer.slot():` one request: its place, and its answer told to the pace."""

    __slots__ = ("_pacer", "_priority", "_sent_at")

    def __init__(self, pacer: Pacer, priority: int) -> None:
        self._pacer = pacer
        self._priority = priority
        self._sent_at = 0.0

    async def __aenter__(self) -> None:
        await self._pacer.acquire(self._priority)
        self._sent_at = self._pacer._clock()

    async def __aexit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        self._pacer.release()
        if error is not None and not isinstance(error, asyncio.CancelledError):
            self._pacer.answered(self._sent_at, error)  # an answer that is not an error tells the pace nothing
