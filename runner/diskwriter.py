"""The run dir's disk writer: a small process of its own that makes images and lines durable.

    flux-batch run  --stdin: one frame per group commit-->  python -P diskwriter.py RUN_DIR
                    <--stdout: one answer line per frame---

A frame carries images and records lines. For each frame the writer writes every image to a
temp name and renames it into place, makes them durable (one syncfs of the file system, or an
fsync of each file and directory where syncfs is missing or has once been slow, as on a disk
busy with other programs' writes), then appends the lines to records.jsonl and fsyncs that,
and only then answers `ok`. On an OSError it answers with the error as JSON and exits: the
run stops on the first disk error.

Why a process and not threads: dozens of fsyncs at once from a thread pool made those threads
trade the GIL with the event loop on every system call, and the loop then waited to take it
back after each of its own socket calls. On a two-core machine that cost the runner about a
tenth of its throughput. Here the loop does no file I/O and shares its GIL with no one, and
this process may wait on a slow disk as long as it needs.

The writer ignores SIGINT and SIGTERM and stops when its input ends, after the last frame:
what a run has handed over is written even when the run is stopped, or killed, meanwhile.

Standard library only, run by file path: the child starts in milliseconds and cannot import
anything else by accident.
"""

from __future__ import annotations

# Few and light imports: this process starts beside every run, and json, pathlib and thread
# pools would triple its start-up. Heavier ones are imported where they are needed.
import ctypes
import os
import signal
import struct
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (4 ms)

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import ThreadPoolExecutor
    from typing import BinaryIO

FRAME = struct.Struct("<II")  # number of images, bytes of lines
IMAGE = struct.Struct("<HI")  # bytes of the image's name (UTF-8, relative to the run dir), bytes of data
OK = b"ok\n"
RECORDS = "records.jsonl"
TEMP_MARK = ".partial-"  # a file that is not whole yet; recovery removes any left behind
PARALLEL_FSYNCS = 8  # an fsync mostly waits for the disk: several at once finish sooner
# syncfs writes back every program's pending data on the file system. Slower than this, the
# disk is busy with someone else's writes, and an fsync of each of our files waits only for ours.
SLOW_SYNCFS_S = 1.0

Image = tuple[str, bytes]


def encode(images: list[Image], lines: bytes) -> bytes:
    """One frame: what the run hands over for one group commit."""
    parts = [FRAME.pack(len(images), len(lines))]
    for name, data in images:
        encoded = name.encode()
        parts += [IMAGE.pack(len(encoded), len(data)), encoded, data]
    parts.append(lines)
    return b"".join(parts)


def decode(stream: BinaryIO) -> tuple[list[Image], bytes] | None:
    """The next frame from `stream`, or None at its end."""
    header = stream.read(FRAME.size)
    if len(header) < FRAME.size:
        return None
    count, lines_size = FRAME.unpack(header)
    images = []
    for _ in range(count):
        name_size, data_size = IMAGE.unpack(_exactly(stream, IMAGE.size))
        images.append((_exactly(stream, name_size).decode(), _exactly(stream, data_size)))
    return images, _exactly(stream, lines_size)


def _exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the run ended in the middle of a frame")
    return data


def error_answer(exc: OSError) -> bytes:
    import json

    return json.dumps({"errno": exc.errno, "strerror": exc.strerror or str(exc), "filename": exc.filename}).encode() + b"\n"


def error_from(answer: bytes) -> OSError:
    """The OSError an answer line reports; an empty answer means the writer is gone."""
    import json

    if not answer:
        return OSError(5, "the run dir's writer process ended unexpectedly")
    said = json.loads(answer)
    return OSError(said.get("errno"), said.get("strerror"), said.get("filename"))


