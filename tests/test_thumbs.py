"""Thumbnails made while the run goes: the header sizes that decide, the process that makes
them, and a run against the emulator whose report finds them made."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from runner.thumbs import THUMB_SIDE, picture_side, thumb_of
from tests.conftest import Cli, EmulatorProcesses, manifest_text, records, start_run, wait_for_lines, write
from tests.hostile import bomb_png


def encoded(size: tuple[int, int], form: str, **options: object) -> bytes:
    out = io.BytesIO()
    mode = "RGBA" if options.pop("alpha", False) else "RGB"
    Image.new(mode, size, (200, 80, 40)).save(out, format=form, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("form", "options"),
    [
        ("WEBP", {"quality": 80}),  # lossy: a VP8 chunk
        ("WEBP", {"lossless": True}),  # VP8L
        ("WEBP", {"quality": 80, "alpha": True, "exif": b"Exif\0\0MM"}),  # VP8X, the extended header
        ("PNG", {}),
        ("JPEG", {"quality": 90}),
        ("JPEG", {"quality": 90, "progressive": True, "exif": b"Exif\0\0MM" + b"\0" * 300}),  # segments before the frame
    ],
)
@pytest.mark.parametrize("size", [(1024, 768), (321, 1400), (17, 9)])
def test_a_pictures_longest_side_is_read_from_its_header(form: str, options: dict[str, object], size: tuple[int, int]) -> None:
    assert picture_side(encoded(size, form, **dict(options))) == max(size)


@pytest.mark.parametrize(
    "data",
    [b"", b"RIFF\0\0\0\0WEBP", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\0\x01", b"GIF89a" + b"\0" * 40, os.urandom(64)],
)
def test_a_header_that_says_nothing_readable_gives_no_size(data: bytes) -> None:
    assert picture_side(data) is None


def test_the_thumbnail_process_makes_what_it_is_handed_skips_junk_and_stops_clean(tmp_path: Path) -> None:
    pictures = []
    for n in range(3):
        pictures.append(tmp_path / "images" / "p" / f"j{n}.webp")
        pictures[-1].parent.mkdir(parents=True, exist_ok=True)
        pictures[-1].write_bytes(encoded((900, 600), "WEBP"))
    (tmp_path / "images" / "p" / "bad.webp").write_bytes(b"RIFF not a picture")
    (tmp_path / "images" / "p" / "bomb.png").write_bytes(bomb_png())  # 60,000 x 60,000: never decoded
    process = subprocess.Popen([sys.executable, "-P", "-m", "runner.thumbnail"], stdin=subprocess.PIPE)
    assert process.stdin is not None
    handed = [(tmp_path / f"images/p/{name}", tmp_path / f"thumbs/p/{name}.webp") for name in ("bad.webp", "bomb.png")]
    handed += [(p, tmp_path / "thumbs" / "p" / p.name) for p in pictures]
    lines = [b"not json\n", b'["only one"]\n'] + [json.dumps([str(a), str(b)]).encode() + b"\n" for a, b in handed]
    process.stdin.write(b"".join(lines))
    process.stdin.flush()
    made = tmp_path / "thumbs" / "p" / "j2.webp"
    deadline = time.monotonic() + 20
    while not made.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    with Image.open(made) as thumb:
        assert max(thumb.size) == THUMB_SIDE
    assert sorted(p.name for p in made.parent.iterdir()) == ["j0.webp", "j1.webp", "j2.webp"]  # no partial, no junk, no bomb
    process.send_signal(signal.SIGTERM)  # waiting for its next line: it ends at once
    assert process.wait(timeout=5) == 0
    process.stdin.close()


def thumbnail_processes() -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"runner.thumbnail" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


def test_a_run_makes_its_thumbnails_as_the_pictures_land_and_its_report_keeps_them(
    cli: Cli, emulator_process: EmulatorProcesses, tmp_path: Path
) -> None:
    emulator = emulator_process("--latency", "0.4,0.4")  # pictures of 448 x 560: bigger than a thumbnail
    source = write(tmp_path / "m.yaml", manifest_text(8, concurrency=1))
    run = start_run(source, emulator.url)
    run_dir = tmp_path / "output" / "t"
    wait_for_lines(run_dir, 1)
    first = records(run_dir)[0]
    early = run_dir / thumb_of(first["files"][0], first["job_id"])
    deadline = time.monotonic() + 15
    while not early.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert early.exists() and run.poll() is None  # made while the run goes on
    made = early.stat()

    run.send_signal(signal.SIGTERM)
    run.communicate(timeout=30)
    assert run.returncode == 143
    assert thumbnail_processes() == []  # stopped with the run
    assert not list(run_dir.rglob(".partial-*"))

    left = early.parent / f".partial-999999999-{early.name}"  # of a maker killed mid-way, long ago
    mine = early.parent / f".partial-{os.getpid()}-{early.name}"  # of a maker still at work
    left.write_bytes(b"RIFF")
    mine.write_bytes(b"RIFF")
    assert cli("report", str(run_dir)).code == 0
    assert not left.exists() and mine.exists()
    done = [line for line in records(run_dir) if line["status"] == "success"]
    thumbs = {run_dir / thumb_of(line["files"][0], line["job_id"]) for line in done}
    assert all(thumb.exists() for thumb in thumbs)  # the report made the rest
    assert (early.stat().st_ino, early.stat().st_mtime_ns) == (made.st_ino, made.st_mtime_ns)  # and kept this one


def test_a_run_without_a_report_and_one_of_small_pictures_start_no_thumbnail_process(
    emulator_process: EmulatorProcesses, tmp_path: Path
) -> None:
    emulator = emulator_process("--latency", "0.3,0.3")
    small = emulator_process("--latency", "0.3,0.3", "--max-side", str(THUMB_SIDE))
    for url, name, flags in ((emulator.url, "a", ("--no-report",)), (small.url, "b", ())):
        run = start_run(write(tmp_path / f"{name}.yaml", manifest_text(3, name=name, concurrency=1)), url, *flags)
        wait_for_lines(tmp_path / "output" / name, 1)
        time.sleep(0.3)
        assert thumbnail_processes() == []
        run.communicate(timeout=30)
        assert run.returncode == 0


def test_a_night_makes_the_thumbnails_of_every_manifest_as_they_land(emulator_process: EmulatorProcesses, tmp_path: Path) -> None:
    emulator = emulator_process("--latency", "0.3,0.3")
    sources = [write(tmp_path / f"{name}.yaml", manifest_text(6, name=name)) for name in ("a", "b")]
    flags = ["--base-url", emulator.url, "--no-progress", "--concurrency", "1"]
    night = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", *map(str, sources), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    made: set[str] = set()
    deadline = time.monotonic() + 20
    while made != {"a", "b"} and night.poll() is None and time.monotonic() < deadline:
        made = {name for name in ("a", "b") if list((tmp_path / "output" / name / "thumbs").glob("*/*.webp"))}
        time.sleep(0.02)
    assert made == {"a", "b"} and night.poll() is None  # both manifests', while the night goes on
    assert len(thumbnail_processes()) == 1  # one process for the night
    night.communicate(timeout=60)
    assert night.returncode == 0
    assert thumbnail_processes() == []
