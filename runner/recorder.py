"""Where a job's end is written down: its images and its records line go to the writer, its
count to the Outcome, its news to the Event stream. A disk that refuses stops the run."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.answers import cost_of
from runner.errors import ApiError, StopReason
from runner.events import Event, Outcome
from runner.plan import Job
from runner.records import ErrorRecord, Record
from runner.stop import Stop
from runner.thumbs import Thumbnails, thumb_of
from runner.writer import Images, RecordWriter, WriterGone


class Recorder:
    def __init__(
        self,
        run_dir: Path,
        writer: RecordWriter,
        stop: Stop,
        outcome: Outcome,
        on_event: Callable[[Event], None],
        price: float | None = None,
        thumbnails: Thumbnails | None = None,
    ) -> None:
        self._run_dir = run_dir
        self._price = price  # credits_per_image, when declared
        self._thumbnails = thumbnails  # the report's, made as the pictures land; None: no report
        self._writer = writer
        self._stop = stop
        self._outcome = outcome
        self._on_event = on_event

    def hurry(self) -> None:
        """Nothing new is being sent: commit what comes from now on without waiting for company."""
        self._writer.hurry()

    async def append(self, record: Record | None, images: Images = ()) -> bool:
        """Hand a line (and its images) to the writer; False, and the run stops, if the disk refuses."""
        try:
            await self._writer.append(record, images)
        except OSError as exc:
            reason, message = disk_trouble(exc, self._run_dir)
            if self._stop.request(reason, message):
                self._on_event(Event("stop", message=message))
            return False
        return True

    async def succeed(self, job: Job, ai_record: dict[str, Any], images: Images, attempts: int, started: float) -> bool:
        # The API's own figure, when its answer gives one, wins over the declared price.
        credits = cost_of(ai_record) if ai_record else None
        credits = self._price if credits is None else credits
        record = Record.success(job, attempts, ai_record, [name for name, _ in images], started, credits=credits)
        if not await self.append(record, images):
            return False
        if self._thumbnails is not None and images:
            name, data = images[0]
            self._thumbnails.offer(self._run_dir / name, self._run_dir / thumb_of(name, job.job_id), data)
        if credits is not None:
            self._outcome.credits += credits
            self._outcome.priced = True
        self._outcome.succeeded += 1
        self._outcome.latencies.append(record.elapsed_s)
        self._on_event(Event("done", job=job, attempt=attempts, elapsed=record.elapsed_s))
        return True

    async def fail(
        self, job: Job, error: ApiError, attempts: int, started: float, ai_record: dict[str, Any] | None = None
    ) -> None:
        if await self.append(Record.failure(job, attempts, error_record(error), started, ai_record)):
            self.count_failure(job, error, attempts)

    async def keep_paid(self, job: Job, error: ApiError, attempts: int, started: float, ai_record: dict[str, Any]) -> bool:
        """A paid image not fetched yet: its aiRecord is written at once, so nothing is lost if
        the run dies; it counts as failed only if it is still missing at the end."""
        return await self.append(Record.failure(job, attempts, error_record(error), started, ai_record))

    async def recover(self, job: Job, names: list[str]) -> bool:
        """A line for images found on disk without one: paid for, whole, and done."""
        if await self.append(Record.success(job, 0, {}, names, time.time(), recovered=True)):
            self._outcome.recovered += 1
            return True
        return False

    def count_failure(self, job: Job, error: ApiError, attempts: int) -> None:
        self._outcome.failed += 1
        self._outcome.failures[error.kind] += 1
        self._outcome.examples.setdefault(error.kind, error.message)
        self._on_event(Event("failed", job=job, error=error, attempt=attempts))


def error_record(error: ApiError) -> ErrorRecord:
    return ErrorRecord(str(error.kind), error.status, error.message, error.retryable)


def disk_trouble(exc: OSError, run_dir: Path) -> tuple[StopReason, str]:
    """Why the run dir could not be written, in words a user can act on."""
    if isinstance(exc, WriterGone):
        return StopReason.WRITER, exc.strerror or str(exc)
    where = exc.filename or run_dir
    if exc.errno == 28:  # ENOSPC
        return StopReason.DISK, f"the disk holding {run_dir} is full (No space left on device, writing {where})"
    return StopReason.DISK, f"cannot write {where}: {exc.strerror or exc}"
