"""What a run tells while it goes: a tqdm bar on a terminal, else a line at the start and then
at most every 10 s on stderr; and, for unattended runs, RUN_DIR/run.log with every retry,
failure and stop.

Both are fed by the worker pool's events; the core never prints.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from runner.events import Event
from runner.words import plural

if TYPE_CHECKING:
    from tqdm import tqdm

LINE_EVERY_S = 10.0


class Telling:
    """What a run's progress and a night's share: a tqdm bar on a terminal, else timestamped
    lines at most every LINE_EVERY_S; a change of pace written above the bar, or as a line."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.pace = 0  # requests a minute the pool is held to, once it was slowed or told
        self._enabled = enabled
        self._clock = clock
        self._started = clock()
        self._last_line = self._started
        self._bar: tqdm[Any] | None = None

    def paced(self, event: Event) -> None:
        self.pace = event.count
        text = f"pace: {event.count:,} requests a minute ({event.message})"
        if self._bar is not None:
            self._bar.write(f"[{time.strftime('%H:%M:%S')}] {text}", file=self.stream)
            self._bar.set_postfix(self._postfix(), refresh=False)
        elif self._enabled:
            self._print(text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _ended_one(self) -> None:
        """A job ended: the bar moves, or a line is due."""
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(self._postfix(), refresh=False)
        elif self._enabled and (now := self._clock()) - self._last_line >= LINE_EVERY_S:
            self._last_line = now
            self._line(now)

    def _draw_bar(self, total: int, initial: int, desc: str | None = None) -> None:
        from tqdm import tqdm  # 40 ms to import: only when a bar is drawn

        self._bar = tqdm(total=total, initial=initial, desc=desc, unit="img", file=self.stream, dynamic_ncols=True, smoothing=0.1)

    def _postfix(self) -> dict[str, object]:
        raise NotImplementedError

    def _line(self, now: float) -> None:
        raise NotImplementedError

    def _print(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=self.stream, flush=True)


class Progress(Telling):
    def __init__(self, enabled: bool = True, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(enabled, stream, clock)
        self.total = 0
        self.done_before = 0  # done in earlier invocations: the count starts there
        self.done = self.failed = self.retries = 0

    def __call__(self, event: Event) -> None:
        if event.kind == "planned":
            self._planned(event)
        elif event.kind == "done":
            self.done += 1
        elif event.kind == "failed":
            self.failed += 1
        elif event.kind == "retry":
            self.retries += 1
        elif event.kind == "pace":
            self.paced(event)
        if event.kind in ("done", "failed"):
            self._ended_one()

    def _planned(self, event: Event) -> None:
        self.total, self.done_before = event.total, event.done
        if event.done and event.count:  # said even without progress lines: it is what this run is about to do
            self._print(f"resuming: {event.done:,} of {event.total:,} done, {event.count:,} to run")
        if not self._enabled:
            return
        if self.stream.isatty():
            self._draw_bar(self.total, self.done_before)
        elif not event.done:
            self._print(f"starting: {plural(event.count, 'job')} to run")

    def _postfix(self) -> dict[str, object]:
        postfix: dict[str, object] = {"failed": self.failed, "retries": self.retries}
        if self.pace:
            postfix["pace"] = f"{self.pace:,}/min"
        return postfix

    def _line(self, now: float) -> None:
        finished = self.done + self.failed
        rate = finished / max(now - self._started, 1e-9)
        left = (self.total - self.done_before - finished) / rate if rate > 0 else float("inf")
        eta = f"{left / 60:.0f} min" if left != float("inf") else "?"
        self._print(
            f"{self.done_before + self.done:,}/{self.total:,} done, {self.failed} failed, "
            f"{plural(self.retries, 'retry', 'retries')}, {rate * 60:.1f}/min, about {eta} left"
            + (f", paced at {self.pace:,} requests a minute" if self.pace else "")
        )


class RunLog:
    """RUN_DIR/run.log: one timestamped line per thing worth reading the morning after.

    A log line that cannot be written (a full disk) is dropped: the log is not worth a run."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", encoding="utf-8")
        self.stopped = False  # a STOP line was written

    def write(self, text: str) -> None:
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        try:
            self._file.write(f"{stamp} {text}\n")
            self._file.flush()
        except OSError:
            pass

    def __call__(self, event: Event) -> None:
        job = f"{event.job.prompt_id}/{event.job.job_id}" if event.job else ""
        if event.kind == "planned":
            before = f", {event.done} of {event.total} done before" if event.done else ""
            self.write(f"{plural(event.count, 'job')} to run{before}")
        elif event.kind == "retry" and event.error:
            what = f" ({event.message})" if event.message else ""
            after = f", in {event.wait:.1f} s" if event.wait else ""
            error = f"{event.error.kind}: {event.error.message}"
            self.write(f"retry {job or '-'} after attempt {event.attempt}{what}{after}: {error}")
        elif event.kind == "failed" and event.error:
            self.write(f"FAILED {job} after {plural(event.attempt, 'attempt')}: {event.error.kind}: {event.error.message}")
        elif event.kind == "note":
            self.write(f"{job + ': ' if job else ''}{event.message}")
        elif event.kind == "pace":
            self.write(f"pace: {event.count:,} requests a minute ({event.message})")
        elif event.kind == "stop":
            self.stopped = True
            self.write(f"STOP: {event.message}")

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass


def fan_out(*consumers: Callable[[Event], None]) -> Callable[[Event], None]:
    def deliver(event: Event) -> None:
        for consume in consumers:
            consume(event)

    return deliver
