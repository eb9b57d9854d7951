"""Retry delays and pool pacing, with a fake clock: nothing here waits for real."""

from __future__ import annotations

import asyncio
import random

import pytest

from runner.pacing import Pacer, RetryPolicy


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(max_attempts=6, base_delay=1, max_delay=10, rng=random.Random(3))
    for attempt, cap in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > 0.8 * cap and min(delays) < 0.2 * cap  # spread over the whole range


def test_retry_after_is_a_floor_under_the_cap() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=60, rng=random.Random(1))
    assert all(policy.delay(1, retry_after=30) == 30 for _ in range(20))
    assert not policy.over_cap(30)


@pytest.mark.parametrize("asked", [61, 999999, float("inf")])
def test_no_server_makes_a_wait_longer_than_the_cap(asked: float) -> None:
    policy = RetryPolicy(base_delay=1, max_delay=60, rng=random.Random(1))
    assert policy.delay(3, retry_after=asked) == 60
    assert policy.over_cap(asked)


def test_an_impossible_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


async def test_requests_per_minute_is_a_shared_token_bucket() -> None:
    fake = FakeTime()
    pacer = Pacer(concurrency=10, requests_per_minute=120, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for _ in range(5):
        async with pacer.slot():
            starts.append(fake.now)
    assert starts == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])


async def test_a_429_pauses_everyone_and_halves_the_limit_then_recovers() -> None:
    fake = FakeTime()
    pacer = Pacer(concurrency=8, clock=fake.clock, sleep=fake.sleep)
    pacer.throttled(retry_after=5)
    assert pacer.limit == 4
    async with pacer.slot():
        assert fake.now == 5  # the pause held this request back
    pacer.throttled(None)
    pacer.throttled(None)
    assert pacer.limit == 1
    for _ in range(40):
        pacer.succeeded()
    assert pacer.limit == 8  # grown back, one place per limit's worth of successes


async def test_the_limit_caps_requests_in_flight() -> None:
    pacer = Pacer(concurrency=3)
    peak = 0

    async def request() -> None:
        nonlocal peak
        async with pacer.slot():
            peak = max(peak, pacer.in_flight)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(request() for _ in range(12)))
    assert peak == 3 and pacer.in_flight == 0


async def test_a_worker_cancelled_just_after_being_woken_passes_its_place_on() -> None:
    pacer = Pacer(concurrency=1)
    await pacer.acquire()
    first = asyncio.create_task(pacer.acquire())
    second = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0)  # both are waiting for the one place
    pacer.release()  # wakes the first...
    first.cancel()  # ...which is cancelled before it runs
    await asyncio.wait_for(second, 1)
    assert first.cancelled() and pacer.in_flight == 1
