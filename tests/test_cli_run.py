"""`flux-batch run` as a user runs it (runner/cli_run.py): signals, exit codes, hooks, and the words
at the start and the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import (
    Cli,
    EmulatorProcess,
    EmulatorProcesses,
    manifest_text,
    records,
    run_cli,
    start_run,
    wait_for_lines,
    write,
)
from tests.hostile import Hostile
from tests.support import REPO, flux_batch


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


def test_sighup_stops_like_sigterm_and_a_rerun_pays_nothing_twice(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.2,0.3", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(30, concurrency=4))
    argv = [sys.executable, "-m", "runner", "run", str(manifest), "--base-url", served.url, "--no-progress"]
    first = start_run(manifest, served.url)
    run_dir = tmp_path / "output" / "t"
    wait_for_lines(run_dir, 4)
    first.send_signal(signal.SIGHUP)
    first.communicate(timeout=30)
    assert first.returncode == 129
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"] == {"reason": "signal", "message": "SIGHUP received"}
    assert "SIGHUP received" in (run_dir / "run.log").read_text()
    second = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert second.returncode == 0, second.stderr
    assert served.stats()["generated_twice"] == []


def test_a_report_that_fails_changes_neither_the_exit_code_nor_the_hook(cli: Cli, tmp_path: Path, hostile: Hostile) -> None:
    (tmp_path / "output" / "t" / "report.html").mkdir(parents=True)  # where the report must go
    hook = write(tmp_path / "hook.py", "import sys; open('hook.ran', 'w').write(sys.argv[1])\n")
    result = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(2)), hostile.url, "--on-finish", f"{sys.executable} {hook}")
    assert result.code == 0, result.err
    assert "flux-batch: could not write the report (IsADirectoryError" in result.err
    assert "try `flux-batch report output/t`" in result.err
    assert (tmp_path / "hook.ran").is_file()


def test_max_credits_caps_the_spend_of_one_invocation(cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(10, credits_per_image=2.5))
    result = run_cli(cli, manifest, served.url, "--max-credits", "10")
    assert result.code == 3
    assert "4 new jobs submitted, the --max-credits cap of 10 at 2.5 an image" in result.err
    assert served.stats()["generations"] == 4
    status = json.loads(cli("status", str(tmp_path / "output" / "t"), "--json").out)
    assert status["stopped"] == "max_credits"  # the cap that stopped it, not --max-jobs
    plan = cli("plan", str(manifest))
    assert "4 done, 6 to run" in plan.out
    assert "about 15 credits at 2.5 an image" in plan.out
    assert "the median of 4 images made here" in plan.out


def test_on_finish_runs_with_the_summary_path_and_without_the_key(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEMIN_API_KEY", "emulator-key")
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(3))
    hook = write(
        tmp_path / "hook.py",
        "import json, os, sys\n"
        "summary = json.load(open(sys.argv[1]))\n"
        "open('hook.out', 'w').write(json.dumps([sys.argv[1], os.environ['FLUX_BATCH_EXIT_CODE'],"
        " 'ONEMIN_API_KEY' in os.environ, summary['jobs']['succeeded']]))\n",
    )
    result = run_cli(cli, manifest, served.url, "--on-finish", f"{sys.executable} {hook}")
    assert result.code == 0
    path, code, key_seen, succeeded = json.loads((tmp_path / "hook.out").read_text())
    assert path == str(Path("output") / "t" / "summary.json")
    assert (code, key_seen, succeeded) == ("0", False, 3)


def test_a_deadline_stops_the_run_with_exit_3(cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    import time

    served = emulator_process("--latency", "0.3,0.3", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(40, concurrency=2))
    started = time.monotonic()
    result = run_cli(cli, manifest, served.url, "--deadline", "1s")
    assert result.code == 3
    assert time.monotonic() - started < 3
    assert "stopped early: the deadline has passed. Run the same command again to resume." in result.err
    assert 4 <= len(records(tmp_path / "output" / "t")) <= 10


def test_no_key_and_a_real_base_url_exits_2_and_says_what_to_do(cli: Cli, tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.yaml", manifest_text(2))
    result = cli("run", str(manifest))
    assert result.code == 2
    assert "ONEMIN_API_KEY is not set" in result.err
    assert "--emulator" in result.err
    assert not (tmp_path / "output").exists()


def test_run_with_the_built_in_emulator_through_the_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "flux-batch"
    done = subprocess.run(
        [str(script), "run", str(REPO / "manifests" / "example.yaml"), "--emulator", "--out", "out"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "example: 8 of 8 jobs done (8 this run, 0 failed" in done.stdout
    assert "images in out/images" in done.stdout
    assert len(list((tmp_path / "out" / "images").rglob("*.webp"))) == 8
    status = subprocess.run([str(script), "status", "out"], capture_output=True, text=True, cwd=tmp_path)
    assert status.returncode == 0
    assert "out: 8 jobs: 8 done, 0 failed, 0 pending" in status.stdout
    # No terminal: no bar; one line at the start, and a quick run needs no other.
    assert [line.split("] ")[1] for line in done.stderr.splitlines()] == ["starting: 8 jobs to run"]


def test_a_resumed_run_says_what_it_resumes_and_a_rerun_with_nothing_to_do_keeps_the_figures(
    tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(10))
    assert flux_batch(tmp_path, "run", str(manifest), "--base-url", served.url, "--max-jobs", "4").returncode == 3
    resumed = flux_batch(tmp_path, "run", str(manifest), "--base-url", served.url)
    assert resumed.returncode == 0
    assert "resuming: 4 of 10 done, 6 to run" in resumed.stderr
    summary = (tmp_path / "output" / "t" / "summary.json").read_text()
    idle = flux_batch(tmp_path, "run", str(manifest), "--base-url", served.url)
    assert idle.returncode == 0
    assert "t: nothing to do: 10 of 10 jobs done (last run " in idle.stdout
    assert (tmp_path / "output" / "t" / "summary.json").read_text() == summary
    status = flux_batch(tmp_path, "status", "output/t")
    assert "last run: " in status.stdout and ": 6 succeeded, 0 failed" in status.stdout
    assert len((tmp_path / "output" / "t" / "summary.history.jsonl").read_text().splitlines()) == 2


def test_a_signal_during_the_report_leaves_the_runs_exit_code(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    # Large pictures make the report's thumbnails take a while; the signal arrives meanwhile.
    served = emulator_process("--latency", "0.001,0.002")
    manifest = write(tmp_path / "m.yaml", manifest_text(60, concurrency=16).replace("megapixels: 0.25", "megapixels: 2"))
    run = start_run(manifest, served.url)
    summary = tmp_path / "output" / "t" / "summary.json"
    deadline = time.monotonic() + 60
    while not summary.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err  # every job succeeded: that is the run's result
    assert "60 of 60 jobs done" in out
    assert "SIGTERM received after the run: the rest of its report was skipped" in err
