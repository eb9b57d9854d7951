"""The run directory (SPEC.md section 5): the only place flux-batch writes a run's results.

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
from runner.errors import RunDirUnusable, RunLocked

Images = Sequence[tuple[str, bytes]]  # each image's name in the run dir, and its bytes

RECORDS = diskwriter.RECORDS
SUMMARY = "summary.json"
SUMMARY_HISTORY = "summary.history.jsonl"
LOG = "run.log"
ASSETS = "assets.json"
SOURCE = "manifest.source"
MANIFEST = "manifest.yaml"
HISTORY = "manifest.history.yaml"
LOCK = ".lock"
_TEMP_MARK = diskwriter.TEMP_MARK
# A commit starts at most this long after the one before: a lone job is committed at once, and
# a stream of finishing jobs shares a commit by the dozen instead of syncing the disk hundreds of
# times a second. At concurrency 16 against the emulator that was a fifth of the run's CPU.
COMMIT_INTERVAL_S = 0.02
# Lines this writer makes start like this; matching it avoids parsing 100,000 aiRecords to resume.
_ELAPSED = re.compile(rb'"elapsed_s": ([0-9.]+)\}\s*$')
_SUCCESS_PREFIX = re.compile(rb'^\{"job_id": "([0-9a-f]{16})", "prompt_id": "[A-Za-z0-9._-]{1,64}", "status": "success"')


@dataclass
class RecordIndex:
    """What records.jsonl says: done jobs, and paid images still to fetch."""

    done: set[str] = field(default_factory=set)
    unfetched: dict[str, dict[str, Any]] = field(default_factory=dict)  # job_id -> failed line of a paid image
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)  # job_id -> (kind, message), while not done
    latencies: list[float] = field(default_factory=list)  # elapsed_s of every success line
    lines: int = 0

    def _succeeded(self, job_id: str) -> None:
        self.done.add(job_id)
        self.unfetched.pop(job_id, None)
        self.failed.pop(job_id, None)

    def add(self, raw: bytes) -> None:
        self.lines += 1
        fast = _SUCCESS_PREFIX.match(raw)
        if fast and raw.rstrip().endswith(b"}"):
            self._succeeded(fast.group(1).decode())
            elapsed = _ELAPSED.search(raw, max(0, len(raw) - 40))
            if elapsed:
                self.latencies.append(float(elapsed.group(1)))
            return
        try:
            record = json.loads(raw)
        except ValueError:
            return
        if not isinstance(record, dict) or not isinstance(record.get("job_id"), str):
            return
        job_id = record["job_id"]
        if record.get("status") == "success":
            self._succeeded(job_id)
            if isinstance(record.get("elapsed_s"), int | float):
                self.latencies.append(float(record["elapsed_s"]))
        elif job_id not in self.done:
            error = record.get("error") or {}
            kind = str(error.get("kind", "unknown"))
            self.failed[job_id] = (kind, str(error.get("message", "")))
            if _paid_for(record):
                self.unfetched[job_id] = record


def _paid_for(record: dict[str, Any]) -> bool:
    """A failed line whose image was made (or is being made): fetch or poll it, never re-pay."""
    ai_record = record.get("aiRecord")
    if not isinstance(ai_record, dict) or not ai_record.get("uuid"):
        return False
    kind = (record.get("error") or {}).get("kind")
    return kind == "download" or (kind == "timeout" and ai_record.get("status") in ("PROCESSING", "PENDING"))


def _complete_lines(run_dir: Path) -> Iterator[bytes]:
    """The lines of records.jsonl, without a torn last one (a crash mid-write is no record)."""
    try:
        records = open(run_dir / RECORDS, "rb")
    except (FileNotFoundError, NotADirectoryError):
        return  # no run dir yet (or a file where one would go): no records
    with records:
        for raw in records:
            if raw.endswith(b"\n"):
                yield raw


def read_index(run_dir: Path) -> RecordIndex:
    index = RecordIndex()
    for raw in _complete_lines(run_dir):
        index.add(raw)
    return index


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The last invocation's summary.json, if there is a readable one."""
    try:
        summary = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def read_assets(run_dir: Path) -> dict[str, str]:
    try:
        assets = json.loads((run_dir / ASSETS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in assets.items()} if isinstance(assets, dict) else {}


def manifest_of(run_dir: Path) -> tuple[Path, Path | None]:
    """The run dir's copy of its manifest, and where its local input files are to be found
    (beside the manifest it was last run from, if that is still there)."""
    try:
        source = Path((run_dir / SOURCE).read_text(encoding="utf-8").strip())
    except OSError:
        return run_dir / MANIFEST, None
    return run_dir / MANIFEST, source.parent if source.is_file() else None


def latest_records(run_dir: Path) -> dict[str, dict[str, Any]]:
    """job_id -> the line that decides its state: its success, else its last failure."""
    latest: dict[str, dict[str, Any]] = {}
    for raw in _complete_lines(run_dir):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        job_id = record.get("job_id") if isinstance(record, dict) else None
        if isinstance(job_id, str) and latest.get(job_id, {}).get("status") != "success":
            latest[job_id] = record
    return latest


def read_success_ids(run_dir: Path) -> set[str]:
    """Ids of the jobs that have a success line in `run_dir`; empty for a new run dir."""
    return read_index(run_dir).done


class RunDir:
    """An open, locked run directory. Use `RunDir.open(...)` and `close()` (or `with`)."""

    def __init__(self, path: Path, lock_fd: int, index: RecordIndex, notes: list[str]) -> None:
        self.path = path
        self.index = index
        self.notes = notes  # what recovery found, for the user to read
        self.assets: dict[str, str] = read_assets(path)  # input image token -> uploaded asset path
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, path: Path, manifest_text: str, source: Path | None = None) -> RunDir:
        try:
            path.mkdir(parents=True, exist_ok=True)
            lock_fd = _lock(path)
        except OSError as exc:
            raise RunDirUnusable(f"cannot use {path} as a run directory: {exc.strerror or exc}") from exc
        try:
            notes = _recover(path)
            index = read_index(path)
            _keep_manifest(path, manifest_text)
            if source is not None:
                # Local input images are named relative to the manifest: status needs its place.
                _write_atomically(path / SOURCE, f"{source.resolve()}\n")
        except OSError as exc:
            os.close(lock_fd)
            raise RunDirUnusable(f"cannot write to the run directory {path}: {exc.strerror or exc}") from exc
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(path, lock_fd, index, notes)

    def remember_asset(self, token: str, asset_path: str) -> None:
        """Keep an upload, so no later run of this run dir uploads the same picture again."""
        self.assets[token] = asset_path
        _write_atomically(self.path / ASSETS, json.dumps(self.assets, indent=2, sort_keys=True) + "\n")

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
        return RecordWriter(self.path)


