"""Paid pictures (runner/fetch.py): fetched as persistently as they were generated, and never paid
for twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.events import Event
from runner.pacing import RetryPolicy
from tests.conftest import (
    FAST,
    Api,
    manifest_text,
    records,
    run_text,
)


async def test_an_expired_temporary_url_falls_back_to_the_public_asset(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(temporary_url_ttl=-10))
    summary, _ = await run_text(manifest_text(5), tmp_path / "run", url)
    assert summary["jobs"]["succeeded"] == 5
    # Each signed URL was refused as expired, then the public one served the image.
    assert server.stats.requests["signed_asset"] == 5 and server.stats.requests["public_asset"] == 5
    assert server.stats.downloads == 5


async def test_a_paid_image_that_cannot_be_fetched_is_fetched_by_the_next_run(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(download_fail=1.0))
    summary, _ = await run_text(manifest_text(4), tmp_path / "run", url)
    assert summary["jobs"]["failed"] == 4
    failed = records(tmp_path / "run")
    assert {line["error"]["kind"] for line in failed} == {"download"}
    assert all(line["aiRecord"]["uuid"] for line in failed)
    server.knobs = server.knobs.with_(download_fail=0.0)
    summary, _ = await run_text(manifest_text(4), tmp_path / "run", url)
    assert summary["jobs"]["fetched_again"] == 4 and summary["jobs"]["submitted"] == 0
    assert summary["jobs"]["done"] == 4
    assert server.stats.as_dict()["generations"] == 4  # nothing paid for twice


async def test_a_download_cut_short_is_fetched_again_not_kept(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(download_truncate=1.0))
    summary, _ = await run_text(manifest_text(3), tmp_path / "run", url)
    assert summary["failures_by_kind"] == {"download": 3}
    assert all("cut short" in line["error"]["message"] for line in records(tmp_path / "run"))
    assert not list((tmp_path / "run").glob("images/*/*"))
    server.knobs = server.knobs.with_(download_truncate=0.0)
    summary, _ = await run_text(manifest_text(3), tmp_path / "run", url)
    assert summary["jobs"]["fetched_again"] == 3 and summary["jobs"]["submitted"] == 0
    assert server.stats.as_dict()["generations"] == 3


@pytest.mark.parametrize("seed", range(10))
async def test_a_storm_of_faults_still_finishes_every_job_in_one_invocation(api: Api, tmp_path: Path, seed: int) -> None:
    server, url = await api(FAST.with_(download_fail=0.25, server_error=0.1, seed=seed))
    policy = RetryPolicy(max_attempts=6, base_delay=0.005, max_delay=0.02)
    summary, stop = await run_text(manifest_text(40), tmp_path / "run", url, policy=policy, concurrency=8)
    assert not stop.requested
    assert summary["jobs"]["done"] == 40 and summary["jobs"]["failed"] == 0, summary["failure_examples"]
    stats = server.stats.as_dict()
    assert stats["generations"] == 40 and stats["generated_twice"] == []
    assert summary["download_retries"] > 0


async def test_an_image_that_cannot_be_fetched_now_gets_one_more_pass_at_the_end(api: Api, tmp_path: Path) -> None:
    # Two tries at each of two URLs fail (4 in all), then the host recovers: by the end of the run.
    server, url = await api(FAST.with_(download_fail_first=4))
    policy = RetryPolicy(max_attempts=2, base_delay=0.005, max_delay=0.02)
    summary, _ = await run_text(manifest_text(3), tmp_path / "run", url, policy=policy)
    assert summary["jobs"]["succeeded"] == 3 and summary["jobs"]["failed"] == 0
    lines = records(tmp_path / "run")
    # Each paid image was recorded with its aiRecord at once, then fetched on the last pass.
    assert [line["status"] for line in lines].count("failed") == 3
    assert [line["status"] for line in lines].count("success") == 3
    assert server.stats.as_dict()["generations"] == 3


async def test_a_download_honours_the_hosts_retry_after(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(download_fail_first=1, download_retry_after=0.4))
    policy = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=5)
    events: list[Event] = []
    summary, _ = await run_text(manifest_text(1), tmp_path / "run", url, policy=policy, events=events)
    assert summary["jobs"]["succeeded"] == 1 and summary["download_retries"] == 1
    (retry,) = [event for event in events if event.kind == "retry"]
    assert retry.message == "download" and retry.wait == 0.4  # the host's Retry-After, over a backoff of at most 1 ms
