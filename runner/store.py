"""The run directory: the only place flux-batch writes a run's results.

    RUN_DIR/.lock                 held (flock) by the live invocation; the kernel drops it on death
    RUN_DIR/manifest.yaml         the manifest as last run; manifest.history.yaml keeps every one
    RUN_DIR/records.jsonl         one line per job outcome, appended by one writer, fsynced
    RUN_DIR/images/<prompt>/<job_id>[-N].<ext>   written to a temp name, renamed, synced
    RUN_DIR/summary.json          the last invocation's counts and timings; summary.history.jsonl all
    RUN_DIR/run.log               what happened, line by line, for unattended runs
    RUN_DIR/assets.json           input images uploaded for image_prompt: content hash -> asset path

Durability order for a success: the image written to a temp name and renamed, both on disk
(syncfs, or an fsync of the file and its directory), then the records line written and
fsynced. Only then does the job count as done, so a crash at any point leaves either a
complete success or a job that runs again. runner/diskwriter.py does that work, in a process
of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from runner import diskwriter
from runner import endpoint as endpoint_file
from runner.endpoint import Endpoint, Provenance
from runner.errors import RunDirUnusable, RunLocked

Images = Sequence[tuple[str, bytes]]  # each image's name in the run dir, and its bytes

RECORDS = diskwriter.RECORDS
TORN = "records.torn"
SUMMARY = "summary.json"
SUMMARY_HISTORY = "summary.history.jsonl"
LOG = "run.log"
ASSETS = "assets.json"
ENDPOINT = "endpoint.json"
SOURCE = "manifest.source"
MANIFEST = "manifest.yaml"
HISTORY = "manifest.history.yaml"
LOCK = ".lock"
_TEMP_MARK = diskwriter.TEMP_MARK
# A commit starts at most this long after the one before: a lone job is committed at once, and
# a stream of finishing jobs shares a commit by the dozen instead of syncing the disk hundreds of
# times a second. At concurrency 16 against the emulator that was a fifth of the run's CPU.
COMMIT_INTERVAL_S = 0.02
# Lines this writer makes start and end like this; matching both ends of a line avoids parsing
# 100,000 aiRecords to resume, and a line cut short or overwritten misses one end or the other.
_ELAPSED = re.compile(rb'"elapsed_s": ([0-9.]+)\}\s*$')
_SUCCESS_PREFIX = re.compile(rb'^\{"job_id": "([0-9a-f]{16})", "prompt_id": "[A-Za-z0-9._-]{1,64}", "status": "success"')
_JOB_ID = re.compile(r"^[0-9a-f]{16}$")
_IMAGE_NAME = re.compile(r"^([0-9a-f]{16})(?:-[0-9]+)?\.[a-z0-9]+$")
_NULS = re.compile(rb"\x00+")


@dataclass(frozen=True, slots=True)
class Failure:
    """The latest failure of a job that has not succeeded."""

    kind: str
    message: str
    retryable: bool


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line of records.jsonl that is not a record (cut short, overwritten with NULs, ...),
    and the records that could still be read out of it."""

    number: int
    raw: bytes
    salvaged: tuple[bytes, ...]

    def describe(self) -> str:
        what = "NUL bytes" if b"\0" in self.raw else "not a whole record"
        return f"line {self.number} ({len(self.raw)} bytes, {what})"


