"""The worker pool (runner/pool.py) against the emulator: concurrency, faults, refusals, stops,
asynchronous generations, caps and deadlines."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from runner import schemas
from runner.emulator import pictures
from runner.events import Event
from runner.pacing import RetryPolicy
from tests.conftest import (
    FAST,
    Api,
    eventually,
    manifest_text,
    records,
    run_text,
)

HOSTILE = FAST.with_(
    server_error=0.15,
    drop=0.05,
    non_json=0.05,
    cloudflare=0.05,
    busy=0.05,
    requests_per_minute=6000,  # 20 in any 0.2 s; bursts above get 429 with Retry-After
    rate_window=0.2,
    fail_first=1,  # the first attempt of every job fails
    seed=7,
)


async def test_a_hostile_api_still_gets_every_job_done_exactly_once(api: Api, tmp_path: Path) -> None:
    server, url = await api(HOSTILE)
    patient = RetryPolicy(max_attempts=15, base_delay=0.01, max_delay=0.05)
    summary, stop = await run_text(manifest_text(200), tmp_path / "run", url, policy=patient, concurrency=16)
    stats = server.stats.as_dict()
    assert not stop.requested
    assert summary["jobs"]["succeeded"] == 200 and summary["jobs"]["failed"] == 0
    assert stats["generations"] == 200
    assert stats["generated_twice"] == []
    statuses = server.stats.statuses
    assert statuses[500] > 0 and statuses[429] > 0 and statuses[400] > 0
    assert sum(statuses[code] for code in (502, 503, 522, 524)) > 0
    assert summary["retries"] >= 200
    lines = records(tmp_path / "run")
    assert Counter(line["job_id"] for line in lines).most_common(1)[0][1] == 1
    assert all(line["status"] == "success" and line["attempts"] >= 2 for line in lines)


async def test_a_provider_refusal_fails_at_once_with_the_real_cause(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(refuse=1.0))
    summary, _ = await run_text(manifest_text(3), tmp_path / "run", url)
    assert summary["jobs"]["failed"] == 3 and summary["retries"] == 0
    for line in records(tmp_path / "run"):
        error = line["error"]
        assert line["attempts"] == 1
        assert error["kind"] == "validation" and error["status"] == 400 and error["retryable"] is False
        assert error["message"].startswith("the provider refused the request (422): NSFW content detected")
        assert "busy" not in error["message"]
        assert "provider.internal" not in error["message"] and "request <id>" in error["message"]
    assert server.stats.as_dict()["generations"] == 0


async def test_a_bad_key_stops_at_once_and_records_nothing_as_failed(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(keys=frozenset({"right"})))
    summary, stop = await run_text(manifest_text(50), tmp_path / "run", url, key="wrong", concurrency=4)
    assert stop.reason == "auth"
    assert "refused" in stop.message and "401" in stop.message
    assert records(tmp_path / "run") == []
    assert summary["jobs"]["failed"] == 0
    assert server.stats.statuses[401] <= 8  # the requests already in flight, no more


@pytest.mark.parametrize("answer", ["200", "402"])
async def test_credits_running_out_stop_the_run_and_a_topped_up_rerun_finishes(api: Api, tmp_path: Path, answer: str) -> None:
    server, url = await api(FAST.with_(credits=7, credits_answer=answer))
    summary, stop = await run_text(manifest_text(20), tmp_path / "run", url, concurrency=3)
    assert stop.reason == "credits"
    lines = records(tmp_path / "run")
    assert len(lines) == 7 and all(line["status"] == "success" for line in lines)
    assert summary["jobs"]["pending"] == 13
    server.knobs = server.knobs.with_(credits=None)
    summary, stop = await run_text(manifest_text(20), tmp_path / "run", url, concurrency=3)
    assert not stop.requested
    assert summary["jobs"]["done"] == 20 and summary["jobs"]["submitted"] == 13
    assert server.stats.as_dict()["generated_twice"] == []


async def test_timed_out_synchronous_requests_are_paid_for_but_async_mode_never_pays_twice(api: Api, tmp_path: Path) -> None:
    slow = FAST.with_(latency=(0.4, 0.5))
    server, url = await api(slow)
    summary, _ = await run_text(manifest_text(3), tmp_path / "sync", url, request_timeout=0.2, max_attempts=2)
    assert summary["jobs"]["failed"] == 3 and summary["failures_by_kind"] == {"timeout": 3}
    # The server finishes what the client gave up on, as the real one does: each job is paid twice.
    await eventually(lambda: len(server.stats.as_dict()["generated_twice"]) == 3)

    server, url = await api(slow)
    summary, _ = await run_text(manifest_text(3), tmp_path / "async", url, async_mode=True, request_timeout=5)
    stats = server.stats.as_dict()
    assert summary["jobs"]["succeeded"] == 3
    assert stats["generations"] == 3 and stats["generated_twice"] == []
    assert stats["requests"]["results"] >= 3  # polled


async def test_a_generation_still_running_is_polled_by_the_next_run_not_paid_again(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(latency=(0.8, 0.9)))
    summary, _ = await run_text(manifest_text(2), tmp_path / "run", url, async_mode=True, request_timeout=0.3)
    assert summary["failures_by_kind"] == {"timeout": 2}
    assert all("the next run polls it again" in line["error"]["message"] for line in records(tmp_path / "run"))
    summary, _ = await run_text(manifest_text(2), tmp_path / "run", url, async_mode=True, request_timeout=5)
    assert summary["jobs"]["fetched_again"] == 2 and summary["jobs"]["submitted"] == 0
    assert summary["jobs"]["done"] == 2
    assert server.stats.as_dict()["generations"] == 2


async def test_max_jobs_submits_exactly_that_many_and_the_next_run_continues(api: Api, tmp_path: Path) -> None:
    server, url = await api()
    summary, stop = await run_text(manifest_text(12), tmp_path / "run", url, max_jobs=5, concurrency=3)
    assert stop.reason == "max_jobs"
    assert summary["jobs"]["submitted"] == 5 and len(records(tmp_path / "run")) == 5
    assert server.stats.requests["features"] == 5
    summary, stop = await run_text(manifest_text(12), tmp_path / "run", url, max_jobs=50)
    assert not stop.requested and summary["jobs"]["done"] == 12


async def test_a_deadline_stops_dispatching_and_finishes_what_is_in_flight(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(latency=(0.02, 0.02)))
    clock = {"now": 0.0}

    def a_minute_per_job(event: Event) -> None:  # the run's clock moves only as jobs finish
        if event.kind == "done":
            clock["now"] += 60

    summary, stop = await run_text(
        manifest_text(60),
        tmp_path / "run",
        url,
        concurrency=2,
        deadline=5 * 60 - 1,
        clock=lambda: clock["now"],
        on_event=a_minute_per_job,
    )
    assert stop.reason == "deadline"
    # The deadline passed as the fifth job finished: nothing new went out after it, and what
    # was in flight then (one job per worker, generating or saving: 2 x concurrency) finished
    # and was recorded.
    assert 5 <= summary["jobs"]["submitted"] <= 5 + 2 * 2 - 1
    assert summary["jobs"]["succeeded"] == summary["jobs"]["submitted"]
    assert server.stats.in_flight == 0 and server.stats.requests["features"] == summary["jobs"]["submitted"]


async def test_every_job_succeeds_with_real_images_and_valid_records(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(max_side=None))
    summary, stop = await run_text(manifest_text(6), tmp_path / "run", url, concurrency=3)
    assert not stop.requested
    assert summary["jobs"] == {
        "total": 6, "done": 6, "pending": 0, "done_before": 0,
        "submitted": 6, "succeeded": 6, "failed": 0, "fetched_again": 0, "recovered": 0, "held_back": 0,
    }  # fmt: skip
    lines = records(tmp_path / "run")
    assert len(lines) == 6
    validator = schemas.validator("record")
    for line in lines:
        assert list(validator.iter_errors(line)) == []
        assert line["status"] == "success" and line["error"] is None
        (name,) = line["files"]
        with Image.open(tmp_path / "run" / name) as image:
            assert image.format == "WEBP"
            assert image.size == pictures.size_of(line["request"]["promptObject"]) == (448, 560)
        assert line["aiRecord"]["aiRecordDetail"]["promptObject"] == line["request"]["promptObject"]
    assert server.stats.as_dict()["generations"] == 6


async def test_peak_in_flight_equals_the_concurrency_limit(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(latency=(0.03, 0.06)))
    await run_text(manifest_text(40), tmp_path / "run", url, concurrency=5)
    assert server.stats.peak_in_flight == 5
    assert len(records(tmp_path / "run")) == 40


async def test_retryable_failures_are_taken_up_by_every_rerun(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(server_error=1.0))
    summary, _ = await run_text(manifest_text(4), tmp_path / "run", url, max_attempts=2)
    assert summary["jobs"]["failed"] == 4
    assert all(line["error"]["retryable"] for line in records(tmp_path / "run"))
    server.knobs = server.knobs.with_(server_error=0.0)
    summary, _ = await run_text(manifest_text(4), tmp_path / "run", url)
    assert summary["jobs"]["submitted"] == 4 and summary["jobs"]["done"] == 4
