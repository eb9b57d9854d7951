"""Every run dir under a root, as the morning after reads them: what each holds, what it cost,
how its last run ended, and whether one is running in it now.

A run dir is a directory with its manifest copy and the files of a run (records, a summary,
an endpoint or a lock), searched a few levels down (output/NAME, output/emulator/NAME). One
that cannot be read is listed as damaged, with why; it does not stop the listing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import FluxBatchError
from runner.status import plan_of_run_dir, status_of
from runner.store import LOCK, MANIFEST
from runner.summary import SUMMARY

DEPTH = 3  # output/NAME is 1, output/emulator/NAME 2; a team's output/NIGHT/NAME 3
_SIGNS = ("records.jsonl", SUMMARY, "endpoint.json", LOCK)
_NOT_RUNS = {"images", "thumbs", "sheets"}  # inside a run dir: nothing to look for there


@dataclass(frozen=True)
class RunRow:
    path: Path
    activity: float  # when the run dir last changed (its records, summary or lock)
    name: str | None = None
    endpoint: str | None = None  # "emulator", or the base URLs that served it
    total: int = 0
    done: int = 0
    failed_for_good: int = 0
    to_retry: int = 0  # failed but tried again by the next run, paid images to fetch included
    pending: int = 0
    credits_spent: float | None = None  # over every run
    credits_last: float | None = None  # in the last run
    last_started: str | None = None
    last_finished: str | None = None
    stopped: str | None = None  # why the last run stopped early, if it did
    live: str | None = None  # who is running in it now
    damaged: str | None = None  # why it cannot be read

    def as_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("path", "activity")}
        return {"run_dir": str(self.path), **data}


def run_dirs(root: Path, depth: int = DEPTH) -> Iterator[Path]:
    """The run dirs under `root` (itself included), no deeper than `depth`."""
    if (root / MANIFEST).is_file() and any((root / sign).exists() for sign in _SIGNS):
        yield root
        return
    if depth == 0:
        return
    try:
        children = sorted(entry.path for entry in os.scandir(root) if entry.is_dir(follow_symlinks=False))
    except OSError:
        return
    for child in children:
        if Path(child).name not in _NOT_RUNS:
            yield from run_dirs(Path(child), depth - 1)


def survey(root: Path, max_grid: int) -> list[RunRow]:
    """A row for every run dir under `root`, the most recently active first."""
    return sorted((_row(path, max_grid) for path in run_dirs(root)), key=lambda row: -row.activity)


def _row(path: Path, max_grid: int) -> RunRow:
    activity = max((os.stat(path / sign).st_mtime for sign in _SIGNS if (path / sign).exists()), default=0.0)
    try:
        plan = plan_of_run_dir(path, max_grid)
        status = status_of(path, plan)
    except (FluxBatchError, OSError, ValueError) as exc:
        return RunRow(path, activity, damaged=str(exc).splitlines()[0][:300])
    provenance = status.provenance
    endpoint = None
    if provenance is not None:
        endpoint = "emulator" if provenance.emulated else ", ".join(provenance.base_urls) or "a real API"
    last = status.last_run
    return RunRow(
        path,
        activity,
        name=status.name,
        endpoint=endpoint,
        total=status.total,
        done=status.done,
        failed_for_good=status.failed_for_good,
        to_retry=status.failed_to_retry + status.unfetched,
        pending=status.pending,
        credits_spent=status.credits_spent,
        credits_last=last.credits_spent if last else None,
        last_started=last.started_at if last else None,
        last_finished=last.finished_at if last else None,
        stopped=last.stopped.reason if last and last.stopped else None,
        live=status.live,
    )
