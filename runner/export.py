"""A run dir as a table: one row per job of its manifest, done or not, as CSV, JSON lines or
SQLite, for a spreadsheet, pandas or the sqlite3 shell.

    job_id, prompt_id, status, <one column per axis: vars, swept and zipped fields, seed>,
    prompt, files, attempts, elapsed_s, error_kind, error_message, credits, mean_score, wins

Rows are streamed in manifest order, each joined with a compact note of what the records say of
it (no aiRecord is kept), so 100,000 jobs export in seconds and tens of megabytes. SQLite also
holds `ratings` (the judgments that stand) and `invocations` (summary.history.jsonl), with
indexes on prompt_id and status. The file is written under a temporary name, then renamed.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from runner.plan import Job, Plan
from runner.ratings import JobMarks, standing
from runner.record_file import decoded, numbered_lines, success_tail
from runner.records import SUCCESS, Record
from runner.summary import SUMMARY_HISTORY, Summary
from runner.template import render

FORMATS = ("csv", "jsonl", "sqlite")
FIXED_BEFORE = ("job_id", "prompt_id", "status")
FIXED_AFTER = ("prompt", "files", "attempts", "elapsed_s", "error_kind", "error_message", "credits", "mean_score", "wins")
_SQL_TYPES = {
    "job_id": "TEXT PRIMARY KEY", "prompt_id": "TEXT", "status": "TEXT", "prompt": "TEXT", "files": "TEXT",
    "attempts": "INTEGER", "elapsed_s": "REAL", "error_kind": "TEXT", "error_message": "TEXT", "credits": "REAL",
    "mean_score": "REAL", "wins": "INTEGER",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Fate:
    """What the records say of one job, without its aiRecord."""

    status: str
    attempts: int
    elapsed_s: float
    files: tuple[str, ...]
    error_kind: str | None
    error_message: str | None
    credits: float | None
    finished_at: str | None = None

    @classmethod
    def of(cls, record: Record) -> Fate:
        error = record.error
        kind, message = (error.kind, error.message) if error else (None, None)
        finished = record.finished_at
        return cls(record.status, record.attempts, record.elapsed_s, record.files, kind, message, record.credits, finished)

    @classmethod
    def of_success(cls, attempts: int, tail: dict[str, Any]) -> Fate:
        elapsed, credits = tail.get("elapsed_s"), tail.get("credits")
        return cls(
            SUCCESS,
            attempts,
            float(elapsed) if isinstance(elapsed, int | float) else 0.0,
            tuple(name for name in tail["files"] if isinstance(name, str)),
            None,
            None,
            float(credits) if isinstance(credits, int | float) and not isinstance(credits, bool) else None,
            str(tail["finished_at"]) if isinstance(tail.get("finished_at"), str) else None,
        )


def fates(run_dir: Path) -> dict[str, Fate]:
    """job_id -> what decides its state: its success, else its last failure, read from the
    lines as the run's index reads them, but without decoding a success's aiRecord."""
    found: dict[str, Fate] = {}
    for _, raw in numbered_lines(run_dir):
        quick = success_tail(raw)
        if quick is not None:
            job_id, attempts, tail = quick
            found[job_id] = Fate.of_success(attempts, tail)
            continue
        for record in decoded(raw):
            if not (record.job_id in found and found[record.job_id].status == SUCCESS):
                found[record.job_id] = Fate.of(record)
    return found


@dataclass(frozen=True)
class Table:
    """The rows of a run dir's export, and the columns they have."""

    plan: Plan
    run_dir: Path

    def axes(self) -> list[str]:
        """Every axis of the manifest, in its order: each prompt's vars, then sweep, zip, seed."""
        names = [name for prompt in self.plan.prompts for name, _ in prompt.spec.vars]
        names += [name for name, _ in (*self.plan.manifest.sweep, *self.plan.manifest.zip)]
        return list(dict.fromkeys([*names, "seed"]))

    def columns(self) -> list[str]:
        # An axis named like a fixed column (a var called "status") or like another axis but
        # for case (SQLite's names ignore it: "Seed" and "seed") keeps its values apart.
        taken = {name.lower() for name in (*FIXED_BEFORE, *FIXED_AFTER)}
        axes = []
        for name in self.axes():
            column, n = name, 1
            while column.lower() in taken:
                column, n = f"{name}_axis{n if n > 1 else ''}", n + 1
            taken.add(column.lower())
            axes.append(column)
        return [*FIXED_BEFORE, *axes, *FIXED_AFTER]

    def axis_types(self) -> dict[str, str]:
        """SQLite's type of each axis, from the values the manifest lists for it."""
        values: dict[str, list[Any]] = {name: [] for name in self.axes()}
        for prompt in self.plan.prompts:
            for name, listed in prompt.spec.vars:
                values[name] += listed
        for name, listed in (*self.plan.manifest.sweep, *self.plan.manifest.zip):
            values[name] += listed
        values["seed"] += list(self.plan.seeds)
        return {name: _sql_type(listed) for name, listed in values.items()}

    def rows(self) -> Iterator[list[Any]]:
        """One row per job, in manifest order; values as JSON has them (None for empty)."""
        known = fates(self.run_dir)
        marks = JobMarks.of(standing(self.run_dir))
        axes = self.axes()
        for job in self.plan.jobs():
            yield self._row(job, known.get(job.job_id), marks, axes)

    def _row(self, job: Job, fate: Fate | None, marks: JobMarks, axes: list[str]) -> list[Any]:
        wins = marks.wins.get(job.job_id, 0) if job.job_id in marks.judged else None
        return [
            job.job_id,
            job.prompt_id,
            fate.status if fate else "pending",
            *(job.axes.get(name) for name in axes),
            job.request["promptObject"]["prompt"],
            list(fate.files) if fate and fate.files else None,
            fate.attempts if fate else None,
            fate.elapsed_s if fate else None,
            fate.error_kind if fate else None,
            fate.error_message if fate else None,
            fate.credits if fate else None,
            marks.mean_score.get(job.job_id),
            wins,
        ]