class Committer:
    """Commits frames to a run dir: images whole and on disk first, then their lines."""

    def __init__(self, run_dir: str, use_syncfs: bool = True) -> None:
        self.run_dir = run_dir
        # Unbuffered: a line is either all in the file or, after a failed write, cut away again.
        self._records = os.open(os.path.join(run_dir, RECORDS), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._records_size = os.fstat(self._records).st_size
        self._made: set[str] = set()  # directories known to exist
        self._syncfs = _syncfs_of(run_dir) if use_syncfs else None
        self._pool: ThreadPoolExecutor | None = None

    def syncs_file_system(self) -> bool:
        """True while a commit is made durable by one syncfs, False once by an fsync per file."""
        return self._syncfs is not None

    def commit(self, images: list[Image], lines: bytes) -> None:
        targets = [(os.path.join(self.run_dir, name), data) for name, data in images]
        touched = {os.path.dirname(target) for target, _ in targets}
        for directory in touched - self._made:
            os.makedirs(directory, exist_ok=True)
            self._made.add(directory)
        if self._syncfs is not None:
            # One syncfs makes every image and rename of the frame durable at once, where an
            # fsync per file and directory cost several times the CPU and wall time.
            for target, data in targets:
                write_whole(target, data, durable=False)
            if targets:
                started = time.monotonic()
                self._syncfs()
                if time.monotonic() - started > SLOW_SYNCFS_S:
                    self._syncfs.close()
                    self._syncfs = None  # from the next commit on, an fsync per file and directory
        else:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(max_workers=PARALLEL_FSYNCS, thread_name_prefix="fsync")
            list(self._pool.map(lambda image: write_whole(*image), targets))
            for directory in touched:
                fsync_directory(directory)  # the renames are durable before a line names them
        if lines:
            try:
                remaining = memoryview(lines)
                while remaining:
                    remaining = remaining[os.write(self._records, remaining) :]
                os.fsync(self._records)
            except OSError:
                # A full disk took part of a line: cut the file back to its last whole commit,
                # so no torn line sits in the middle of the records when the next one comes.
                os.ftruncate(self._records, self._records_size)
                raise
            self._records_size += len(lines)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        if self._syncfs is not None:
            self._syncfs.close()
        os.close(self._records)


class _SyncFs:
    """Linux's syncfs(2) of the file system holding a directory: all its dirty data, one call."""

    def __init__(self, call: Callable[[int], int], directory: str) -> None:
        self._call = call
        self._fd = os.open(directory, os.O_RDONLY)

    def __call__(self) -> None:
        if self._call(self._fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    def close(self) -> None:
        os.close(self._fd)


def _syncfs_of(directory: str) -> _SyncFs | None:
    """syncfs(2) where the C library has it (Linux); elsewhere None, and files are fsynced one by one."""
    try:
        call = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int]
    return _SyncFs(call, directory)


def write_whole(target: str, data: bytes, durable: bool = True) -> None:
    """`data` to a temp name beside `target`, then renamed onto it. Plain os calls: Python's
    open() adds an fstat, an isatty ioctl and a seek to every file."""
    directory, name = os.path.split(target)
    temp = os.path.join(directory, TEMP_MARK + name)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        try:
            remaining = memoryview(data)
            while remaining:
                remaining = remaining[os.write(fd, remaining) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException:
        # A full disk, say: no half-written file is left behind for anyone to mistake.
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def serve(run_dir: str, frames: BinaryIO, answers: BinaryIO) -> int:
    """Commit frames until the input ends; 0 when all went to disk, 1 after a disk error."""
    committer = Committer(run_dir)
    try:
        while (frame := decode(frames)) is not None:
            try:
                committer.commit(*frame)
            except OSError as exc:
                _answer(answers, error_answer(exc))
                return 1
            _answer(answers, OK)
    except EOFError:
        return 1  # the run died mid-frame: nothing of that frame was written
    finally:
        committer.close()
    return 0


def _never_preempt_the_run() -> None:
    """Run as SCHED_BATCH: woken by a frame, this process waits for its turn instead of taking
    the CPU from the run's event loop there and then. With the default policy each frame stalled
    the loop inside its write to the pipe, for 150 to 200 ms in all over 2,000 jobs on two cores;
    as SCHED_BATCH, 10 ms. Unlike SCHED_IDLE it keeps its fair share of a busy machine."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        pass  # not Linux: the default policy, and the run is only a little slower


def _answer(answers: BinaryIO, line: bytes) -> None:
    try:
        answers.write(line)
        answers.flush()
    except BrokenPipeError:
        pass  # the run is gone; the frame is on disk all the same


def main() -> int:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)  # the run decides when writing ends: by closing our input
    _never_preempt_the_run()
    return serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    # When serve returns, every frame is on disk and answered, and the files are closed: the
    # interpreter's teardown would only make the run wait longer for this process to end.
    os._exit(main())
