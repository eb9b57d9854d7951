"""Writing the run dir (runner/writer.py and its process): group commits, a full disk, a dead writer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from runner.plan import Job
from runner.records import Record
from runner.store import RunDir
from runner.writer import COMMIT_INTERVAL_S
from tests.conftest import (
    Api,
    Cli,
    EmulatorProcesses,
    manifest_text,
    records,
    run_cli,
    run_text,
    start_run,
    wait_for_lines,
    write,
)
from tests.support import every_file, writer_of


def success(job_id: str) -> Record:
    return Record.success(Job(job_id, "p", {}, {}), 1, {}, [], started=0.0)


async def test_the_writer_process_gets_neither_the_api_key_nor_the_terminal_s_signals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEMIN_API_KEY", "sk-test-NEVER-PRINT-ME")
    with RunDir.open(tmp_path / "run", "x") as run_dir:
        async with run_dir.records() as writer:
            process = writer._process
            assert process is not None
            environment = Path(f"/proc/{process.pid}/environ").read_bytes()
            assert b"NEVER-PRINT-ME" not in environment
            assert os.getsid(process.pid) != os.getsid(0)  # its own session: no Ctrl-C from the terminal
            await writer.append(success("fedcba9876543210"))  # it has started
            assert os.sched_getscheduler(process.pid) == os.SCHED_BATCH  # it never preempts the event loop
            await writer.append(success("0123456789abcdef"), [("images/p/a.webp", b"RIFF")])
        assert process.returncode == 0  # it ended when its input did, after writing everything
    lines = (tmp_path / "run" / "records.jsonl").read_text().splitlines()
    assert [json.loads(line)["job_id"] for line in lines] == ["fedcba9876543210", "0123456789abcdef"]
    assert (tmp_path / "run" / "images/p/a.webp").read_bytes() == b"RIFF"


async def test_a_stream_of_lines_shares_commits_and_a_lone_or_last_line_is_committed_at_once(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    with RunDir.open(tmp_path / "run", "x") as run_dir:
        async with run_dir.records() as writer:

            async def finish(n: int) -> None:
                await asyncio.sleep(n * 0.001)  # jobs finishing a millisecond apart, as at high concurrency
                await writer.append(success(f"{n:016x}"), [(f"images/p/{n:016x}.webp", b"RIFF")])

            started = loop.time()
            await asyncio.gather(*(finish(n) for n in range(200)))
            elapsed = loop.time() - started
            assert writer.commits <= elapsed / COMMIT_INTERVAL_S + 2  # not one per line, nor one per millisecond
            await asyncio.sleep(2 * COMMIT_INTERVAL_S)
            before, commits = loop.time(), writer.commits
            await writer.append(success("fedcba9876543210"))
            assert writer.commits == commits + 1
            assert writer._last_commit - before < COMMIT_INTERVAL_S / 2  # no waiting for company that is not coming
            writer.hurry()  # as the pool does once it sends nothing new
            await writer.append(success("fedcba9876543211"))
            before = loop.time()
            await writer.append(success("fedcba9876543212"))
            assert writer._last_commit - before < COMMIT_INTERVAL_S / 2  # right after the one before
    lines = (tmp_path / "run" / "records.jsonl").read_text().splitlines()
    assert len(lines) == 203 and len(list((tmp_path / "run" / "images" / "p").iterdir())) == 200


async def test_a_disk_that_refuses_the_images_stops_the_run_cleanly(api: Api, tmp_path: Path) -> None:
    # A file where the prompt's image directory must go: a real OSError, in the writer process.
    write(tmp_path / "run" / "images" / "p", "in the way")
    _, url = await api()
    summary, stop = await run_text(manifest_text(20), tmp_path / "run", url, concurrency=2)
    assert stop.reason == "disk"
    assert stop.message == f"cannot write {tmp_path / 'run' / 'images' / 'p'}: File exists"
    assert records(tmp_path / "run") == []
    assert summary["jobs"]["succeeded"] == 0 and summary["jobs"]["submitted"] < 20


def test_a_full_disk_stops_the_run_with_exit_3_and_a_clean_run_dir(
    cli: Cli, small_disk: Path, emulator_process: EmulatorProcesses
) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "600")
    manifest = write(small_disk.parent / "m.yaml", manifest_text(60, concurrency=4).replace("megapixels: 0.25", "megapixels: 1"))
    run_dir = small_disk / "run"
    result = run_cli(cli, manifest, served.url, "--out", str(run_dir), "--no-report")
    assert result.code == 3, result.err
    assert f"the disk holding {run_dir} is full (No space left on device" in result.err
    assert "Free some space, then run the same command again to resume." in result.err
    assert "Traceback" not in result.err
    assert not [p for p in every_file(run_dir) if ".partial-" in p.name]
    lines = records(run_dir)
    assert 0 < len(lines) < 60
    for line in lines:  # every line that made it names a whole image
        assert (run_dir / line["files"][0]).stat().st_size > 0
    log = (run_dir / "run.log").read_text()
    assert "STOP: the disk holding" in log


def test_a_writer_that_dies_is_named_as_such_not_as_a_full_disk(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.2,0.3", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(40, concurrency=2))
    run = start_run(manifest, served.url)
    writer = writer_of(run.pid)
    wait_for_lines(tmp_path / "output" / "t", 2)  # it has written: the run counts on it
    os.kill(writer, signal.SIGKILL)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 3, err
    assert "the run dir's writer process ended unexpectedly (killed by signal 9)" in err
    assert "disk" not in err.split("stopped early:")[1].split(".")[0]
