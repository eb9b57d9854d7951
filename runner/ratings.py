"""RUN_DIR/ratings.jsonl: the judgments people make of a run's images, read back.

    {"kind": "pair",  "a": JOB_ID, "b": JOB_ID, "winner": "a" | "b" | "tie", "rater", "at"}
    {"kind": "score", "job_id", "score": 1..5, "rater", "at"}
    {"kind": "note",  "job_id", "text", "rater", "at"}

A later judgment by the same rater of the same pair (in either order) or the same job
supersedes the earlier one, so undoing is judging again. Lines that are not judgments are
skipped, as a damaged records line is.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RATINGS = "ratings.jsonl"


@dataclass(frozen=True, slots=True)
class Judgment:
    kind: str  # "pair", "score" or "note"
    rater: str
    at: str
    a: str = ""  # pair: the two jobs, and which won
    b: str = ""
    winner: str = ""
    job_id: str = ""  # score and note
    score: int | None = None
    text: str = ""

    @property
    def subject(self) -> tuple[str, ...]:
        """What a later judgment by the same rater replaces this one for."""
        return (self.kind, *sorted((self.a, self.b))) if self.kind == "pair" else (self.kind, self.job_id)

    def as_json(self) -> dict[str, Any]:
        if self.kind == "pair":
            return {"kind": "pair", "a": self.a, "b": self.b, "winner": self.winner, "rater": self.rater, "at": self.at}
        if self.kind == "score":
            return {"kind": "score", "job_id": self.job_id, "score": self.score, "rater": self.rater, "at": self.at}
        return {"kind": "note", "job_id": self.job_id, "text": self.text, "rater": self.rater, "at": self.at}

    @classmethod
    def decode(cls, raw: bytes) -> Judgment | None:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: Any) -> Judgment | None:
        """A judgment from its JSON form, or None if it is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("rater"), str) or not isinstance(data.get("at"), str):
            return None
        kind, rater, at = data.get("kind"), data["rater"], data["at"]
        pair = isinstance(data.get("a"), str) and isinstance(data.get("b"), str)
        if kind == "pair" and pair and data["a"] != data["b"] and data.get("winner") in ("a", "b", "tie"):
            return cls("pair", rater, at, a=data["a"], b=data["b"], winner=data["winner"])
        score = data.get("score")
        if kind == "score" and isinstance(data.get("job_id"), str) and type(score) is int and 1 <= score <= 5:
            return cls("score", rater, at, job_id=data["job_id"], score=score)
        if kind == "note" and isinstance(data.get("job_id"), str) and isinstance(data.get("text"), str):
            return cls("note", rater, at, job_id=data["job_id"], text=data["text"])
        return None


def judgments(run_dir: Path) -> Iterator[Judgment]:
    """Every judgment in the file, in the order made."""
    try:
        lines = open(run_dir / RATINGS, "rb")
    except (FileNotFoundError, NotADirectoryError):
        return
    with lines:
        for raw in lines:
            if raw.endswith(b"\n") and (judgment := Judgment.decode(raw)) is not None:
                yield judgment


def standing(*run_dirs: Path) -> list[Judgment]:
    """The judgments that stand: each rater's latest of each pair and each job, over the
    ratings of every run dir given (a judgment made later, by `at`, wins across files)."""
    made = [judgment for run_dir in run_dirs for judgment in judgments(run_dir)]
    if len(run_dirs) > 1:
        made.sort(key=lambda judgment: judgment.at)  # stable: within a file, file order
    latest: dict[tuple[str, tuple[str, ...]], Judgment] = {}
    for judgment in made:
        latest.pop((judgment.rater, judgment.subject), None)  # re-inserted last: file order kept
        latest[judgment.rater, judgment.subject] = judgment
    return list(latest.values())


def append(run_dir: Path, judgment: Judgment) -> None:
    """Add `judgment` to RUN_DIR/ratings.jsonl, on disk before this returns. Appends are
    whole lines under an exclusive lock, so two pages, or two review servers, never tear
    or interleave one; a line torn by a crash is closed first, so it costs only itself."""
    line = (json.dumps(judgment.as_json(), ensure_ascii=False) + "\n").encode()
    path = run_dir / RATINGS
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        written = 0
        while written < len(line):
            written += os.write(fd, line[written:])
        os.fsync(fd)
    finally:
        os.close(fd)  # and with it the lock
    if created:
        directory = os.open(run_dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


@dataclass(frozen=True, slots=True)
class JobMarks:
    """What the standing judgments say of each job: its mean score and its wins in pairs."""

    mean_score: dict[str, float]
    wins: Counter[str]
    judged: set[str]  # jobs that were part of a standing pair

    @classmethod
    def of(cls, standing: list[Judgment]) -> JobMarks:
        scores: defaultdict[str, list[int]] = defaultdict(list)
        wins: Counter[str] = Counter()
        judged: set[str] = set()
        for judgment in standing:
            if judgment.kind == "score" and judgment.score is not None:
                scores[judgment.job_id].append(judgment.score)
            elif judgment.kind == "pair":
                judged.update((judgment.a, judgment.b))
                if judgment.winner in ("a", "b"):
                    wins[judgment.a if judgment.winner == "a" else judgment.b] += 1
        return cls({job: sum(s) / len(s) for job, s in scores.items()}, wins, judged)
