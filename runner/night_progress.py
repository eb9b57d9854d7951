"""What a night tells while it goes, on stderr: a line when a manifest starts, then one line for
the whole night at most every 10 s while jobs finish (each manifest's count in it), and each
change of the one pace they share. A night runs unattended, so these are lines for a cron log,
not a bar.

    [02:14:05] night: 1,240 done, 3 failed, 2 retries, 41.3/min; portraits 1,130/5,000, ab 110/110 (finished)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from runner.events import Event
from runner.progress import LINE_EVERY_S
from runner.words import plural

MOST_NAMED = 6  # manifests named in a line; the rest are counted


@dataclass
class _Manifest:
    name: str
    total: int = 0
    done_before: int = 0
    done: int = 0
    failed: int = 0
    finished: bool = False


class NightProgress:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.retries = 0
        self._manifests: list[_Manifest] = []
        self._enabled = enabled
        self._clock = clock
        self._started = clock()
        self._last_line = self._started

    def manifest(self, name: str) -> Callable[[Event], None]:
        """The consumer of one manifest's events."""
        counts = _Manifest(name)
        self._manifests.append(counts)

        def consume(event: Event) -> None:
            if event.kind == "planned":
                counts.total, counts.done_before = event.total, event.done
            elif event.kind == "done":
                counts.done += 1
            elif event.kind == "failed":
                counts.failed += 1
            elif event.kind == "retry":
                self.retries += 1
            if event.kind in ("done", "failed") and self._enabled and self._clock() - self._last_line >= LINE_EVERY_S:
                self.line()

        return consume

    def finished(self, name: str) -> None:
        for counts in self._manifests:
            if counts.name == name:
                counts.finished = True

    def paced(self, event: Event) -> None:
        if self._enabled:
            self._print(f"pace: {event.count:,} requests a minute ({event.message})")

    def line(self) -> None:
        now = self._clock()
        self._last_line = now
        done = sum(counts.done for counts in self._manifests)
        failed = sum(counts.failed for counts in self._manifests)
        rate = (done + failed) / max(now - self._started, 1e-9) * 60
        named = [self._count(counts) for counts in self._manifests[:MOST_NAMED]]
        if len(self._manifests) > MOST_NAMED:
            named.append(f"{plural(len(self._manifests) - MOST_NAMED, 'more manifest')}")
        self._print(
            f"night: {done:,} done, {failed:,} failed, {plural(self.retries, 'retry', 'retries')}, {rate:.1f}/min; "
            + ", ".join(named)
        )

    @staticmethod
    def _count(counts: _Manifest) -> str:
        text = f"{counts.name} {counts.done_before + counts.done:,}/{counts.total:,}"
        return text + (" (finished)" if counts.finished else "")

    def _print(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=self.stream, flush=True)
