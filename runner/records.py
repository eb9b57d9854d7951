"""One line of records.jsonl: the only module that spells a records line's fields.

    Record        a job's outcome                 Record.success/failure -> encode() -> bytes
                                                  bytes -> Record.decode() -> Record | None

A resume reads 100,000 lines before it may send anything, so `runner.record_file` does not
decode the success lines written here: it matches the layout `Record.encode` guarantees
(job_id, prompt_id and status first, elapsed_s last), spelled once, below, beside the encoder.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runner.plan import Job

RECORDS = "records.jsonl"
SUCCESS, FAILED = "success", "failed"

# The layout Record.encode writes: the fast path matches both ends of a line, so a line cut
# short or overwritten misses one end or the other and is decoded (and found damaged) instead.
ELAPSED = re.compile(rb'"elapsed_s": ([0-9.]+)\}\s*$')
CREDITS = re.compile(rb'"credits": ([0-9.eE+-]+), "started_at"')
SUCCESS_PREFIX = re.compile(rb'^\{"job_id": "([0-9a-f]{16})", "prompt_id": "[A-Za-z0-9._-]{1,64}", "status": "success"')
SUCCESS_HEAD = re.compile(
    rb'^\{"job_id": "([0-9a-f]{16})", "prompt_id": "[A-Za-z0-9._-]{1,64}", "status": "success", "attempts": ([0-9]{1,9}), '
)
_JOB_ID = re.compile(r"^[0-9a-f]{16}$")


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
