"""The arms of one or several run dirs, their images, and which images match.

An arm is a prompt of a run dir. Two images match when they come from different arms with the
same axes (vars, swept values, seed): the same setting, so a vote between them is about the
arms alone. Arms may come from different run dirs (a prompt before and after an edit).

A run still going adds images: `refresh` reads only what was appended to records.jsonl since
it last looked, so review pages see new images without a reload.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.plan import Plan
from runner.record_file import decoded
from runner.records import RECORDS
from runner.status import plan_of_run_dir
from runner.store import THUMBS


@dataclass(frozen=True)
class Arm:
    index: int  # the arms' order: run dirs as given, prompts as their manifests list them
    run_dir: Path
    prompt_id: str
    label: str  # the prompt id, or "RUN_DIR_NAME/prompt_id" when there are several run dirs


@dataclass(frozen=True)
class Shot:
    """One image a job made, ready to be judged."""

    job_id: str
    arm: Arm
    axes: dict[str, Any]
    setting: str  # the axes as canonical JSON: what a match is made on
    file: str  # relative to the arm's run dir
    thumb: str | None  # the report's thumbnail, relative to the run dir, if made
    prompt: str


class RunSet:
    """What review and verdict know of their run dirs, kept current by `refresh`."""

    def __init__(self, run_dirs: list[Path], max_grid: int, plans: list[Plan] | None = None) -> None:
        self.run_dirs = run_dirs
        self.arms: list[Arm] = []
        self.swept: list[str] = []  # the swept and zipped fields, over every manifest
        self.names: list[str] = []
        for n, run_dir in enumerate(run_dirs):
            plan = plans[n] if plans else plan_of_run_dir(run_dir, max_grid)
            self.names.append(plan.manifest.name)
            for prompt in plan.prompts:
                self._arm(run_dir, prompt.spec.id)
            for name, _ in (*plan.manifest.sweep, *plan.manifest.zip):
                if name not in self.swept:
                    self.swept.append(name)
        self.shots: dict[str, Shot] = {}
        self.version = 0  # counts refreshes that found something new
        self._offsets = dict.fromkeys(run_dirs, 0)
        self._files = Confined()
        self.refresh()

    def _arm(self, run_dir: Path, prompt_id: str) -> Arm:
        for arm in self.arms:
            if arm.run_dir == run_dir and arm.prompt_id == prompt_id:
                return arm
        label = prompt_id if len(self.run_dirs) == 1 else f"{run_dir.name}/{prompt_id}"
        if any(arm.label == label for arm in self.arms):  # two run dirs of one name
            label = f"{label} ({self.run_dirs.index(run_dir) + 1})"
        self.arms.append(Arm(len(self.arms), run_dir, prompt_id, label))
        return self.arms[-1]

    def refresh(self) -> list[Shot]:
        """Read what each records.jsonl gained since the last look; the new shots."""
        self._files.clear()  # a directory may have been made since (thumbs/ by a report)
        found = []
        for run_dir in self.run_dirs:
            found += self._read_new(run_dir)
        if found:
            self.version += 1
        return found

    def _read_new(self, run_dir: Path) -> list[Shot]:
        path = run_dir / RECORDS
        try:
            size = os.stat(path).st_size
        except OSError:
            return []
        start = self._offsets[run_dir]
        if size < start:  # set aside and rewritten by a run's recovery: read it all again
            self.shots = {k: shot for k, shot in self.shots.items() if shot.arm.run_dir != run_dir}
            start = 0
        if size == start:
            return []
        with open(path, "rb") as records:
            records.seek(start)
            chunk = records.read(size - start)
        end = chunk.rfind(b"\n") + 1  # a line still being written is read next time
        self._offsets[run_dir] = start + end
        found = []
        for raw in chunk[:end].splitlines(keepends=True):
            for record in decoded(raw):
                if record.succeeded and record.files and record.job_id not in self.shots:
                    shot = self._shot(run_dir, record.job_id, record.prompt_id, record.axes, record.files[0], record.request)
                    if shot is not None:
                        self.shots[shot.job_id] = shot
                        found.append(shot)
        return found

    def _shot(
        self, run_dir: Path, job_id: str, prompt_id: str, axes: dict[str, Any], file: str, request: dict[str, Any]
    ) -> Shot | None:
        if self._files.file(run_dir, file) is None:
            return None  # a records line naming a file outside its run dir is no image of it
        thumb = f"{THUMBS}/{prompt_id}/{job_id}.webp"
        prompt = request.get("promptObject", {}).get("prompt", "") if isinstance(request.get("promptObject"), dict) else ""
        setting = json.dumps(axes, sort_keys=True, ensure_ascii=False)
        arm = self._arm(run_dir, prompt_id)
        return Shot(job_id, arm, axes, setting, file, thumb if self._files.file(run_dir, thumb) else None, str(prompt))

    def matches(self) -> list[tuple[Shot, Shot]]:
        """Every pair of images of different arms made with the same setting."""
        by_setting: dict[str, list[Shot]] = {}
        for shot in self.shots.values():
            by_setting.setdefault(shot.setting, []).append(shot)
        pairs = []
        for shots in by_setting.values():
            shots.sort(key=lambda shot: shot.arm.index)
            for i, first in enumerate(shots):
                pairs += [(first, second) for second in shots[i + 1 :] if second.arm != first.arm]
        return pairs

    def owner(self, job_id: str) -> Path:
        """The run dir whose ratings.jsonl a judgment of `job_id` goes to."""
        return self.shots[job_id].arm.run_dir


def inside(run_dir: Path, relative: str) -> Path | None:
    """The regular file `relative` names in `run_dir`, if it is one there (see Confined)."""
    return Confined().file(run_dir, relative)


class Confined:
    """Files inside run dirs: a relative path with no "." or ".." part, through real
    directories, to a real file. A symbolic link on the way is refused, so nothing points out
    of a run dir (flux-batch never makes one). What each directory is, is remembered: a
    listing of thousands of images then costs about one lstat an image."""

    def __init__(self) -> None:
        self._roots: dict[Path, str | None] = {}
        self._dirs: dict[str, bool] = {}

    def clear(self) -> None:
        self._roots.clear()
        self._dirs.clear()

    def file(self, run_dir: Path, relative: str) -> Path | None:
        parts = relative.split("/")
        if relative.startswith("/") or any(part in ("", ".", "..") for part in parts):
            return None
        if run_dir not in self._roots:
            try:
                self._roots[run_dir] = os.path.realpath(run_dir, strict=True)
            except OSError:
                self._roots[run_dir] = None
        path = self._roots[run_dir]
        if path is None:
            return None
        for part in parts[:-1]:
            path = f"{path}/{part}"
            if path not in self._dirs:
                self._dirs[path] = _is(path, stat.S_ISDIR)
            if not self._dirs[path]:
                return None
        path = f"{path}/{parts[-1]}"
        return Path(path) if _is(path, stat.S_ISREG) else None


def _is(path: str, kind: Callable[[int], bool]) -> bool:
    try:
        return kind(os.lstat(path).st_mode)
    except OSError:
        return False
