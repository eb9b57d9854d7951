"""Faults against the emulator: every fault ends in one success, a recorded
error, or a job left for the next run; never a lost image or a paid duplicate."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from runner.errors import RunLocked
from runner.events import Event
from runner.pacing import RetryPolicy
from runner.store import RunDir
from tests.conftest import (
    FAST,
    Api,
    Cli,
    EmulatorProcess,
    EmulatorProcesses,
    eventually,
    manifest_text,
    records,
    run_text,
    start_run,
    wait_for_lines,
    write,
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


def test_a_second_invocation_on_one_run_dir_is_refused(tmp_path: Path) -> None:
    with RunDir.open(tmp_path / "run", "x"):
        with pytest.raises(RunLocked, match="is being run by flux-batch pid"):
            RunDir.open(tmp_path / "run", "x")
    with RunDir.open(tmp_path / "run", "x"):  # released on close
        pass


def test_a_torn_last_line_and_stray_temp_files_are_cleaned_up(tmp_path: Path) -> None:
    run = tmp_path / "run"
    good = '{"job_id": "0123456789abcdef", "prompt_id": "p", "status": "success", "files": []}\n'
    write(run / "records.jsonl", good + '{"job_id": "fedcba98765')
    write(run / "images" / "p" / ".partial-fedcba9876543210.webp", "half")
    with RunDir.open(run, "x") as opened:
        assert opened.index.done == {"0123456789abcdef"}
        assert any("partial line" in note for note in opened.notes)
        assert any("removed 1 partly written file" in note for note in opened.notes)
    assert (run / "records.jsonl").read_text() == good
    assert not list((run / "images").rglob(".partial-*"))


# -- whole processes: signals and kill -9 ---------------------------------------------------


def a_run_under_way(
    tmp_path: Path, emulator_process: EmulatorProcesses, lines: int
) -> tuple[EmulatorProcess, Path, Path, subprocess.Popen[str]]:
    """30 jobs at concurrency 4 against a slow emulator process, once `lines` are recorded:
    (emulator, manifest, run dir, the running process)."""
    served = emulator_process("--latency", "0.2,0.4", "--max-side", "64")
    manifest = write(tmp_path / "m.yaml", manifest_text(30, concurrency=4))
    run_dir = tmp_path / "output" / "t"
    running = start_run(manifest, served.url)
    wait_for_lines(run_dir, lines)
    return served, manifest, run_dir, running


def test_sigterm_finishes_in_flight_jobs_and_a_rerun_completes_each_job_once(
    tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    served, manifest, run_dir, first = a_run_under_way(tmp_path, emulator_process, lines=4)
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=30)
    assert first.returncode == 143, err
    assert "SIGTERM: finishing the jobs in flight" in err
    assert f"To resume: flux-batch run {manifest} --base-url {served.url} --no-progress" in err
    assert "Traceback" not in err
    after_stop = len(records(run_dir))
    assert 4 <= after_stop < 30
    second = start_run(manifest, served.url)
    second.communicate(timeout=60)
    assert second.returncode == 0
    lines = records(run_dir)
    assert len(lines) == 30 and len({line["job_id"] for line in lines}) == 30
    assert served.stats()["generated_twice"] == []


def test_kill_9_loses_at_most_the_jobs_in_flight(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served, manifest, run_dir, first = a_run_under_way(tmp_path, emulator_process, lines=6)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=10)
    second = start_run(manifest, served.url)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    lines = [line for line in records(run_dir) if line["status"] == "success"]
    assert len({line["job_id"] for line in lines}) == 30 == len(lines)
    # In flight at the kill: up to 4 generating and up to 4 more being downloaded and
    # recorded, one job per worker (2 x concurrency). Only those may have been paid twice.
    assert len(served.stats()["generated_twice"]) <= 8
    for line in lines:
        assert (run_dir / line["files"][0]).stat().st_size > 0


def test_a_second_run_command_on_a_busy_run_dir_exits_2(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.3,0.4", "--max-side", "64")
    manifest = write(tmp_path / "m.yaml", manifest_text(20, concurrency=2))
    first = start_run(manifest, served.url)
    wait_for_lines(tmp_path / "output" / "t", 1)
    second = start_run(manifest, served.url)
    _, err = second.communicate(timeout=30)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=30)
    assert second.returncode == 2
    assert "is being run by flux-batch pid" in err
    assert first.returncode == 130


# -- asynchronous mode, caps and deadlines --------------------------------------------------


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


async def test_a_disk_that_refuses_the_images_stops_the_run_cleanly(api: Api, tmp_path: Path) -> None:
    # A file where the prompt's image directory must go: a real OSError, in the writer process.
    write(tmp_path / "run" / "images" / "p", "in the way")
    _, url = await api()
    summary, stop = await run_text(manifest_text(20), tmp_path / "run", url, concurrency=2)
    assert stop.reason == "disk"
    assert stop.message == f"cannot write {tmp_path / 'run' / 'images' / 'p'}: File exists"
    assert records(tmp_path / "run") == []
    assert summary["jobs"]["succeeded"] == 0 and summary["jobs"]["submitted"] < 20


def test_exit_codes_and_messages_of_a_bad_key_and_of_no_credits(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-NEVER-PRINT-ME"
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32", "--keys", secret, "--credits", "3")
    manifest = write(tmp_path / "m.yaml", manifest_text(8, concurrency=1))
    monkeypatch.setenv("ONEMIN_API_KEY", "wrong-key")
    bad_key = cli("run", str(manifest), "--base-url", served.url, "--no-progress")
    assert bad_key.code == 3
    assert "the API key was refused (HTTP 401" in bad_key.err and "Check ONEMIN_API_KEY" in bad_key.err
    monkeypatch.setenv("ONEMIN_API_KEY", secret)
    no_credits = cli("run", str(manifest), "--base-url", served.url, "--no-progress")
    assert no_credits.code == 3
    assert "out of credits" in no_credits.err and "Top up the account" in no_credits.err
    assert len(records(tmp_path / "output" / "t")) == 3
    log = (tmp_path / "output" / "t" / "run.log").read_text()
    for text in (bad_key.out, bad_key.err, no_credits.out, no_credits.err, log):
        assert secret not in text


def test_a_second_signal_abandons_the_jobs_in_flight(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "3,3", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(10, concurrency=2))
    run = start_run(manifest, served.url)
    deadline = time.monotonic() + 20
    while served.stats()["in_flight"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    assert run.stderr is not None
    while "finishing the jobs in flight" not in run.stderr.readline():  # the first one is heard
        pass
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=10)
    assert run.returncode == 130
    assert "jobs in flight were abandoned and will run again" in err
    assert "Traceback" not in err
    assert records(tmp_path / "output" / "t") == []
