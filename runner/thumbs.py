"""Thumbnails while the run goes: the report's work, done as the pictures land.

    Recorder --a picture, once durable--> Thumbnails.offer --a line--> python -m runner.thumbnail

Decoding a 1-megapixel WebP costs about 60 ms. Left to the report at the end of a run, 100,000
of them would keep the run's process busy for most of an hour after its last job, past any
deadline. Offered as they land, they are made at the API's pace by a process of low priority
beside the run, and the report finds them made. Only pictures larger than a thumbnail are
offered: one already thumbnail-sized costs the report a hard link, not a decode.

Best effort by design: the process is started at the first such picture; a picture that finds
its input full (the process is behind) or the process gone is left to the report, which makes
every thumbnail still missing. Stopped when the run ends, it leaves no partial file.

No Pillow here: the run reads a picture's size from its header, in microseconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from runner.store import THUMBS

THUMB_SIDE = 320  # pixels: a thumbnail's longest side
_LINE_MOST = 4096  # bytes: a pipe takes a line this short whole or not at all (PIPE_BUF)
_STOP_WAIT_S = 2.0  # for the picture in hand, after SIGTERM, before SIGKILL


def thumb_of(image: str, job_id: str) -> str:
    """The thumbnail of a job whose first image is `image` (both relative to the run dir):
    thumbs/<the image's folder>/<job_id>.webp."""
    folder = image.split("/")[1] if image.count("/") >= 2 else "-"
    return f"{THUMBS}/{folder}/{job_id}.webp"


def picture_side(data: bytes) -> int | None:
    """The longest side in pixels of a WebP, PNG or JPEG picture, from its header; None if the
    header says nothing readable."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        chunk = data[12:16]
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            width, height = (int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF)
        elif chunk == b"VP8L" and data[20:21] == b"\x2f":
            bits = int.from_bytes(data[21:25], "little")
            width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        elif chunk == b"VP8X":
            width, height = int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
        else:
            return None
        return max(width, height)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return max(int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))
    if data[:2] == b"\xff\xd8":
        return _jpeg_side(data)
    return None


def _jpeg_side(data: bytes) -> int | None:
    """A JPEG's size is in its start-of-frame segment, after any number of other segments."""
    at = 2
    while at + 9 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return max(int.from_bytes(data[at + 5 : at + 7], "big"), int.from_bytes(data[at + 7 : at + 9], "big"))
        if length < 2:
            return None
        at += 2 + length
    return None


class Thumbnails:
    """Hands the pictures of a run (or a night) to the thumbnail process as they land."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._gone = False  # the process could not start, died or was closed: the report makes the rest

    def offer(self, image: Path, thumb: Path, data: bytes) -> None:
        """Have `thumb` made from `image` (durable on disk, its bytes `data`), if it is worth it."""
        side = picture_side(data)
        if self._gone or side is None or side <= THUMB_SIDE:
            return
        line = json.dumps([str(image), str(thumb)]).encode() + b"\n"
        if len(line) > _LINE_MOST or not self._started():
            return
        assert self._process is not None and self._process.stdin is not None
        try:
            os.write(self._process.stdin.fileno(), line)
        except BlockingIOError:
            pass  # the process is behind: never wait for it
        except OSError:
            self._gone = True

    async def __aenter__(self) -> Thumbnails:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the process: the picture in hand is finished or dropped whole; the rest is the
        report's."""
        process, self._process, self._gone = self._process, None, True
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        process.terminate()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _STOP_WAIT_S
        while process.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if process.poll() is None:
            process.kill()
            process.wait()

    def _started(self) -> bool:
        if self._process is not None:
            return True
        # The API key stays with the run: only what finds Python and this package goes along.
        env = {name: os.environ[name] for name in ("PATH", "PYTHONPATH") if name in os.environ}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-P", "-m", "runner.thumbnail"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a Ctrl-C is the run's to handle
            )
        except OSError:
            self._gone = True
            return False
        assert self._process.stdin is not None
        os.set_blocking(self._process.stdin.fileno(), False)
        return True
