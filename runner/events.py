"""What a run reports as it goes (Event, for the progress bar and run.log) and what it did in
the end (Outcome, for summary.json). The pool emits; the command line shows; neither prints."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from runner.errors import ApiError
from runner.plan import Job


@dataclass(frozen=True, slots=True)
class Event:
    """Something the CLI may show: "planned" (`count` jobs to run, `done` of `total` already),
    a job "done" (`elapsed` its latency) or "failed", a "retry" (`wait` the seconds before it),
    a "note", a "pace" (now `count` requests a minute, `message` why), or a "stop"."""

    kind: str
    count: int = 0
    job: Job | None = None
    error: ApiError | None = None
    attempt: int = 0
    elapsed: float = 0.0
    message: str = ""
    done: int = 0
    total: int = 0
    wait: float = 0.0


@dataclass
class Outcome:
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    fetched: int = 0  # paid images of earlier runs fetched again
    recovered: int = 0  # images found on disk without their line, recorded as done
    restored: int = 0  # images of done jobs missing from disk, fetched again
    uploads: int = 0  # input images sent to the Asset API
    credits: float = 0.0  # spent on the images of this invocation
    priced: bool = False  # some image's cost was known
    retries: Counter[str] = field(default_factory=Counter)  # tries again, by what: generation, download, upload, poll
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # by error kind
    examples: dict[str, str] = field(default_factory=dict)  # error kind -> its first message
    started: float = field(default_factory=time.time)
    finished: float = 0.0
    pace: dict[str, Any] | None = None  # how fast the pool was let go, and why it slowed (Pace.report)
