"""The pace against the emulator's rate limit, through the command line and a real socket: a
run told nothing learns the limit, says so, and the next run starts at what it learned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli, EmulatorProcesses, run_cli, write

LIMIT = 1200  # requests a minute: 20 a second, so a few seconds say enough


def many_jobs(tmp_path: Path, jobs: int = 2000) -> Path:
    return write(
        tmp_path / "m.yaml",
        "version: 1\nname: paced\ndefaults: {megapixels: 0.25, aspect_ratio: '1:1'}\n"
        f"prompts:\n  - {{id: p, prompt: 'a paced picture'}}\nrepeats: {jobs}\nseed_base: 3\n",
    )


def test_a_run_told_nothing_learns_the_limit_says_so_and_the_next_run_starts_there(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEMIN_API_KEY", "emulator-key")
    served = emulator_process("--requests-per-minute", str(LIMIT), "--rate-burst", "10", "--latency", "0.02,0.05")
    manifest = many_jobs(tmp_path)
    out = tmp_path / "out"
    first = run_cli(cli, manifest, served.url, "--out", str(out), "--no-report", "--concurrency", "16", "--deadline", "8s")
    assert first.code == 3 and "deadline" in first.err  # stopped by the deadline, as planned
    stats = served.stats()
    assert stats["statuses"]["429"] <= 0.1 * stats["requests"]["features"]
    assert stats["let_through"] >= 0.8 * (LIMIT / 60) * stats["let_through_s"]

    learned = json.loads((out / "pace.json").read_text())["endpoints"][served.url]["requests_per_minute"]
    assert 0.8 * LIMIT <= learned <= 1.1 * LIMIT  # measured, and under the limit but for a measure's tenth
    log = (out / "run.log").read_text()
    assert "pace: " in log and "answered 429 (too many requests)" in log
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pace"]["throttled"] == stats["statuses"]["429"] and summary["pace"]["slowed"]
    status = cli("status", str(out))
    assert "pace: " in status.out and "answered 429" in status.out

    answered_429 = stats["statuses"]["429"]
    again = run_cli(cli, manifest, served.url, "--out", str(out), "--no-report", "--concurrency", "16", "--deadline", "4s")
    assert again.code == 3
    assert "starting at the pace learned before" in (out / "run.log").read_text()
    assert served.stats()["statuses"]["429"] - answered_429 <= 3  # it started under the limit


def test_a_limit_the_server_states_is_kept_from_the_first_request_on(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEMIN_API_KEY", "emulator-key")
    served = emulator_process(
        "--requests-per-minute", str(LIMIT), "--rate-burst", "4", "--rate-policy", "1", "--latency", "0.02,0.05"
    )
    out = tmp_path / "out"
    result = run_cli(
        cli, many_jobs(tmp_path), served.url, "--out", str(out), "--no-report", "--concurrency", "4", "--deadline", "5s"
    )
    assert result.code == 3
    stats = served.stats()
    assert "429" not in stats["statuses"] and stats["let_through"] >= 0.9 * (LIMIT / 60) * stats["let_through_s"]
    assert f"the server states a limit of {LIMIT} per 60 s" in (out / "run.log").read_text()


def test_a_run_told_the_limit_sends_no_request_too_many(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEMIN_API_KEY", "emulator-key")
    served = emulator_process("--requests-per-minute", str(LIMIT), "--rate-burst", "2", "--latency", "0.02,0.05")
    out = tmp_path / "out"
    flags = ("--out", str(out), "--no-report", "--concurrency", "16", "--deadline", "5s", "--requests-per-minute", str(LIMIT))
    assert run_cli(cli, many_jobs(tmp_path), served.url, *flags).code == 3
    stats = served.stats()
    # A bucket of two: two requests closer than one interval apart would be a 429.
    assert "429" not in stats["statuses"] and stats["let_through"] >= 0.97 * (1 + LIMIT / 60 * stats["let_through_s"])
    assert not (out / "pace.json").exists()  # what the user said is not something learned
    assert "pace: 1,200 requests a minute, as told" in cli("status", str(out)).out


def test_a_long_retry_after_pauses_the_pool_instead_of_meeting_429_after_429(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A window of 3 s that allows 30 requests, and a Retry-After of 3 s past it: not a bucket
    # that refills as it goes, so a request every interval meets a 429 until the window moves.
    monkeypatch.setenv("ONEMIN_API_KEY", "emulator-key")
    served = emulator_process(
        "--requests-per-minute", "600", "--rate-window", "3", "--retry-after", "3", "--latency", "0.02,0.05"
    )
    out = tmp_path / "out"
    result = run_cli(
        cli, many_jobs(tmp_path), served.url, "--out", str(out), "--no-report", "--concurrency", "16", "--deadline", "12s"
    )
    assert result.code == 3
    stats = served.stats()
    assert stats["statuses"]["429"] <= 0.1 * stats["requests"]["features"]
    assert stats["let_through"] >= 0.75 * 10 * stats["let_through_s"]
