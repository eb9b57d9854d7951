"""Retry delays and pool pacing, with a fake clock: nothing here waits for real."""

from __future__ import annotations

import asyncio
import heapq
import math
import random
from typing import Any

import pytest

from runner.errors import ApiError
from runner.pace import Pace, parse_policy
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


async def test_the_first_429_pauses_everyone_and_halves_the_limit_then_the_pace_takes_over() -> None:
    fake = FakeTime()
    pacer = Pacer(concurrency=8, clock=fake.clock, sleep=fake.sleep)
    async with pacer.slot():
        fake.now = 0.5
    with pytest.raises(ApiError):
        async with pacer.slot():
            raise ApiError("http", "rate limited", status=429, retryable=True, retry_after=5)
    assert pacer.limit == 4 and pacer.pace.rate is not None
    async with pacer.slot():
        assert fake.now == pytest.approx(5.5)  # the pause held this request back
    assert pacer.pace.changes[0].why == "answered 429 (too many requests)"
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


def simulate(
    pace: Pace,
    per_minute: float,
    seconds: float,
    burst: int = 10,
    concurrency: int = 16,
    generation: float = 0.1,
    refusal: float = 0.001,
    window: bool = False,
) -> tuple[float, float]:
    """A server that allows `per_minute` requests, driven in virtual time: a token bucket with
    a `burst` (Retry-After 1 s), or with `window` a fixed window of a minute (Retry-After: the
    seconds to its end). It refuses in `refusal` seconds and generates in `generation`.
    (Share of the allowed requests through, share of the requests answered 429.)"""
    now, tokens, refilled, paused_until = 0.0, float(burst), 0.0, 0.0
    answers: list[tuple[float, float, bool]] = []  # (answered at, sent at, throttled)
    sent = through = 0
    rate = per_minute / 60
    minute, in_minute = 0, 0
    while now < seconds:
        while answers and answers[0][0] <= now:
            at, sent_at, throttled = heapq.heappop(answers)
            retry_after = math.ceil(60 - at % 60) if window else 1.0
            paused_until = max(paused_until, at + pace.answered(sent_at, at, throttled, retry_after))
        next_answer = answers[0][0] if answers else math.inf
        if len(answers) >= concurrency or now < paused_until:
            now = min(next_answer, paused_until) if now < paused_until else next_answer
            continue
        wait = pace.wait(now)
        if wait > 0:
            now = min(now + wait, next_answer)
            continue
        sent += 1
        if window:
            if int(now // 60) != minute:
                minute, in_minute = int(now // 60), 0
            allowed = in_minute < per_minute
            in_minute += allowed
        else:
            tokens, refilled = min(burst, tokens + (now - refilled) * rate), now
            allowed = tokens >= 1
            tokens -= allowed
        through += allowed
        heapq.heappush(answers, (now + (generation if allowed else refusal), now, not allowed))
        now += 0.0005  # what sending one takes
    return through / (rate * seconds), (sent - through) / sent


@pytest.mark.parametrize("per_minute", [60, 600, 3000])
def test_told_the_limit_the_pool_spends_it_without_a_429(per_minute: int) -> None:
    through, throttled = simulate(Pace(told=per_minute / 60), per_minute, seconds=600)
    assert throttled == 0 and through >= 0.97


@pytest.mark.parametrize("per_minute", [60, 600, 3000])
def test_told_nothing_the_pool_learns_the_limit_from_its_429s(per_minute: int) -> None:
    pace = Pace()
    through, throttled = simulate(pace, per_minute, seconds=1200)
    assert through >= 0.93 and throttled <= 0.03
    assert pace.rate is not None and 0.85 <= pace.rate * 60 / per_minute <= 1.25  # under it, or probing just over


@pytest.mark.parametrize(
    ("per_minute", "seconds", "server"),
    [
        (60, 600, {"refusal": 0.01}),  # all 16 sent before the first 429 is back: six of them 429
        (60, 600, {"burst": 1}),  # no burst at all: any time under the limit is lost to the measure
        (60, 600, {"burst": 60}),  # a minute's burst lets a probe run far past the limit
        (600, 300, {"burst": 100}),
        (60, 1800, {"generation": 8.0, "refusal": 0.2}),  # as the API: seconds to generate, a 429 at once
        (600, 600, {"generation": 3.0, "refusal": 0.1, "concurrency": 64}),
        (60, 1800, {"window": True}),  # a fixed window of a minute, and a Retry-After to its end
        (600, 600, {"window": True}),
    ],
)
def test_the_limit_is_learned_from_other_servers_too(per_minute: int, seconds: int, server: dict[str, Any]) -> None:
    through, throttled = simulate(Pace(), per_minute, seconds, **server)
    assert through >= 0.93 and throttled <= 0.03


def test_what_the_next_run_starts_at_is_a_measured_pace_not_a_probe() -> None:
    pace = Pace()
    simulate(pace, 60, 900)
    assert pace.learned_per_minute is not None and 0.9 * 60 <= pace.learned_per_minute <= 60


def test_a_learned_pace_is_raised_when_the_limit_was_raised() -> None:
    pace = Pace(learned=1.0)  # an earlier run learned 60 a minute; the account now has 600
    through, throttled = simulate(pace, 600, seconds=300)
    assert pace.rate is not None and pace.rate * 60 >= 500 and throttled <= 0.03


def test_a_told_pace_is_never_exceeded_even_by_a_server_that_allows_more() -> None:
    pace = Pace(told=2.0)
    through, throttled = simulate(pace, 6000, seconds=120)
    assert pace.rate == 2.0 and through == pytest.approx(2 / 100, abs=0.001)


@pytest.mark.parametrize(
    ("header", "stated"),
    [
        ("600;w=60", (600, 60)),
        ('"default";q=100;w=10', (100, 10)),
        ('"burst";q=10;w=1, "daily";q=10000;w=86400', (10, 1)),
        ("600", None),  # no window: not a rate
        ("q=600;w=60", None),
        ("-5;w=60", None),
        ("1e400;w=60", None),
        ("9" * 600, None),
        (None, None),
    ],
)
def test_rate_limit_policy_headers_are_read_in_both_drafts_forms(header: str | None, stated: tuple[float, float] | None) -> None:
    assert parse_policy(header) == stated


def test_a_stated_limit_sets_the_pace_unless_the_user_asked_for_less() -> None:
    pace = Pace()
    pace.advised(0.0, 600, 60)
    assert pace.rate == 10.0 and "600 per 60 s" in pace.changes[-1].why
    careful = Pace(told=5.0)
    careful.advised(0.0, 600, 60)
    assert careful.rate == 5.0 and not careful.changes
