"""One night, many manifests (runner/night.py, runner/cli_night.py), through the command line
against the emulator: one pool, one set of caps, fair turns, new manifests picked up, bad and
busy ones skipped, signals and resume."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Cli, EmulatorProcesses, manifest_text, records, run_cli, start_run, write


def queue_manifest(folder: Path, name: str, jobs: int, extra: str = "") -> Path:
    return write(
        folder / f"{name}.yaml",
        f"version: 1\nname: {name}\ndefaults: {{megapixels: 0.25, aspect_ratio: '1:1'}}\n"
        f"prompts:\n  - {{id: p, prompt: 'a {name} picture'}}\nrepeats: {jobs}\nseed_base: 1\n{extra}",
    )


def test_two_manifests_share_one_pool_and_one_job_cap_fairly(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    served = emulator_process("--latency", "0.03,0.06", "--max-side", "16")
    queue = tmp_path / "queue"
    queue_manifest(queue, "sweep", 40)
    queue_manifest(queue, "ab", 40)
    result = run_cli(cli, queue, served.url, "--concurrency", "4", "--max-jobs", "40", "--no-report")
    assert result.code == 3, result.err  # the cap stopped the night: resumable, not a failure
    stats = served.stats()
    assert stats["peak_in_flight"] == 4 and stats["generations"] == 40 and not stats["generated_twice"]
    done = {name: len(records(tmp_path / "output" / name)) for name in ("sweep", "ab")}
    assert sum(done.values()) == 40 and min(done.values()) >= 15, done
    assert "sweep: " in result.out and "ab: " in result.out and "the --max-jobs cap of the night" in result.out
    night = json.loads((tmp_path / "output" / "night.json").read_text())
    assert [row["name"] for row in night["manifests"]] == ["ab", "sweep"] and night["totals"]["submitted"] == 40
    assert night["exit_code"] == 3 and night["stopped"]["reason"] == "max_jobs"
    listed = cli("runs", str(tmp_path / "output")).out  # the night's run dirs, as any run's
    assert "output/sweep  (sweep," in listed and "output/ab  (ab," in listed and "DAMAGED" not in listed

    again = run_cli(cli, queue, served.url, "--concurrency", "4", "--no-report")  # each run dir resumes on its own
    assert again.code == 0, again.err
    assert served.stats()["generations"] == 80 and not served.stats()["generated_twice"]


def test_a_priority_manifest_goes_first(cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.03,0.06", "--max-side", "16")
    queue = tmp_path / "queue"
    queue_manifest(queue, "later", 30)
    queue_manifest(queue, "urgent", 30, "run: {priority: 5}\n")
    result = run_cli(cli, queue, served.url, "--concurrency", "2", "--max-jobs", "30", "--no-report")
    assert result.code == 3, result.err
    assert len(records(tmp_path / "output" / "urgent")) >= 28  # at most the first places went elsewhere


def test_a_manifest_added_during_the_night_is_picked_up(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.05,0.1", "--max-side", "16")
    queue = tmp_path / "queue"
    queue_manifest(queue, "first", 20)
    night = start_run(queue, served.url, "--concurrency", "2", "--no-report")
    deadline = time.monotonic() + 30
    while not (tmp_path / "output" / "first" / "records.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    queue_manifest(queue, "late", 6)  # written while the first is running
    out, err = night.communicate(timeout=60)
    assert night.returncode == 0, err
    assert len(records(tmp_path / "output" / "first")) == 20 and len(records(tmp_path / "output" / "late")) == 6
    assert "late: 6 of 6 jobs done" in out


def test_an_invalid_manifest_and_a_busy_run_dir_are_skipped_and_named(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "16")
    queue = tmp_path / "queue"
    queue_manifest(queue, "good", 5)
    write(queue / "bad.yaml", "version: 1\nname: bad\nprompts:\n  - {id: p, prompt: 'x'}\nsweep:\n  guidance: [200]\n")
    queue_manifest(queue, "busy", 5)
    (tmp_path / "output" / "busy").mkdir(parents=True)
    holder = os.open(tmp_path / "output" / "busy" / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        result = run_cli(cli, queue, served.url, "--no-report")
    finally:
        os.close(holder)
    assert result.code == 2  # the worst of the night: a manifest that could not run
    assert len(records(tmp_path / "output" / "good")) == 5
    assert "bad.yaml:6: sweep.guidance" in result.out and "busy: skipped, its run dir is busy" in result.out
    night = json.loads((tmp_path / "output" / "night.json").read_text())
    assert {row["name"] or row["manifest"]: row["state"] for row in night["manifests"]} == {
        str(queue / "bad.yaml"): "invalid",
        "busy": "busy",
        "good": "ran",
    }


def test_max_credits_holds_across_manifests_and_on_finish_gets_the_night(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "16")
    queue = tmp_path / "queue"
    queue_manifest(queue, "one", 10, "run: {credits_per_image: 2}\n")
    queue_manifest(queue, "two", 10, "run: {credits_per_image: 1}\n")
    hook = write(tmp_path / "hook.py", "import sys, shutil\nshutil.copy(sys.argv[1], sys.argv[1] + '.seen')\n")
    flags = ["--max-credits", "12", "--no-report", "--on-finish", f"{sys.executable} {hook}"]
    flags += ["--night-log", str(tmp_path / "logs")]
    result = run_cli(cli, queue, served.url, *flags)
    assert result.code == 3, result.err
    spent = 2 * len(records(tmp_path / "output" / "one")) + len(records(tmp_path / "output" / "two"))
    assert 11 <= spent <= 12  # as close to the cap as the prices allow, never over
    assert json.loads((tmp_path / "logs" / "night.json.seen").read_text())["stopped"]["reason"] == "max_credits"


def test_sigterm_stops_every_manifest_and_each_resumes(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.1,0.2", "--max-side", "16")
    queue = tmp_path / "queue"
    queue_manifest(queue, "north", 30)
    queue_manifest(queue, "south", 30)
    night = start_run(queue, served.url, "--concurrency", "4", "--no-report")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = [tmp_path / "output" / name / "records.jsonl" for name in ("north", "south")]
        if all(path.exists() and path.stat().st_size for path in lines):
            break
        time.sleep(0.02)
    night.send_signal(signal.SIGTERM)
    _, err = night.communicate(timeout=60)
    assert night.returncode == 143, err
    before = {name: len(records(tmp_path / "output" / name)) for name in ("north", "south")}
    assert all(0 < n < 30 for n in before.values()), before

    again = start_run(queue, served.url, "--concurrency", "4", "--no-report")
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert all(len(records(tmp_path / "output" / name)) == 30 for name in ("north", "south"))
    assert not served.stats()["generated_twice"]


def test_several_manifests_refuse_a_single_out(cli: Cli, tmp_path: Path) -> None:
    first = queue_manifest(tmp_path, "one", 2)
    second = queue_manifest(tmp_path, "two", 2)
    result = cli("run", str(first), str(second), "--emulator", "--out", str(tmp_path / "x"))
    assert result.code == 2 and "each runs into its own" in result.err


@pytest.mark.parametrize("missing", ["nowhere", "nowhere.yaml"])
def test_a_source_that_does_not_exist_is_a_usage_error(cli: Cli, tmp_path: Path, missing: str) -> None:
    result = cli("run", str(queue_manifest(tmp_path, "one", 2)), str(tmp_path / missing), "--emulator")
    assert result.code == 2 and "no such manifest or directory" in result.err


def test_a_night_learns_one_rate_limit_for_all_and_the_next_night_starts_there(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    served = emulator_process("--requests-per-minute", "1200", "--rate-burst", "10", "--latency", "0.02,0.05", "--max-side", "16")
    queue = tmp_path / "queue"
    queue_manifest(queue, "east", 400)
    queue_manifest(queue, "west", 400)
    first = run_cli(cli, queue, served.url, "--concurrency", "16", "--deadline", "5s", "--no-report")
    assert first.code == 3, first.err
    stats = served.stats()
    assert stats["let_through"] >= 0.75 * 20 * stats["let_through_s"]
    answered_429 = stats["statuses"]["429"]
    assert answered_429 <= 20  # what finding the limit costs at the start, once for both
    night = json.loads((tmp_path / "output" / "night.json").read_text())
    assert night["pace"]["throttled"] == answered_429 and night["pace"]["slowed"]
    assert 0.7 * 1200 <= night["pace"]["requests_per_minute"] <= 1.3 * 1200  # one pace for both: the limit, not twice it
    for name in ("east", "west"):  # each manifest's run.log says when and why the pool it shared slowed
        assert "pace: " in (tmp_path / "output" / name / "run.log").read_text()

    again = run_cli(cli, queue, served.url, "--concurrency", "16", "--deadline", "3s", "--no-report")
    assert again.code == 3, again.err
    assert "starting at the pace learned before" in (tmp_path / "output" / "east" / "run.log").read_text()
    assert served.stats()["statuses"]["429"] - answered_429 <= 3


def test_a_night_tells_its_progress_in_lines_for_a_cron_log(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A line every second instead of every 10 (test_night_progress.py holds the interval to
    # its clock): this one is about what a line says, through the command.
    monkeypatch.setattr("runner.progress.LINE_EVERY_S", 1.0)
    served = emulator_process("--requests-per-minute", "600", "--rate-burst", "4", "--latency", "0.02,0.05", "--max-side", "16")
    queue = tmp_path / "queue"
    queue_manifest(queue, "north", 200)
    queue_manifest(queue, "south", 3)
    env_flags = ("--base-url", served.url, "--concurrency", "8", "--deadline", "3s", "--no-report")
    result = cli("run", str(queue), *env_flags)
    assert result.code == 3, result.err
    lines = [line for line in result.err.splitlines() if "] night: " in line]
    assert lines, result.err  # at least one line in 3 s
    assert re.search(r"night: [0-9,]+ done, 0 failed, .*north [0-9,]+/200, south 3/3 \(finished\)", lines[-1]), lines
    assert "pace: " in result.err and "answered 429" in result.err  # the shared pace, said once for the night


def test_a_night_on_a_terminal_draws_one_bar_for_every_manifest(emulator_process: EmulatorProcesses, tmp_path: Path) -> None:
    import pty
    import struct
    import subprocess
    import termios
    import threading

    emulator = emulator_process("--latency", "0.05,0.05", "--max-side", "16")
    sources = [str(write(tmp_path / f"{name}.yaml", manifest_text(5, name=name))) for name in ("a", "b")]
    terminal, its_other_end = pty.openpty()
    fcntl.ioctl(its_other_end, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal 120 wide
    night = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", *sources, "--base-url", emulator.url, "--no-report"],
        stdout=subprocess.PIPE,
        stderr=its_other_end,
        text=True,
        cwd=tmp_path,
    )
    os.close(its_other_end)
    drawn: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the night has closed its end
                return
            if not chunk:
                return
            drawn.append(chunk)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    out, _ = night.communicate(timeout=60)
    reader.join(timeout=10)
    os.close(terminal)
    bar = b"".join(drawn).decode()
    assert night.returncode == 0
    assert "night" in bar and "10/10" in bar and "\r" in bar and "img" in bar  # one bar, both manifests' jobs
    assert " done, " not in bar  # not the cron log's lines
    assert "  a: 5 jobs into" in out and "  b: 5 jobs into" in out
