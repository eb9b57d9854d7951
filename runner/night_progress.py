"""What a night tells while it goes, on stderr. On a terminal, one tqdm bar for the whole night,
growing as manifests are found, with each change of the one pace they share written above it.
Elsewhere (a cron log), one line for the whole night at most every 10 s while jobs finish,
each manifest's count in it, and each change of the pace:

    [02:14:05] night: 1,240 done, 3 failed, 2 retries, 41.3/min; portraits 1,130/5,000, ab 110/110 (finished)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from runner.events import Event
from runner.progress import Telling
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


class NightProgress(Telling):
    def __init__(self, enabled: bool = True, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(enabled, stream, clock)
        self.retries = 0
        self._manifests: list[_Manifest] = []

    def manifest(self, name: str) -> Callable[[Event], None]:
        """The consumer of one manifest's events."""
        counts = _Manifest(name)
        self._manifests.append(counts)

        def consume(event: Event) -> None:
            if event.kind == "planned":
                counts.total, counts.done_before = event.total, event.done
                self._planned(counts)
            elif event.kind == "done":
                counts.done += 1
            elif event.kind == "failed":
                counts.failed += 1
            elif event.kind == "retry":
                self.retries += 1
            if event.kind in ("done", "failed"):
                self._ended_one()

        return consume

    def finished(self, name: str) -> None:
        for counts in self._manifests:
            if counts.name == name:
                counts.finished = True
        if self._bar is not None:
            self._bar.set_postfix(self._postfix())

    def say(self, text: str, file: TextIO | None = None) -> None:
        """A line of the command's own (stdout by default), above the bar if one is drawn."""
        if self._bar is not None:
            self._bar.write(text, file=file or sys.stdout)
        else:
            print(text, file=file or sys.stdout, flush=True)

    def _planned(self, counts: _Manifest) -> None:
        """A manifest joins the night: on a terminal, the bar grows by its jobs and starts from
        what its run dir held."""
        if not self._enabled or not self.stream.isatty():
            return
        if self._bar is None:
            self._draw_bar(counts.total, counts.done_before, desc="night")
            return
        # What was done before is where the count stands, not progress made now: the rate
        # tqdm shows leaves it out.
        self._bar.total = (self._bar.total or 0) + counts.total
        self._bar.n += counts.done_before
        self._bar.last_print_n += counts.done_before
        self._bar.refresh()

    def _postfix(self) -> dict[str, object]:
        done = sum(counts.finished for counts in self._manifests)
        postfix: dict[str, object] = {
            "manifests": f"{done}/{len(self._manifests)} finished",
            "failed": sum(counts.failed for counts in self._manifests),
            "retries": self.retries,
        }
        if self.pace:
            postfix["pace"] = f"{self.pace:,}/min"
        return postfix

    def _line(self, now: float) -> None:
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
