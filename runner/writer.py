"""The run's side of the disk writer: RecordWriter hands images and records lines to the
writer process (runner/diskwriter.py) in group commits, and returns once they are durable.

    Pool --append(record, images)--> RecordWriter --one frame per commit--> diskwriter.py
         <--------- once on disk ---------------- <--------- ok -----------

Everything handed over while a commit is under way, or less than COMMIT_INTERVAL_S after it
started, goes into the next one: the cost of durability does not grow with concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path
from types import TracebackType

from runner import diskwriter
from runner.records import Record

Images = Sequence[tuple[str, bytes]]  # each image's name in the run dir, and its bytes

# A commit starts at most this long after the one before: a lone job is committed at once, and
# a stream of finishing jobs shares a commit by the dozen instead of syncing the disk hundreds of
# times a second. At concurrency 16 against the emulator that was a fifth of the run's CPU.
COMMIT_INTERVAL_S = 0.02


class WriterGone(OSError):
    """The disk writer process died: not a disk error, though the run cannot write either."""


class RecordWriter:
    """The one writer of the run dir's results: images, then their records lines.

    `append(record, images)` returns once the images are written whole (temp name, rename,
    both synced to disk) and the line after them is fsynced. Everything handed over while a
    commit is under way, or less than COMMIT_INTERVAL_S after it started, goes into the next
    one (a group commit): the cost of durability does not grow with concurrency. The disk work
    itself happens in runner/diskwriter.py, a process of its own, so the event loop never waits
    on a disk or shares its GIL with a thread that does.
    """

    def __init__(self, run_dir: Path, lock_fd: int = -1) -> None:
        self._run_dir = run_dir
        self._lock_fd = lock_fd
        self._pending: list[tuple[bytes, Images, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._hurry = asyncio.Event()  # set: commit at once, nothing more is coming soon
        self._closing = False
        self._failed: OSError | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._frames: asyncio.StreamWriter | None = None
        self._answers: asyncio.StreamReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_commit = float("-inf")  # loop time the last commit started
        self.commits = 0  # group commits made

    async def __aenter__(self) -> RecordWriter:
        loop = asyncio.get_running_loop()
        self._process = subprocess.Popen(
            [sys.executable, "-P", diskwriter.__file__, str(self._run_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={"PATH": os.environ.get("PATH", "")},  # the API key stays with the run
            start_new_session=True,  # a Ctrl-C at the terminal is the run's to handle, not the writer's
            pass_fds=(self._lock_fd,) if self._lock_fd >= 0 else (),
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        answers = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(answers), self._process.stdout)
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), self._process.stdin
        )
        self._answers = answers
        self._frames = asyncio.StreamWriter(transport, protocol, None, loop)
        self._task = asyncio.create_task(self._run(), name="records-writer")
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._closing = True
        self.hurry()
        self._wakeup.set()
        assert self._task is not None and self._frames is not None and self._answers is not None
        try:
            await self._task
        finally:
            # Cancelled mid-run (a second Ctrl-C): what was already handed over is still written.
            if self._pending and self._failed is None:
                self._frames.write(diskwriter.encode(*_frame(self._pending)))
            self._frames.close()
            # The writer exits once it has committed all it was sent; its answers then end.
            await _quietly(self._answers.read())
            assert self._process is not None
            self._process.wait()

    async def append(self, record: Record | None, images: Images = ()) -> None:
        """Write `images` ((name in the run dir, bytes) pairs) whole, then `record` as one line
        (if any), durably."""
        if self._failed is not None:
            raise self._failed
        line = record.encode() if record is not None else b""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((line, images, done))
        self._wakeup.set()
        # No shield needed: a caller cancelled while waiting leaves its line in the commit.
        await done

    def hurry(self) -> None:
        """Commit from now on without waiting for company: the run sends nothing new, and its
        end waits on the last commits."""
        self._hurry.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            wait = self._last_commit + COMMIT_INTERVAL_S - loop.time()
            if wait > 0 and not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._hurry.wait()  # what finishes meanwhile joins this commit
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            if batch:
                self._last_commit = loop.time()
                self.commits += 1
                try:
                    await self._commit(batch)
                except OSError as exc:
                    # A full disk, say: every line waiting now or later fails with the cause.
                    self._failed = exc
                    for _, _, done in [*batch, *self._pending]:
                        if not done.done():
                            done.set_exception(exc)
                    self._pending = []
                    return
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)
            if self._closing and not self._pending:
                return

    async def _commit(self, batch: list[tuple[bytes, Images, asyncio.Future[None]]]) -> None:
        assert self._frames is not None and self._answers is not None
        try:
            self._frames.write(diskwriter.encode(*_frame(batch)))
            await self._frames.drain()
        except ConnectionError:
            raise self._gone() from None
        answer = await self._answers.readline()
        if not answer:
            raise self._gone()
        if answer != diskwriter.OK:
            raise diskwriter.error_from(answer)

    def _gone(self) -> WriterGone:
        assert self._process is not None
        try:
            code = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return WriterGone(
            5, f"the run dir's writer process ended unexpectedly ({how}); nothing it had not confirmed counts as done"
        )


def _frame(batch: list[tuple[bytes, Images, asyncio.Future[None]]]) -> tuple[list[tuple[str, bytes]], bytes]:
    """The images and the lines of a group commit, in the order they were handed over."""
    return [image for _, images, _ in batch for image in images], b"".join(line for line, _, _ in batch)


async def _quietly(waiting: Awaitable[bytes]) -> None:
    try:
        await waiting
    except OSError:
        pass
