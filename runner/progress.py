"""What the user sees while a run goes: a tqdm bar on a terminal, else a line every 10 s.

Fed by the worker pool's events; the core never prints.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

from runner.execute import Event

LINE_EVERY_S = 10.0


class Progress:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = 0
        self.done = self.failed = self.retries = 0
        self._started = time.monotonic()
        self._last_line = self._started
        self._enabled = enabled
        self._bar: tqdm[Any] | None = None

    def __call__(self, event: Event) -> None:
        if event.kind == "planned":
            self.total = event.count
            if self._enabled and self.stream.isatty():
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
            elif self._enabled and time.monotonic() - self._last_line >= LINE_EVERY_S:
                self._line()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _line(self) -> None:
        now = time.monotonic()
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
