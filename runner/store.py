"""The run directory: the only place flux-batch writes a run's results. `RunDir` holds its lock,
undoes what an interrupted run left, admits an endpoint, and knows where everything goes.

    RUN_DIR/.lock                 held (flock) by the live invocation and its disk writer
    RUN_DIR/manifest.yaml         the manifest as last run; manifest.history.yaml keeps every one
    RUN_DIR/records.jsonl         one line per job outcome (records.py; record_file.py reads it), fsynced
    RUN_DIR/images/<prompt>/<job_id>[-N].<ext>   written to a temp name, renamed, synced
    RUN_DIR/summary.json          the last invocation (runner/summary.py); summary.history.jsonl all
    RUN_DIR/run.log               what happened, line by line, for unattended runs
    RUN_DIR/endpoint.json         emulated or real, and the base URLs that served it
    RUN_DIR/assets.json           uploads of input images, per base URL: content hash -> asset path

Durability order for a success: the image written to a temp name and renamed, both on disk
(syncfs, or an fsync of the file and its directory), then the records line written and
fsynced. Only then does the job count as done, so a crash at any point leaves either a
complete success or a job that runs again. runner/diskwriter.py does that work, in a process
of its own.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from pathlib import Path
from typing import Any

from runner import diskwriter
from runner import endpoint as endpoint_file
from runner.endpoint import Endpoint, Provenance
from runner.errors import RunDirUnusable, RunLocked
from runner.record_file import BadLine, RecordIndex, first_success, read_index
from runner.records import RECORDS, utc_timestamp
from runner.summary import SUMMARY, SUMMARY_HISTORY, Summary
from runner.writer import RecordWriter

TORN = "records.torn"
LOG = "run.log"
ASSETS = "assets.json"
ENDPOINT = endpoint_file.FILE
SOURCE = "manifest.source"
MANIFEST = "manifest.yaml"
HISTORY = "manifest.history.yaml"
LOCK = ".lock"
THUMBS = "thumbs"  # the report's thumbnails, thumbs/<prompt_id>/<job_id>.webp
_TEMP_MARK = diskwriter.TEMP_MARK
_IMAGE_NAME = re.compile(r"^([0-9a-f]{16})(?:-[0-9]+)?\.[a-z0-9]+$")


def manifest_of(run_dir: Path) -> tuple[Path, Path | None]:
    """The run dir's copy of its manifest, and where its local input files are to be found
    (beside the manifest it was last run from, if that is still there)."""
    try:
        source = Path((run_dir / SOURCE).read_text(encoding="utf-8").strip())
    except OSError:
        return run_dir / MANIFEST, None
    return run_dir / MANIFEST, source.parent if source.is_file() else None


def images_on_disk(run_dir: Path) -> tuple[dict[str, str], list[Path]]:
    """job_id -> the folder under images/ that holds its images, read from the names alone
    (<job_id>[-N].<ext>); and the temp files an interrupted run left there. One listing of
    each folder: a resume lists 100,000 names in a tenth of a second."""
    found: dict[str, str] = {}
    strays: list[Path] = []
    try:
        folders = [entry.name for entry in os.scandir(run_dir / "images") if entry.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return found, strays
    for folder in folders:
        for name in os.listdir(run_dir / "images" / folder):
            if name.startswith(_TEMP_MARK):
                strays.append(run_dir / "images" / folder / name)
            elif name[16:17] in (".", "-"):
                found[name[:16]] = folder
    return found, strays


def image_files(run_dir: Path, folder: str, job_id: str) -> list[str]:
    """The names (relative to the run dir) of a job's images in images/<folder>, first first."""
    names = [
        f"images/{folder}/{name}"
        for name in os.listdir(run_dir / "images" / folder)
        if _IMAGE_NAME.match(name) and name[:16] == job_id and (run_dir / "images" / folder / name).is_file()
    ]
    return sorted(names, key=lambda name: (len(name), name))  # <id>.webp before <id>-1.webp


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
        images: dict[str, str],
    ) -> None:
        self.path = path
        self.index = index  # what records.jsonl says, as the run found it
        self.images = images  # job_id -> its folder under images/, as the run found them
        self.notes = notes  # what recovery found, for the user to read
        self.provenance = provenance
        self._endpoint = endpoint
        self._assets_by_endpoint = uploaded_assets(path)
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
                stored = endpoint_file.read(path) or endpoint_file.infer(first_success(path) if index.done else None)
                holds_images = bool(index.done or index.unfetched)
                provenance = endpoint_file.admit(path, stored, endpoint, holds_images)
            images, strays = images_on_disk(path)
            notes = _recover(path, index, strays)
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
        return cls(path, lock_fd, index, notes, provenance, endpoint, images)

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

    def write_summary(self, summary: Summary) -> Path:
        """summary.json holds the last invocation; summary.history.jsonl every one of them."""
        data = summary.as_json()
        _write_atomically(self.path / SUMMARY, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        with open(self.path / SUMMARY_HISTORY, "a", encoding="utf-8") as history:
            history.write(json.dumps(data, ensure_ascii=False) + "\n")
        return self.path / SUMMARY

    def records(self) -> RecordWriter:
        # The writer holds the lock too: a writer still finishing the frames of a killed run
        # keeps the next run out until it is done, so no line is committed twice.
        return RecordWriter(self.path, self._lock_fd)


def uploaded_assets(run_dir: Path) -> dict[str, dict[str, str]]:
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


def _recover(path: Path, index: RecordIndex, images_strays: list[Path]) -> list[str]:
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
    strays = images_strays + list(path.glob(f"{_TEMP_MARK}*")) + list(path.glob(f"thumbs/*/{_TEMP_MARK}*"))
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
    return utc_timestamp(precision="seconds")
