"""Trying again: one loop for every request a run makes (a generation, an upload, a download, a
poll), so they cannot drift apart.

    result = await retrying(lambda attempt: client.download(url), "download", deep=True)

An ApiError that is retryable is tried again up to the policy's max_attempts, after the
policy's backoff (never sooner than the server's Retry-After, never later than its cap). A 429
slows the whole pool too: the pacer's slot the request held tells the pace. Every try again
is counted by what it was, and reported as an Event. `deep` is for a paid image's fetch or
poll: only a signal, the deadline or a disk that refuses cuts its waits short, where a bad
key or a cap ends only the sending of new requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from runner.errors import ApiError
from runner.events import Event, Outcome
from runner.pacing import RetryPolicy
from runner.plan import Job
from runner.stop import Stop

T = TypeVar("T")


class Retrying:
    def __init__(self, policy: RetryPolicy, stop: Stop, outcome: Outcome, on_event: Callable[[Event], None]) -> None:
        self.policy = policy
        self._stop = stop
        self._outcome = outcome
        self._on_event = on_event

    async def __call__(
        self,
        attempt: Callable[[int], Awaitable[T]],
        what: str,
        *,
        job: Job | None = None,
        deep: bool = False,
        label: str = "",
        gives_up: Callable[[ApiError], bool] = lambda error: False,
    ) -> T:
        """`attempt(n)` for n = 1, 2, ... until it returns, or raises what is not worth another try."""
        tries = 0
        while True:
            tries += 1
            try:
                return await attempt(tries)
            except ApiError as error:
                stopped = self._stop.leaving if deep else self._stop.requested
                if error.stops_run or not error.retryable or gives_up(error) or tries >= self.policy.max_attempts or stopped:
                    raise
                self._outcome.retries[what] += 1
                await self.wait(error, tries, job, label or what, deep)

    async def wait(self, error: ApiError, attempt: int, job: Job | None, label: str, deep: bool = False) -> None:
        """Wait before another try, and say so (and when the server asked for more than the cap)."""
        delay = self.policy.delay(attempt, error.retry_after)
        note = ""
        if self.policy.over_cap(error.retry_after):
            note = f": the server asked to wait {error.retry_after:g} s; waiting the cap of {self.policy.max_delay:g} s"
        self._on_event(Event("retry", job=job, error=error, attempt=attempt, message=label + note, wait=delay))
        await self._stop.sleep(delay, any_stop=not deep)
