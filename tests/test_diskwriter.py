"""The run dir's writer process: frames in, durable images and lines out, errors reported."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest

from runner import diskwriter
from runner.diskwriter import OK, decode, encode, serve

LINE = b'{"job_id": "0123456789abcdef"}\n'


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