@dataclass
class RecordIndex:
    """What records.jsonl says: done jobs, paid images still to fetch, failures of two kinds."""

    done: set[str] = field(default_factory=set)
    unfetched: dict[str, dict[str, Any]] = field(default_factory=dict)  # job_id -> failed line of a paid image
    failed: dict[str, Failure] = field(default_factory=dict)  # job_id -> its latest failure, while not done
    latencies: list[float] = field(default_factory=list)  # elapsed_s of every success line
    bad: list[BadLine] = field(default_factory=list)  # lines that are not records, in file order
    lines: int = 0

    @property
    def refused(self) -> set[str]:
        """Jobs that failed for good (a refusal, a validation error): re-sent only on request."""
        return {job_id for job_id, failure in self.failed.items() if not failure.retryable}

    def _succeeded(self, job_id: str) -> None:
        self.done.add(job_id)
        self.unfetched.pop(job_id, None)
        self.failed.pop(job_id, None)

    def add(self, raw: bytes, number: int = 0) -> None:
        self.lines += 1
        fast = _SUCCESS_PREFIX.match(raw)
        if fast and b"\0" not in raw:
            elapsed = _ELAPSED.search(raw, max(0, len(raw) - 40))
            if elapsed:
                self._succeeded(fast.group(1).decode())
                self._latency(float(elapsed.group(1)))
                return
        record = parse_line(raw)
        if record is not None:
            self._add(record)
            return
        # Not a record. A block of NULs (a crash of the file system) may have swallowed line
        # ends: whatever whole records sit between the NULs are still read.
        salvaged = tuple(piece for piece in _NULS.split(raw) if parse_line(piece) is not None) if b"\0" in raw else ()
        for piece in salvaged:
            self._add(parse_line(piece) or {})
        self.bad.append(BadLine(number, raw, salvaged))

    def _add(self, record: dict[str, Any]) -> None:
        job_id = record["job_id"]
        if record["status"] == "success":
            self._succeeded(job_id)
            if isinstance(record.get("elapsed_s"), int | float):
                self._latency(float(record["elapsed_s"]))
        elif job_id not in self.done:
            error = record.get("error") or {}
            retryable = error.get("retryable") is not False
            self.failed[job_id] = Failure(str(error.get("kind", "unknown")), str(error.get("message", "")), retryable)
            if _paid_for(record):
                self.unfetched[job_id] = record
            else:
                self.unfetched.pop(job_id, None)

    def _latency(self, seconds: float) -> None:
        if seconds > 0:  # a line recovered from an image on disk has no latency to tell
            self.latencies.append(seconds)


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """A records line as a dict, or None if it is not a whole record."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("job_id"), str) or not _JOB_ID.match(record["job_id"]):
        return None
    if record.get("status") == "success":
        return record if isinstance(record.get("files"), list) else None
    if record.get("status") == "failed":
        return record if isinstance(record.get("error"), dict) else None
    return None


def _paid_for(record: dict[str, Any]) -> bool:
    """A failed line whose image was made (or is being made): fetch or poll it, never re-pay."""
    ai_record = record.get("aiRecord")
    if not isinstance(ai_record, dict) or not ai_record.get("uuid"):
        return False
    error = record.get("error") or {}
    kind = error.get("kind")
    if kind == "download":
        return error.get("retryable") is not False
    return kind == "timeout" and ai_record.get("status") in ("PROCESSING", "PENDING")


def _numbered_lines(run_dir: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of records.jsonl, without a torn last line (a crash mid-write is no record)."""
    try:
        records = open(run_dir / RECORDS, "rb")
    except (FileNotFoundError, NotADirectoryError):
        return  # no run dir yet (or a file where one would go): no records
    with records:
        for number, raw in enumerate(records, start=1):
            if raw.endswith(b"\n"):
                yield number, raw


def read_index(run_dir: Path) -> RecordIndex:
    index = RecordIndex()
    for number, raw in _numbered_lines(run_dir):
        index.add(raw, number)
    return index


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The last invocation's summary.json, if there is a readable one."""
    try:
        summary = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def manifest_of(run_dir: Path) -> tuple[Path, Path | None]:
    """The run dir's copy of its manifest, and where its local input files are to be found
    (beside the manifest it was last run from, if that is still there)."""
    try:
        source = Path((run_dir / SOURCE).read_text(encoding="utf-8").strip())
    except OSError:
        return run_dir / MANIFEST, None
    return run_dir / MANIFEST, source.parent if source.is_file() else None


def latest_records(run_dir: Path) -> dict[str, dict[str, Any]]:
    """job_id -> the line that decides its state: its success, else its last failure. Lines
    that are not records are skipped exactly as the index skips them."""
    latest: dict[str, dict[str, Any]] = {}
    for _, raw in _numbered_lines(run_dir):
        pieces = _NULS.split(raw) if b"\0" in raw else [raw]
        for piece in pieces:
            record = parse_line(piece)
            if record is not None and latest.get(record["job_id"], {}).get("status") != "success":
                latest[record["job_id"]] = record
    return latest