class RecordWriter:
    """The one writer of the run dir's results: images, then their records lines.

    `append(record, images)` returns once the images are written whole (temp name, rename,
    both synced to disk) and the line after them is fsynced. Everything handed over while a
    commit is under way, or less than COMMIT_INTERVAL_S after it started, goes into the next
    one (a group commit): the cost of durability does not grow with concurrency. The disk work
    itself happens in runner/diskwriter.py, a process of its own, so the event loop never waits
    on a disk or shares its GIL with a thread that does.
    """

    def __init__(self, run_dir: Path) -> None:
        self._run_dir = run_dir
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

    async def append(self, record: dict[str, Any], images: Images = ()) -> None:
        """Write `images` ((name in the run dir, bytes) pairs) whole, then `record` as one line, durably."""
        if self._failed is not None:
            raise self._failed
        line = json.dumps(record, ensure_ascii=False).encode() + b"\n"
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
            raise diskwriter.error_from(b"") from None
        answer = await self._answers.readline()
        if answer != diskwriter.OK:
            raise diskwriter.error_from(answer)


def _frame(batch: list[tuple[bytes, Images, asyncio.Future[None]]]) -> tuple[list[tuple[str, bytes]], bytes]:
    """The images and the lines of a group commit, in the order they were handed over."""
    return [image for _, images, _ in batch for image in images], b"".join(line for line, _, _ in batch)


async def _quietly(waiting: Awaitable[bytes]) -> None:
    try:
        await waiting
    except OSError:
        pass


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


def _recover(path: Path) -> list[str]:
    """Undo what an interrupted run left half-done; say what was found."""
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
                with open(path / "records.torn", "ab") as keep:
                    keep.write(torn + b"\n")
                f.truncate(cut)
                f.flush()
                os.fsync(f.fileno())
                notes.append(
                    f"records.jsonl ended with a partial line of {len(torn)} bytes from an interrupted run; "
                    "it was set aside in records.torn and its job will run again"
                )
    strays = list((path / "images").glob(f"*/{_TEMP_MARK}*")) if (path / "images").is_dir() else []
    for stray in strays:
        stray.unlink()
    if strays:
        notes.append(f"removed {len(strays)} partly written image(s) left by an interrupted run")
    return notes


def _keep_manifest(path: Path, text: str) -> None:
    _write_atomically(path / MANIFEST, text)
    with open(path / HISTORY, "a", encoding="utf-8") as history:
        history.write(f"# ---- run started {_now()} ----\n{text}{'' if text.endswith(chr(10)) else chr(10)}")


def _write_atomically(target: Path, text: str) -> None:
    diskwriter.write_whole(str(target), text.encode())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def utc_timestamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
