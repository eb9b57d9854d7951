"""One night, many manifests: each into its own run dir as it would run alone, all sharing one
pool, one pace and one set of caps, and new manifests picked up as the night goes on.

    sources (files, directories) --> scan: manifests not seen yet
    --> open each: checked, its run dir locked (or skipped, with why)
    --> run_plan per manifest, as tasks, with Shared (one Pacer, one Quota, one thumbnail process)
    --> when one finishes, and every minute, scan again; the night ends when none is running

Fair by default: each manifest's pool has as many workers, and the pacer grants places in
turn, so a 50-job A/B test started at 23:00 takes its share beside a 10,000-job sweep. A
manifest's `run.priority` (and, with `--share priority`, its place in the list) puts its
workers first in line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runner.events import Event
from runner.execute import Result, Shared, run_plan
from runner.pace import learned_pace
from runner.pacing import Pacer
from runner.plan import Plan
from runner.pool import Quota
from runner.settings import RunSettings
from runner.stop import Stop
from runner.store import RunDir
from runner.thumbs import Thumbnails

RESCAN_S = 60.0  # a directory is scanned again at least this often


@dataclass
class Entry:
    """One manifest of the night, and what became of it."""

    manifest: Path
    state: str  # "ran", "invalid" (its messages), "busy" (its run dir is locked), "failed" (it could not run)
    message: str = ""
    name: str = ""
    run_dir: Path | None = None
    plan: Plan | None = None
    settings: RunSettings | None = None
    result: Result | None = None


@dataclass
class Opened:
    """A manifest ready to run: its plan and settings, and its run dir, open and locked."""

    entry: Entry
    run_dir: RunDir
    log: Callable[..., None]  # the run dir's run.log, fed the run's events
    close_log: Callable[[], None] = field(default=lambda: None)


Opener = Callable[[Path, int], "Opened | Entry"]  # (manifest, its place in the night) -> ready, or why not


def manifests_in(sources: list[Path]) -> list[Path]:
    """The manifests the sources name now: files as given, a directory's *.yaml in name order."""
    found = []
    for source in sources:
        if source.is_dir():
            found += sorted(path for path in source.glob("*.yaml") if path.is_file() and not path.name.startswith("."))
        else:
            found.append(source)
    return found


async def run_night(
    sources: list[Path], open_manifest: Opener, base_url: str, api_key: str, stop: Stop, pacer: Pacer, quota: Quota
) -> list[Entry]:
    """Run every manifest the sources name, and those that appear in them until the night
    ends; the entries in the order the manifests were found."""
    entries: list[Entry] = []
    seen: set[Path] = set()
    thumbnails = Thumbnails()  # one process for the night's pictures, closed when it ends
    running: dict[asyncio.Task[Result], Opened] = {}

    def scan() -> None:
        for path in manifests_in(sources):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            opened = open_manifest(path, len(seen))
            if isinstance(opened, Entry):
                entries.append(opened)
                continue
            entries.append(opened.entry)
            entry = opened.entry
            learned = learned_pace(opened.run_dir.path, base_url)
            if learned and pacer.pace.start_at(learned / 60):
                # The night's pace starts where the last run of any of its run dirs left it.
                opened.log(Event("note", message=f"starting at the pace learned before: {learned:g} requests a minute"))
            assert entry.plan is not None and entry.settings is not None
            shared = Shared(pacer, quota, thumbnails, entry.settings.priority)
            work = run_plan(entry.plan, opened.run_dir, entry.settings, base_url, api_key, stop, opened.log, shared=shared)
            running[asyncio.create_task(work, name=entry.name)] = opened

    async with thumbnails:
        scan()
        while running:
            done, _ = await asyncio.wait(running, timeout=RESCAN_S, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                opened = running.pop(task)
                try:
                    opened.entry.result = task.result()
                except Exception as exc:  # one manifest's trouble (its disk, its run dir) is not the night's
                    opened.entry.state, opened.entry.message = "failed", f"{type(exc).__name__}: {exc}"
                finally:
                    opened.close_log()
                    opened.run_dir.close()
            if not stop.requested:
                scan()
    return entries
