"""The run dir's writer process: frames in, durable images and lines out, errors reported."""

from __future__ import annotations

import asyncio
import errno
import io
import json
import os
from pathlib import Path

import pytest

from runner import diskwriter
from runner.diskwriter import OK, decode, encode, serve
from runner.plan import Job
from runner.records import Record
from runner.store import RunDir
from runner.writer import COMMIT_INTERVAL_S

LINE = b'{"job_id": "0123456789abcdef"}\n'


def success(job_id: str) -> Record:
    return Record.success(Job(job_id, "p", {}, {}), 1, {}, [], started=0.0)


def frames(*batches: tuple[list[tuple[str, bytes]], bytes]) -> io.BytesIO:
    return io.BytesIO(b"".join(encode(images, lines) for images, lines in batches))


def test_a_frame_survives_the_pipe_whole() -> None:
    images = [("images/p/a.webp", b"RIFF" + bytes(range(256)) * 40), ("images/q/b-1.png", b"")]
    stream = frames((images, LINE * 3))
    assert decode(stream) == (images, LINE * 3)
    assert decode(stream) is None


@pytest.mark.parametrize("use_syncfs", [True, False], ids=["syncfs", "fsync-each-file"])
def test_both_ways_of_syncing_write_the_images_then_the_lines(
    tmp_path: Path, use_syncfs: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not use_syncfs:
        monkeypatch.setattr(diskwriter, "_syncfs_of", lambda directory: None)  # as on a system without syncfs(2)
    answers = io.BytesIO()
    batches = ([("images/p/a.webp", b"first")], LINE), ([("images/p/b.webp", b"second"), ("images/r/c.webp", b"third")], LINE * 2)
    assert serve(str(tmp_path), frames(*batches), answers) == 0
    assert answers.getvalue() == OK * 2
    assert (tmp_path / "images/p/a.webp").read_bytes() == b"first"
    assert (tmp_path / "images/r/c.webp").read_bytes() == b"third"
    assert (tmp_path / "records.jsonl").read_bytes() == LINE * 3
    assert not list(tmp_path.glob("images/*/.partial-*"))


def test_a_full_disk_is_answered_with_its_errno_and_nothing_of_the_frame_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(target: str, data: bytes, durable: bool = True) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", target)

    monkeypatch.setattr(diskwriter, "write_whole", no_space)
    answers = io.BytesIO()
    assert serve(str(tmp_path), frames(([("images/p/a.webp", b"x")], LINE), ([], LINE)), answers) == 1
    error = diskwriter.error_from(answers.getvalue())
    assert (error.errno, error.strerror, error.filename) == (
        errno.ENOSPC,
        "No space left on device",
        str(tmp_path / "images/p/a.webp"),
    )
    assert (tmp_path / "records.jsonl").read_bytes() == b""  # and the frame after the error is not taken


def test_a_frame_cut_short_by_a_dying_run_writes_nothing(tmp_path: Path) -> None:
    whole = encode([("images/p/a.webp", b"0123456789")], LINE)
    assert serve(str(tmp_path), io.BytesIO(whole[:-5]), io.BytesIO()) == 1
    assert not (tmp_path / "images").exists() and (tmp_path / "records.jsonl").read_bytes() == b""


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


def test_a_slow_syncfs_gives_way_to_an_fsync_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """syncfs waits for every program's writes: on a disk another program floods, ours alone are synced."""
    monkeypatch.setattr(diskwriter, "SLOW_SYNCFS_S", -1.0)  # every syncfs counts as slow
    synced: list[int] = []
    real_fsync = os.fsync

    def counted_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counted_fsync)  # the writer calls os.fsync: the same module
    committer = diskwriter.Committer(str(tmp_path))
    if not committer.syncs_file_system():
        pytest.skip("no syncfs(2) here: files are always fsynced one by one")
    committer.commit([("images/p/a.webp", b"first")], LINE)
    assert not committer.syncs_file_system() and len(synced) == 1  # syncfs, then the records file
    committer.commit([("images/p/b.webp", b"second"), ("images/p/c.webp", b"third")], LINE)
    assert len(synced) == 1 + 2 + 1 + 1  # each image, their directory, the records file
    committer.close()
    assert (tmp_path / "images/p/c.webp").read_bytes() == b"third"
    assert (tmp_path / "records.jsonl").read_bytes() == LINE * 2
