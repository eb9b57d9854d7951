"""records.jsonl as a whole: what it says, and its lines read back.

    RecordIndex   read at the start of every run: done jobs, paid images still to fetch,
                  failures of two kinds, damaged lines (read_index)
    readers       numbered_lines, decoded, success_tail, records_of, first_success

Success lines are matched against the layout `runner.records` spells beside its encoder, not
decoded: a resume reads 100,000 of them before it may send anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.records import CREDITS, ELAPSED, RECORDS, SUCCESS_HEAD, SUCCESS_PREFIX, ErrorRecord, Record

_NULS = re.compile(rb"\x00+")


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
        fast = SUCCESS_PREFIX.match(raw)
        if fast and b"\0" not in raw:
            elapsed = ELAPSED.search(raw, max(0, len(raw) - 40))
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
    prefix, elapsed_at, credits_at = SUCCESS_PREFIX.match, ELAPSED.search, CREDITS.search
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
    head = SUCCESS_HEAD.match(raw)
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
        fast = SUCCESS_PREFIX.match(raw)
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
