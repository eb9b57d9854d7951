"""summary.json: what one invocation of `run` did, with one owner.

    Summary   as_json() -> summary.json (and a line of summary.history.jsonl)
              read_summary(run_dir) -> Summary | None

A summary written by an older flux-batch lacks the newer fields; they read as zero or none.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

SUMMARY = "summary.json"
SUMMARY_HISTORY = "summary.history.jsonl"


@dataclass(frozen=True, slots=True)
class JobCounts:
    total: int = 0
    done: int = 0  # of the manifest's jobs, in this and earlier invocations
    pending: int = 0
    done_before: int = 0
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    fetched_again: int = 0  # paid images of earlier runs fetched
    recovered: int = 0  # images found on disk without their line, recorded as done
    held_back: int = 0  # failed for good earlier, not sent again


@dataclass(frozen=True, slots=True)
class Stopped:
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Summary:
    started_at: str = ""
    finished_at: str = ""
    wall_s: float = 0.0
    endpoint: str | None = None
    emulated: bool | None = None
    jobs: JobCounts = field(default_factory=JobCounts)
    images_restored: int = 0
    uploads: int = 0
    credits_spent: float | None = None  # on this invocation's images; None when no price was known
    retries: int = 0  # generation requests sent again
    download_retries: int = 0
    upload_retries: int = 0
    poll_retries: int = 0
    latency_p50: float | None = None
    latency_p95: float | None = None
    failures_by_kind: dict[str, int] = field(default_factory=dict)
    failure_examples: dict[str, str] = field(default_factory=dict)
    pace: dict[str, Any] | None = None  # requests a minute told or learned, 429s, and each slowdown
    stopped: Stopped | None = None

    def with_counts(self, **counts: int) -> Summary:
        return replace(self, jobs=replace(self.jobs, **counts))

    def stopped_by(self, reason: str, message: str) -> Summary:
        return replace(self, stopped=Stopped(reason, message))

    def as_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "wall_s": self.wall_s,
            "endpoint": self.endpoint,
            "emulated": self.emulated,
            "jobs": asdict(self.jobs),
            "images_restored": self.images_restored,
            "uploads": self.uploads,
            "credits_spent": self.credits_spent,
            "retries": self.retries,
            "download_retries": self.download_retries,
            "upload_retries": self.upload_retries,
            "poll_retries": self.poll_retries,
            "latency_s": {"p50": self.latency_p50, "p95": self.latency_p95},
            "failures_by_kind": self.failures_by_kind,
            "failure_examples": self.failure_examples,
            "pace": self.pace,
            "stopped": asdict(self.stopped) if self.stopped else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Summary:
        jobs = _mapping(data.get("jobs"))
        latency = _mapping(data.get("latency_s"))
        stopped = data.get("stopped")
        known = JobCounts.__dataclass_fields__
        return cls(
            started_at=str(data.get("started_at", "")),
            finished_at=str(data.get("finished_at", "")),
            wall_s=float(data.get("wall_s") or 0.0),
            endpoint=data.get("endpoint"),
            emulated=data.get("emulated"),
            jobs=JobCounts(**{k: int(v) for k, v in jobs.items() if k in known and isinstance(v, int)}),
            images_restored=int(data.get("images_restored") or 0),
            uploads=int(data.get("uploads") or 0),
            credits_spent=float(data["credits_spent"]) if isinstance(data.get("credits_spent"), int | float) else None,
            retries=int(data.get("retries") or 0),
            download_retries=int(data.get("download_retries") or 0),
            upload_retries=int(data.get("upload_retries") or 0),
            poll_retries=int(data.get("poll_retries") or 0),
            latency_p50=latency.get("p50"),
            latency_p95=latency.get("p95"),
            failures_by_kind=dict(data.get("failures_by_kind") or {}),
            failure_examples=dict(data.get("failure_examples") or {}),
            pace=data["pace"] if isinstance(data.get("pace"), dict) else None,
            stopped=Stopped(str(stopped.get("reason")), str(stopped.get("message"))) if isinstance(stopped, dict) else None,
        )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def read_summary(run_dir: Path) -> Summary | None:
    """The last invocation's summary, if there is a readable one."""
    try:
        data = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Summary.from_json(data) if isinstance(data, dict) else None