def records_of(run_dir: Path, job_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The success lines of `job_ids`, read in full (the index keeps only their ids)."""
    found: dict[str, dict[str, Any]] = {}
    if not job_ids:
        return found
    for _, raw in _numbered_lines(run_dir):
        fast = _SUCCESS_PREFIX.match(raw)
        if fast and fast.group(1).decode() in job_ids:
            record = parse_line(raw)
            if record is not None:
                found[record["job_id"]] = record
    return found


def images_on_disk(run_dir: Path) -> dict[str, str]:
    """job_id -> the folder under images/ that holds its images. Read from the names alone
    (<job_id>[-N].<ext>): a resume lists 100,000 of them in a tenth of a second."""
    found: dict[str, str] = {}
    try:
        folders = [entry.name for entry in os.scandir(run_dir / "images") if entry.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return found
    for folder in folders:
        for name in os.listdir(run_dir / "images" / folder):
            if name[16:17] in (".", "-") and not name.startswith(_TEMP_MARK):
                found[name[:16]] = folder
    return found


def image_files(run_dir: Path, folder: str, job_id: str) -> list[str]:
    """The names (relative to the run dir) of a job's images in images/<folder>, first first."""
    names = [
        f"images/{folder}/{name}"
        for name in os.listdir(run_dir / "images" / folder)
        if _IMAGE_NAME.match(name) and name[:16] == job_id and (run_dir / "images" / folder / name).is_file()
    ]
    return sorted(names, key=lambda name: (len(name), name))  # <id>.webp before <id>-1.webp


def read_success_ids(run_dir: Path) -> set[str]:
    """Ids of the jobs that have a success line in `run_dir`; empty for a new run dir."""
    return read_index(run_dir).done


class RunDir:
    """An open, locked run directory. Use `RunDir.open(...)` and `close()` (or `with`)."""

    def __init__(
        self,
        path: Path,
        lock_fd: int,
        index: RecordIndex,
        notes: list[str],
        provenance: Provenance | None,
        endpoint: Endpoint | None,
    ) -> None:
        self.path = path
        self.index = index
        self.notes = notes  # what recovery found, for the user to read
        self.provenance = provenance
        self._endpoint = endpoint
        self._assets_by_endpoint = _read_assets(path)
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, path: Path, manifest_text: str, source: Path | None = None, endpoint: Endpoint | None = None) -> RunDir:
        """Lock and recover `path` for a run against `endpoint`; EndpointMismatch, before anything
        is written, if the run dir holds images of the other kind."""
        try:
            path.mkdir(parents=True, exist_ok=True)
            lock_fd = _lock(path)
        except OSError as exc:
            raise RunDirUnusable(f"cannot use {path} as a run directory: {exc.strerror or exc}") from exc
        try:
            index = read_index(path)
            provenance = None
            if endpoint is not None:
                stored = endpoint_file.read(path) or endpoint_file.infer(_first_success(path, index))
                holds_images = bool(index.done or index.unfetched)
                provenance = endpoint_file.admit(path, stored, endpoint, holds_images)
            notes = _recover(path, index)
            _keep_manifest(path, manifest_text)
            if provenance is not None and provenance != stored:
                _write_json(path / ENDPOINT, provenance.as_json())
            if source is not None:
                # Local input images are named relative to the manifest: status needs its place.
                _write_atomically(path / SOURCE, f"{source.resolve()}\n")
        except OSError as exc:
            os.close(lock_fd)
            raise RunDirUnusable(f"cannot write to the run directory {path}: {exc.strerror or exc}") from exc
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(path, lock_fd, index, notes, provenance, endpoint)

    def answered_by(self, emulated: bool) -> bool:
        """An answer came from an emulator (or not). True if the run dir may take its images:
        a run dir that holds none takes the kind of its first answers; one that holds images
        of the other kind may not (the run must stop)."""
        if self.provenance is None:
            return True
        if self.provenance.emulated != emulated:
            if self.index.done or self.index.unfetched:
                return False
            self.provenance = Provenance(emulated)
        taken = self.provenance.with_base_url(self._endpoint.base_url if self._endpoint else None)
        if taken is not self.provenance or not (self.path / ENDPOINT).exists():
            self.provenance = taken
            _write_json(self.path / ENDPOINT, self.provenance.as_json())
        return True

    # -- uploads of input images, valid for the endpoint that took them --------------------

    def _assets_here(self) -> dict[str, str]:
        key = self._endpoint.base_url if self._endpoint is not None and self._endpoint.base_url else ""
        return self._assets_by_endpoint.setdefault(key, {})

    def asset(self, token: str) -> str | None:
        """The asset path the current endpoint gave for the picture `token`, if it took it."""
        return self._assets_here().get(token)

    def remember_asset(self, token: str, asset_path: str) -> None:
        """Keep an upload, so no later run against this endpoint uploads the same picture again.
        The built-in emulator forgets its uploads when it stops: those are not kept."""
        self._assets_here()[token] = asset_path
        self._save_assets()

    def forget_asset(self, token: str) -> None:
        """The endpoint says it cannot load the picture it was given: upload it again."""
        if self._assets_here().pop(token, None) is not None:
            self._save_assets()

    def _save_assets(self) -> None:
        kept = {url: assets for url, assets in self._assets_by_endpoint.items() if url and assets}
        if kept or (self.path / ASSETS).exists():
            _write_json(self.path / ASSETS, {"version": 2, "endpoints": kept})

    # -------------------------------------------------------------------------------------

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def image_name(self, prompt_id: str, job_id: str, index: int, extension: str) -> str:
        suffix = f"-{index}" if index else ""
        return f"images/{prompt_id}/{job_id}{suffix}.{extension}"

    def write_summary(self, summary: dict[str, Any]) -> Path:
        """summary.json holds the last invocation; summary.history.jsonl every one of them."""
        _write_atomically(self.path / SUMMARY, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        with open(self.path / SUMMARY_HISTORY, "a", encoding="utf-8") as history:
            history.write(json.dumps(summary, ensure_ascii=False) + "\n")
        return self.path / SUMMARY

    def records(self) -> RecordWriter:
        # The writer holds the lock too: a writer still finishing the frames of a killed run
        # keeps the next run out until it is done, so no line is committed twice.
        return RecordWriter(self.path, self._lock_fd)


def _read_assets(run_dir: Path) -> dict[str, dict[str, str]]:
    """base URL -> {picture token -> asset path}. The older file, one table for every endpoint,
    says nothing of where its uploads went: its pictures are uploaded again."""
    try:
        data = json.loads((run_dir / ASSETS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    endpoints = data.get("endpoints") if isinstance(data, dict) and data.get("version") == 2 else None
    if not isinstance(endpoints, dict):
        return {}
    return {
        str(url): {str(k): str(v) for k, v in assets.items()} for url, assets in endpoints.items() if isinstance(assets, dict)
    }


def _first_success(run_dir: Path, index: RecordIndex) -> dict[str, Any] | None:
    if not index.done:
        return None
    for _, raw in _numbered_lines(run_dir):
        record = parse_line(raw)
        if record is not None and record["status"] == "success":
            return record
    return None


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

    async def append(self, record: dict[str, Any] | None, images: Images = ()) -> None:
        """Write `images` ((name in the run dir, bytes) pairs) whole, then `record` as one line
        (if any), durably."""
        if self._failed is not None:
            raise self._failed
        line = json.dumps(record, ensure_ascii=False).encode() + b"\n" if record is not None else b""
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


def live_holder(run_dir: Path) -> str | None:
    """Who is running in `run_dir` now ("flux-batch pid 123, started ..."), or None. Read
    from the kernel's table of locks, so looking never takes the lock a starting run needs."""
    try:
        lock = os.stat(run_dir / LOCK)
        holder = (run_dir / LOCK).read_text(encoding="utf-8", errors="replace").strip() or "another process"
    except OSError:
        return None
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            locks = table.read()
    except OSError:
        return _holder_alive(holder)
    inode = f"{os.major(lock.st_dev):02x}:{os.minor(lock.st_dev):02x}:{lock.st_ino}"
    return holder if any(line.split()[5:6] == [inode] for line in locks.splitlines() if " FLOCK " in line) else None


def _holder_alive(holder: str) -> str | None:
    match = re.search(r"pid (\d+)", holder)
    if not match:
        return None
    try:
        os.kill(int(match.group(1)), 0)
    except (ProcessLookupError, PermissionError):
        return None
    return holder


def _lock(path: Path) -> int:
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise RunLocked(f"{path} is being run by {holder}; wait for it to finish, or stop it (a stopped run resumes)") from None
    # A lock left by a dead process needs no clean-up: the kernel released its flock.
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"flux-batch pid {os.getpid()}, started {_now()}\n".encode(), 0)
    return fd


def _recover(path: Path, index: RecordIndex) -> list[str]:
    """Undo what an interrupted run or a damaged disk left; say what was found."""
    notes = []
    records = path / RECORDS
    if records.exists() and records.stat().st_size:
        with open(records, "rb+") as f:
            data_end = f.seek(0, os.SEEK_END)
            f.seek(max(0, data_end - 1_048_576))
            tail = f.read()
            if not tail.endswith(b"\n"):
                cut = data_end - len(tail) + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
                f.seek(cut)
                torn = f.read()
                with open(path / TORN, "ab") as keep:
                    keep.write(torn + b"\n")
                f.truncate(cut)
                f.flush()
                os.fsync(f.fileno())
                notes.append(
                    f"records.jsonl ended with a partial line of {len(torn)} bytes from an interrupted run; "
                    f"it was set aside in {TORN} and its job will run again unless its image is on disk"
                )
    if index.bad:
        _set_aside(path, index.bad)
        shown = ", ".join(bad.describe() for bad in index.bad[:5]) + (" ..." if len(index.bad) > 5 else "")
        notes.append(
            f"records.jsonl had {len(index.bad)} damaged line(s): {shown}; set aside in {TORN}. "
            "A job whose image is on disk is kept as recovered, not paid for again"
        )
    strays = list((path / "images").glob(f"*/{_TEMP_MARK}*")) if (path / "images").is_dir() else []
    strays += list(path.glob(f"{_TEMP_MARK}*"))
    for stray in strays:
        stray.unlink()
    if strays:
        notes.append(f"removed {len(strays)} partly written file(s) left by an interrupted run")
    return notes


def _set_aside(path: Path, bad: list[BadLine]) -> None:
    """Rewrite records.jsonl without its damaged lines (keeping what could be read out of them),
    and keep the damaged bytes in records.torn."""
    by_number = {line.number: line for line in bad}
    with open(path / TORN, "ab") as keep:
        for line in bad:
            keep.write(f"# line {line.number} of records.jsonl, set aside {_now()}\n".encode())
            keep.write(line.raw.rstrip(b"\n").replace(b"\0", b"") + b"\n")
    temp = path / f"{_TEMP_MARK}{RECORDS}"
    with open(path / RECORDS, "rb") as source, open(temp, "wb") as target:
        for number, raw in enumerate(source, start=1):
            if number in by_number:
                target.writelines(piece.rstrip(b"\n") + b"\n" for piece in by_number[number].salvaged)
            else:
                target.write(raw)
        target.flush()
        os.fsync(target.fileno())
    os.replace(temp, path / RECORDS)
    diskwriter.fsync_directory(str(path))


def _keep_manifest(path: Path, text: str) -> None:
    _write_atomically(path / MANIFEST, text)
    with open(path / HISTORY, "a", encoding="utf-8") as history:
        history.write(f"# ---- run started {_now()} ----\n{text}{'' if text.endswith(chr(10)) else chr(10)}")


def _write_atomically(target: Path, text: str) -> None:
    diskwriter.write_whole(str(target), text.encode())


def _write_json(target: Path, data: Any) -> None:
    _write_atomically(target, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def utc_timestamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