def export(table: Table, form: str, target: str) -> int:
    """Write `table` as `form` to `target` ("-" for standard output); the number of rows."""
    if form not in FORMATS:
        raise ValueError(f"unknown format {form!r}")
    if target == "-":
        if form == "sqlite":
            raise ValueError("SQLite cannot go to standard output: give -o FILE")
        return _write(table, form, sys.stdout)
    path = Path(target)
    temp = path.with_name(f".partial-{path.name}")
    try:
        if form == "sqlite":
            temp.unlink(missing_ok=True)
            count = _sqlite(table, temp)
        else:
            with open(temp, "w", encoding="utf-8", newline="") as out:
                count = _write(table, form, out)
                out.flush()
                os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return count


def _write(table: Table, form: str, out: IO[str]) -> int:
    columns = table.columns()
    count = 0
    if form == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in table.rows():
            writer.writerow([_cell(value) for value in row])
            count += 1
    else:
        for row in table.rows():
            out.write(json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False) + "\n")
            count += 1
    out.flush()
    return count


_FORMULA_STARTS = frozenset("=+-@\t\r")


def _cell(value: Any) -> str:
    """A value as a CSV cell: booleans and numbers as YAML writes them, texts as they are, but
    a text a spreadsheet would run as a formula (a prompt or an API's message starting "=")
    is quoted with a leading apostrophe, as spreadsheets themselves mark literal text."""
    kind = type(value)  # the common kinds first, by identity: 1.6 million cells at 100,000 jobs
    if kind is str:
        text: str = value
        return "'" + text if text[:1] in _FORMULA_STARTS else text
    if value is None:
        return ""
    if kind is int:
        return str(value)
    if kind is list:
        return " ".join(map(str, value))
    return render(value)


def _sqlite(table: Table, path: Path) -> int:
    columns = table.columns()
    types = {**_SQL_TYPES, **{name: table.axis_types()[axis] for name, axis in zip(columns[3:], table.axes(), strict=False)}}
    database = sqlite3.connect(path)
    try:
        # No journal and no syncs while it fills: the file is a temporary one, renamed only once
        # complete and synced below, so a crash leaves no database to be half-trusted.
        database.execute("PRAGMA journal_mode = OFF")
        database.execute("PRAGMA synchronous = OFF")
        with database:
            spec = ", ".join(f'"{name}" {types[name]}' for name in columns)
            database.execute(f"CREATE TABLE jobs ({spec})")
            marks = ", ".join("?" * len(columns))
            files = columns.index("files")
            database.executemany(f"INSERT INTO jobs VALUES ({marks})", _with_files_as_json(table.rows(), files))
            database.execute("CREATE INDEX jobs_prompt_id ON jobs (prompt_id)")
            database.execute("CREATE INDEX jobs_status ON jobs (status)")
            database.execute(
                "CREATE TABLE ratings (kind TEXT, a TEXT, b TEXT, winner TEXT, job_id TEXT, score INTEGER, text TEXT, "
                "rater TEXT, at TEXT)"
            )
            database.executemany(
                "INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((j.kind, j.a or None, j.b or None, j.winner or None, j.job_id or None, j.score, j.text or None, j.rater, j.at)
                 for j in standing(table.run_dir)),
            )  # fmt: skip
            database.execute(
                "CREATE TABLE invocations (started_at TEXT, finished_at TEXT, wall_s REAL, total INTEGER, done INTEGER, "
                "submitted INTEGER, succeeded INTEGER, failed INTEGER, credits_spent REAL, stopped TEXT, stop_message TEXT)"
            )
            database.executemany("INSERT INTO invocations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _invocations(table.run_dir))
        count: int = database.execute("SELECT count(*) FROM jobs").fetchone()[0]
    finally:
        database.close()
    with open(path, "rb") as done:
        os.fsync(done.fileno())
    return count


def _with_files_as_json(rows: Iterator[list[Any]], files: int) -> Iterator[list[Any]]:
    for row in rows:
        if row[files] is not None:
            row[files] = json.dumps(row[files])
        yield row


def _invocations(run_dir: Path) -> Iterator[tuple[Any, ...]]:
    try:
        lines = (run_dir / SUMMARY_HISTORY).read_text(encoding="utf-8").splitlines()
    except OSError:
        return
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            s = Summary.from_json(data)
            stop = (s.stopped.reason, s.stopped.message) if s.stopped else (None, None)
            yield (s.started_at, s.finished_at, s.wall_s, s.jobs.total, s.jobs.done, s.jobs.submitted, s.jobs.succeeded,
                   s.jobs.failed, s.credits_spent, *stop)  # fmt: skip


def _sql_type(values: list[Any]) -> str:
    if values and all(isinstance(v, bool) for v in values):
        return "INTEGER"  # SQLite keeps true and false as 1 and 0
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INTEGER"
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "REAL"
    return "TEXT"
