"""`flux-batch status` and `report` (runner/cli_status.py), from the run dir alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import (
    Cli,
    EmulatorProcesses,
    manifest_text,
    records,
    run_cli,
    run_module,
    start_run,
    wait_for_lines,
    write,
)
from tests.support import EXAMPLE, REPO, flux_batch, page_data


def test_report_of_a_read_only_run_dir_is_a_clear_message(cli: Cli, tmp_path: Path) -> None:
    done = run_module(tmp_path, "run", str(REPO / "manifests" / "example.yaml"), "--emulator", "--out", "run", "--no-report")
    assert done.returncode == 0, done.stderr
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(tmp_path / "run"), str(tmp_path / "run")], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here: {mounted.stderr.decode().strip()}")
    try:
        result = cli("report", str(tmp_path / "run"))
    finally:
        subprocess.run(["umount", str(tmp_path / "run")], check=False)
    assert result.code == 2
    assert f"flux-batch: cannot write the report in {tmp_path / 'run'}: Read-only file system" in result.err


def test_status_plan_log_and_history_of_a_partial_run(cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32", "--refuse", "0.3", "--seed", "3")
    manifest = write(tmp_path / "m.yaml", manifest_text(12))
    first = run_cli(cli, manifest, served.url, "--max-jobs", "8")
    assert first.code == 3
    run_dir = tmp_path / "output" / "t"
    failed = sum(1 for line in records(run_dir) if line["status"] == "failed")
    assert 0 < failed < 8
    status = cli("status", str(run_dir), "--json")
    counts = json.loads(status.out)
    assert (counts["total"], counts["done"], counts["failed"], counts["pending"]) == (12, 8 - failed, failed, 4)
    assert counts["failed_by_kind"] == {"validation": failed}
    assert counts["last_run"]["stopped"]["reason"] == "max_jobs"
    human = cli("status", str(run_dir))
    assert f"12 jobs: {8 - failed} done, {failed} failed (validation {failed}), 4 pending" in human.out
    assert f"  {failed} x validation: the provider refused the request (422): NSFW content detected" in human.out
    assert counts["failures"][0]["jobs"] == failed and counts["failures"][0]["kind"] == "validation"
    second = run_cli(cli, manifest, served.url)
    assert second.code in (0, 1)
    history = (run_dir / "summary.history.jsonl").read_text().splitlines()
    assert len(history) == 2
    log = (run_dir / "run.log").read_text()
    assert "FAILED p/" in log and "validation: the provider refused the request (422)" in log
    assert "STOP: 8 new jobs submitted, the --max-jobs cap" in log
    assert log.count("finished with exit code") == 2


def test_status_of_something_that_is_not_a_run_dir(cli: Cli, tmp_path: Path) -> None:
    result = cli("status", str(tmp_path))
    assert result.code == 2
    assert "is not a run directory" in result.err


def test_status_says_when_a_run_is_live_in_the_run_dir(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.3,0.4", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(12, concurrency=1))
    run = start_run(manifest, served.url)
    try:
        wait_for_lines(tmp_path / "output" / "t", 1)
        live = flux_batch(tmp_path, "status", "output/t", "--json")
        assert json.loads(live.stdout)["live"].startswith(f"flux-batch pid {run.pid}, started ")
        assert f"live: flux-batch pid {run.pid}" in flux_batch(tmp_path, "status", "output/t").stdout
    finally:
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=30)
    assert json.loads(flux_batch(tmp_path, "status", "output/t", "--json").stdout)["live"] is None


def test_output_cut_by_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    assert run_module(tmp_path, "run", str(EXAMPLE), "--emulator", "--out", "run", "--no-report").returncode == 0
    for _ in range(4):
        piped = subprocess.run(
            f"'{sys.executable}' -m runner status --json run | head -1", shell=True, capture_output=True, text=True, cwd=tmp_path
        )
        assert piped.stdout == "{\n"
        assert piped.stderr == "", piped.stderr


def test_credits_are_kept_per_job_and_added_over_invocations_at_their_own_prices(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(5, credits_per_image=0.5))
    run_dir = tmp_path / "output" / "t"
    assert run_cli(cli, manifest, served.url, "--max-jobs", "2").code == 3  # stopped by the cap, resumable
    assert json.loads((run_dir / "summary.json").read_text())["credits_spent"] == 1.0
    plan = cli("plan", str(manifest), "--base-url", served.url)
    assert "about 1 credits at 0.5 an image" not in plan.out and "about 2 credits at 0.5 an image" in plan.out
    assert "spent       1 credits so far, over every run" in plan.out

    second = run_cli(cli, manifest, served.url, "--credits-per-image", "0.75")  # the price changed overnight
    assert second.code == 0 and "2.25 credits" in second.out
    assert sorted(line["credits"] for line in records(run_dir)) == [0.5, 0.5, 0.75, 0.75, 0.75]
    assert json.loads((run_dir / "summary.json").read_text())["credits_spent"] == 2.25
    status = json.loads(cli("status", str(run_dir), "--json").out)
    assert status["credits_spent"] == 3.25
    assert "credits spent: 3.25, over every run" in cli("status", str(run_dir)).out
    assert cli("report", str(run_dir)).code == 0
    assert page_data(run_dir / "report.html")["credits"] == 3.25

    unpriced = write(tmp_path / "u.yaml", manifest_text(2, name="u"))
    assert run_cli(cli, unpriced, served.url).code == 0
    assert json.loads(cli("status", "output/u", "--json").out)["credits_spent"] is None
    assert "credits spent" not in cli("status", "output/u").out
    assert "credits" not in records(tmp_path / "output" / "u")[0]


def test_a_cost_said_by_the_api_wins_over_the_declared_price(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32", "--cost", "2")
    manifest = write(tmp_path / "m.yaml", manifest_text(3, credits_per_image=0.5))
    assert run_cli(cli, manifest, served.url).code == 0
    assert [line["aiRecord"]["creditsUsed"] for line in records(tmp_path / "output" / "t")] == [2, 2, 2]
    assert [line["credits"] for line in records(tmp_path / "output" / "t")] == [2, 2, 2]
    assert json.loads(cli("status", "output/t", "--json").out)["credits_spent"] == 6
