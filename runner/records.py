"""One line of records.jsonl, and what a whole file of them says: the only module that spells
a records line's fields.

    Record        a job's outcome                 Record.success/failure -> encode() -> bytes
                                                  bytes -> Record.decode() -> Record | None
    RecordIndex   what records.jsonl says, read at the start of every run: done jobs, paid
                  images still to fetch, failures of two kinds, damaged lines

A resume reads 100,000 lines before it may send anything, so the index does not decode the
success lines this module wrote: it matches the layout `Record.encode` guarantees (job_id,
prompt_id and status first, elapsed_s last), which is why the two live side by side.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.plan import Job

RECORDS = "records.jsonl"
SUCCESS, FAILED = "success", "failed"

# The layout Record.encode writes: the fast path matches both ends of a line, so a line cut
# short or overwritten misses one end or the other and is decoded (and found damaged) instead.
_ELAPSED = re.compile(rb'"elapsed_s": ([0-9.]+)\}\s*$')
_CREDITS = re.compile(rb'"credits": ([0-9.eE+-]+), "started_at"')
_SUCCESS_PREFIX = re.compile(rb'^\{"job_id": "([0-9a-f]{16})", "prompt_id": "[A-Za-z0-9._-]{1,64}", "status": "success"')
_SUCCESS_HEAD = re.compile(
    rb'^\{"job_id": "([0-9a-f]{16})", "prompt_id": "[A-Za-z0-9._-]{1,64}", "status": "success", "attempts": ([0-9]{1,9}), '
)
_JOB_ID = re.compile(r"^[0-9a-f]{16}$")
_NULS = re.compile(rb"\x00+")


def utc_timestamp(moment: float | None = None, precision: str = "milliseconds") -> str:
    """`moment` (default now) as the run dir writes times: ISO 8601 in UTC, with a Z."""
    when = datetime.fromtimestamp(time.time() if moment is None else moment, UTC)
    return when.isoformat(timespec=precision).replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """Why a job failed, as its line keeps it."""

    kind: str
    status: int | None
    message: str
    retryable: bool

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "status": self.status, "message": self.message, "retryable": self.retryable}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ErrorRecord:
        status = data.get("status")
        return cls(
            str(data.get("kind", "unknown")),
            status if isinstance(status, int) else None,
            str(data.get("message", "")),
            data.get("retryable") is not False,
        )


@dataclass(frozen=True, slots=True)
class Record:
    job_id: str
    prompt_id: str
    status: str  # SUCCESS or FAILED
    attempts: int
    axes: dict[str, Any]
    request: dict[str, Any]
    ai_record: dict[str, Any] | None  # the API's record, verbatim
    files: tuple[str, ...]  # images, relative to the run dir
    error: ErrorRecord | None
    started_at: str
    finished_at: str
    elapsed_s: float
    recovered: bool = False  # written for an image found on disk without its line
    credits: float | None = None  # what the image cost, when a price was known

    @classmethod
    def success(
        cls,
        job: Job,
        attempts: int,
        ai_record: dict[str, Any] | None,
        files: list[str],
        started: float,
        recovered: bool = False,
        credits: float | None = None,
    ) -> Record:
        return cls._of(job, SUCCESS, attempts, ai_record, files, None, started, recovered, credits)

    @classmethod
    def failure(
        cls, job: Job, attempts: int, error: ErrorRecord, started: float, ai_record: dict[str, Any] | None = None
    ) -> Record:
        return cls._of(job, FAILED, attempts, ai_record, [], error, started)

    @classmethod
    def _of(
        cls,
        job: Job,
        status: str,
        attempts: int,
        ai_record: dict[str, Any] | None,
        files: list[str],
        error: ErrorRecord | None,
        started: float,
        recovered: bool = False,
        credits: float | None = None,
    ) -> Record:
        finished = time.time()
        return cls(
            job.job_id,
            job.prompt_id,
            status,
            attempts,
            job.axes,
            job.request,
            ai_record,
            tuple(files),
            error,
            utc_timestamp(started),
            utc_timestamp(finished),
            round(finished - started, 3),
            recovered,
            credits,
        )

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCESS

    @property
    def job(self) -> Job:
        return Job(self.job_id, self.prompt_id, self.axes, self.request)

    def as_json(self) -> dict[str, Any]:
        # Key order matters: RecordIndex reads job_id, prompt_id and status from the start of
        # a line, and credits (just before the times) and elapsed_s from its end.
        line: dict[str, Any] = {
            "job_id": self.job_id,
            "prompt_id": self.prompt_id,
            "status": self.status,
            "attempts": self.attempts,
            "axes": self.axes,
            "request": self.request,
            "aiRecord": self.ai_record,
            "files": list(self.files),
            "error": self.error.as_json() if self.error else None,
        }
        if self.recovered:
            line["recovered"] = True
        if self.credits is not None:
            line["credits"] = self.credits
        line.update(started_at=self.started_at, finished_at=self.finished_at, elapsed_s=self.elapsed_s)
        return line

    def encode(self) -> bytes:
        return json.dumps(self.as_json(), ensure_ascii=False).encode() + b"\n"

    @classmethod
    def decode(cls, raw: bytes) -> Record | None:
        """A line as a Record, or None if it is not a whole record."""
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("job_id"), str) or not _JOB_ID.match(data["job_id"]):
            return None
        status, files, error = data.get("status"), data.get("files"), data.get("error")
        if not (status == SUCCESS and isinstance(files, list)) and not (status == FAILED and isinstance(error, dict)):
            return None
        ai_record, attempts, elapsed = data.get("aiRecord"), data.get("attempts"), data.get("elapsed_s")
        credits = data.get("credits")
        return cls(
            job_id=data["job_id"],
            prompt_id=str(data.get("prompt_id", "")),
            status=status,
            attempts=attempts if isinstance(attempts, int) else 0,
            axes=_mapping(data.get("axes")),
            request=_mapping(data.get("request")),
            ai_record=ai_record if isinstance(ai_record, dict) else None,
            files=tuple(name for name in files or () if isinstance(name, str)),
            error=ErrorRecord.from_json(error) if isinstance(error, dict) else None,
            started_at=str(data.get("started_at", "")),
            finished_at=str(data.get("finished_at", "")),
            elapsed_s=float(elapsed) if isinstance(elapsed, int | float) else 0.0,
            recovered=data.get("recovered") is True,
            credits=float(credits) if isinstance(credits, int | float) and not isinstance(credits, bool) else None,
        )

    @property
    def paid_for(self) -> bool:
        """A failed line whose image was made (or is being made): fetch or poll it, never re-pay."""
        if self.succeeded or not self.ai_record or not self.ai_record.get("uuid") or self.error is None:
            return False
        if self.error.kind == "download":
            return self.error.retryable
        return self.error.kind == "timeout" and self.ai_record.get("status") in ("PROCESSING", "PENDING")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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
    unfetched: dict[str, Record] = field(default_factory=dict)  # job_id -> the failed line of a paid image
    failed: dict[str, ErrorRecord] = field(default_factory=dict)  # job_id -> its latest failure, while not done
    latencies: list[float] = field(default_factory=list)  # elapsed_s of every success line
    bad: list[BadLine] = field(default_factory=list)  # lines that are not records, in file order
    lines: int = 0
    credits: float = 0.0  # spent on the done jobs whose lines say what they cost
    priced: bool = False  # some line said what its image cost

    @property
    def refused(self) -> set[str]:
        """Jobs that failed for good (a refusal, a validation error): re-sent only on request."""
        return {job_id for job_id, error in self.failed.items() if not error.retryable}

    def add(self, raw: bytes, number: int = 0) -> None:
        self.lines += 1
        fast = _SUCCESS_PREFIX.match(raw)
        if fast and b"\0" not in raw:
            elapsed = _ELAPSED.search(raw, max(0, len(raw) - 40))
            if elapsed:
                self._succeeded(fast.group(1).decode(), float(elapsed.group(1)))
                return
        record = Record.decode(raw)
        if record is not None:
            self._add(record)
            return
        # Not a record. A block of NULs (a crash of the file system) may have swallowed line
        # ends: whatever whole records sit between the NULs are still read.
        salvaged = [(piece, Record.decode(piece)) for piece in _NULS.split(raw)] if b"\0" in raw else []
        for _, found in salvaged:
            if found is not None:
                self._add(found)
        self.bad.append(BadLine(number, raw, tuple(piece for piece, found in salvaged if found is not None)))

    def _add(self, record: Record) -> None:
        if record.succeeded:
            self._succeeded(record.job_id, record.elapsed_s)
            self._cost(record.credits)
        elif record.job_id not in self.done and record.error is not None:
            self.failed[record.job_id] = record.error
            if record.paid_for:
                self.unfetched[record.job_id] = record
            else:
                self.unfetched.pop(record.job_id, None)

    def _cost(self, credits: float | None) -> None:
        if credits is not None:
            self.credits += credits
            self.priced = True

    def _succeeded(self, job_id: str, elapsed: float) -> None:
        self.done.add(job_id)
        self.unfetched.pop(job_id, None)
        self.failed.pop(job_id, None)
        if elapsed > 0:  # a line recovered from an image on disk has no latency to tell
            self.latencies.append(elapsed)


def numbered_lines(run_dir: Path) -> Iterator[tuple[int, bytes]]:
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
    """The index of `run_dir`'s records. A resume reads 100,000 lines before it may send
    anything: the success lines this module wrote take the fast path right here, in a loop
    with nothing but local names; every other line goes through RecordIndex.add."""
    index = RecordIndex()
    try:
        records = open(run_dir / RECORDS, "rb")
    except (FileNotFoundError, NotADirectoryError):
        return index  # no run dir yet (or a file where one would go): no records
    prefix, elapsed_at, credits_at = _SUCCESS_PREFIX.match, _ELAPSED.search, _CREDITS.search
    done, latencies = index.done, index.latencies
    with records:
        for number, raw in enumerate(records, start=1):
            if not raw.endswith(b"\n"):
                continue  # a torn last line: a crash mid-write is no record
            fast = prefix(raw)
            if fast and b"\0" not in raw and (elapsed := elapsed_at(raw, len(raw) - 40)):
                index.lines += 1
                job_id = fast.group(1).decode()
                if b'"credits": ' in raw and (priced := credits_at(raw, len(raw) - 200)):
                    index._cost(float(priced.group(1)))
                if index.failed and job_id in index.failed:
                    index._succeeded(job_id, float(elapsed.group(1)))
                    continue
                done.add(job_id)
                seconds = float(elapsed.group(1))
                if seconds > 0:
                    latencies.append(seconds)
                continue
            index.add(raw, number)
    return index


def decoded(raw: bytes) -> Iterator[Record]:
    """The records in one line: itself, or the pieces a crash's NUL bytes left of it."""
    for piece in _NULS.split(raw) if b"\0" in raw else (raw,):
        record = Record.decode(piece)
        if record is not None:
            yield record


