"""What a run tells while it goes: a tqdm bar on a terminal, else a line every 10 s on stderr;
and, for unattended runs, RUN_DIR/run.log with every retry, failure and stop.

Both are fed by the worker pool's events; the core never prints.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from runner.execute import Event

if TYPE_CHECKING:
    from tqdm import tqdm

LINE_EVERY_S = 10.0


class Progress:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.total = 0
        self.done = self.failed = self.retries = 0
        self._clock = clock
        self._started = clock()
        self._last_line = self._started
        self._enabled = enabled
        self._bar: tqdm[Any] | None = None

    def __call__(self, event: Event) -> None:
        if event.kind == "planned":
            self.total = event.count
            if self._enabled and self.stream.isatty():
                from tqdm import tqdm  # 40 ms to import: only when a bar is drawn

                self._bar = tqdm(total=self.total, unit="img", file=self.stream, dynamic_ncols=True, smoothing=0.1)
        elif event.kind == "done":
            self.done += 1
        elif event.kind == "failed":
            self.failed += 1
        elif event.kind == "retry":
            self.retries += 1
        if event.kind in ("done", "failed"):
            if self._bar is not None:
                self._bar.update(1)
                self._bar.set_postfix(failed=self.failed, retries=self.retries, refresh=False)
            elif self._enabled and self._clock() - self._last_line >= LINE_EVERY_S:
                self._line()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _line(self) -> None:
        now = self._clock()
        self._last_line = now
        finished = self.done + self.failed
        rate = finished / max(now - self._started, 1e-9)
        left = (self.total - finished) / rate if rate > 0 else float("inf")
        eta = f"{left / 60:.0f} min" if left != float("inf") else "?"
        print(
            f"[{time.strftime('%H:%M:%S')}] {finished}/{self.total} finished: {self.done} done, {self.failed} failed, "
            f"{self.retries} retries, {rate * 60:.1f}/min, about {eta} left",
            file=self.stream,
            flush=True,
        )


class RunLog:
    """RUN_DIR/run.log: one timestamped line per thing worth reading the morning after."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", encoding="utf-8")

    def write(self, text: str) -> None:
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        self._file.write(f"{stamp} {text}\n")
        self._file.flush()

    def __call__(self, event: Event) -> None:
        job = f"{event.job.prompt_id}/{event.job.job_id}" if event.job else ""
        if event.kind == "planned":
            self.write(f"{event.count} jobs to run")
        elif event.kind == "retry" and event.error:
            self.write(f"retry {job} after attempt {event.attempt}: {event.error.kind}: {event.error.message}")
        elif event.kind == "failed" and event.error:
            self.write(f"FAILED {job} after {event.attempt} attempt(s): {event.error.kind}: {event.error.message}")
        elif event.kind == "stop":
            self.write(f"STOP: {event.message}")

    def close(self) -> None:
        self._file.close()


def fan_out(*consumers: Callable[[Event], None]) -> Callable[[Event], None]:
    def deliver(event: Event) -> None:
        for consume in consumers:
            consume(event)

    return deliver
