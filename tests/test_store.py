"""The run dir (runner/store.py): its lock, and what recovery undoes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runner.errors import RunLocked
from runner.store import RunDir
from tests.conftest import (
    Cli,
    EmulatorProcesses,
    manifest_text,
    records,
    start_run,
    wait_for_lines,
    write,
)
from tests.support import REPO, writer_of


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


def test_the_writer_of_a_killed_run_holds_the_lock_until_it_is_done(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.05,0.1", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(40, concurrency=4))
    argv = [sys.executable, "-m", "runner", "run", str(manifest), "--base-url", served.url, "--no-progress"]
    first = start_run(manifest, served.url)
    run_dir = tmp_path / "output" / "t"
    wait_for_lines(run_dir, 3)
    writer = writer_of(first.pid)
    os.kill(writer, signal.SIGSTOP)  # a writer paused with frames still to commit
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)  # its pipes stay open while the paused writer, which shares stderr, lives
    second = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert second.returncode == 2 and "is being run by" in second.stderr
    os.kill(writer, signal.SIGCONT)
    first.communicate(timeout=10)  # the writer finished its frames and is gone: the pipes close
    third = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert third.returncode == 0, third.stderr
    successes = [line["job_id"] for line in records(run_dir) if line["status"] == "success"]
    assert len(successes) == len(set(successes)) == 40


def test_an_unusable_run_dir_is_a_clear_message(cli: Cli, tmp_path: Path) -> None:
    in_the_way = write(tmp_path / "a-file", "not a directory")
    result = cli("run", str(REPO / "manifests" / "example.yaml"), "--emulator", "--out", str(in_the_way))
    assert result.code == 2
    assert f"flux-batch: cannot use {in_the_way} as a run directory: File exists" in result.err
    assert "Traceback" not in result.err