def success_tail(raw: bytes) -> tuple[str, int, dict[str, Any]] | None:
    """(job_id, attempts, the fields after the aiRecord: files, error, credits, times, elapsed)
    of a success line as this module writes it, read without decoding its aiRecord, which
    took half the time of an export of 100,000 jobs. None for any other line.

    The top-level "files" is the last one in the line: after it come only an error (null on
    success), numbers and timestamps, none of which can hold the bytes `, "files": [`."""
    head = _SUCCESS_HEAD.match(raw)
    cut = raw.rfind(b', "files": [')
    if head is None or cut < 0 or b"\0" in raw:
        return None
    try:
        tail = json.loads(b"{" + raw[cut + 2 :])
    except ValueError:
        return None
    if not isinstance(tail, dict) or not isinstance(tail.get("files"), list):
        return None
    return head.group(1).decode(), int(head.group(2)), tail


def records_of(run_dir: Path, job_ids: set[str]) -> dict[str, Record]:
    """The success lines of `job_ids`, decoded in full (the index keeps only their ids)."""
    found: dict[str, Record] = {}
    if not job_ids:
        return found
    for _, raw in numbered_lines(run_dir):
        fast = _SUCCESS_PREFIX.match(raw)
        if fast and fast.group(1).decode() in job_ids:
            record = Record.decode(raw)
            if record is not None:
                found[record.job_id] = record
    return found


def first_success(run_dir: Path) -> Record | None:
    for _, raw in numbered_lines(run_dir):
        record = Record.decode(raw)
        if record is not None and record.succeeded:
            return record
    return None
