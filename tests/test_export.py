"""`flux-batch export` (runner/export.py): one row per job, as CSV, JSON lines or SQLite, read
back with the standard library's own readers."""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.bench.fixtures import manifest as bench_manifest
from tests.bench.fixtures import write_records
from tests.conftest import Cli, EmulatorProcesses, records, run_cli, write
from tests.support import peak_memory

SWEEP = """\
version: 1
name: sweep
prompts:
  - id: fox
    prompt: "a {colour} fox"
    vars: {colour: [red, "=HYPERLINK(1)"]}
sweep:
  guidance: [2.5, 3.5]
  num_inference_steps: [20, 28]
seeds: [1, 2]
run: {credits_per_image: 0.5, concurrency: 1}
"""
COLUMNS = [
    "job_id", "prompt_id", "status", "colour", "guidance", "num_inference_steps", "seed",
    "prompt", "files", "attempts", "elapsed_s", "error_kind", "error_message", "credits", "mean_score", "wins",
]  # fmt: skip


@pytest.fixture
def sweep_run(cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses) -> Path:
    """16 jobs: 12 sent, of which some were refused for good; 4 pending."""
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32", "--refuse", "0.3", "--seed", "1")
    manifest = write(tmp_path / "m.yaml", SWEEP)
    assert run_cli(cli, manifest, served.url, "--max-jobs", "12").code == 3
    return tmp_path / "output" / "sweep"


def test_csv_has_a_row_per_job_with_its_axes_and_its_fate(cli: Cli, sweep_run: Path) -> None:
    result = cli("export", str(sweep_run))
    assert result.code == 0 and f"exported 16 jobs of {sweep_run} to {sweep_run / 'export.csv'}" in result.out
    with open(sweep_run / "export.csv", newline="", encoding="utf-8") as table:
        rows = list(csv.DictReader(table))
    assert list(rows[0]) == COLUMNS and len(rows) == 16
    status = json.loads(cli("status", str(sweep_run), "--json").out)
    by_status = {name: sum(row["status"] == name for row in rows) for name in ("success", "failed", "pending")}
    assert by_status == {"success": status["done"], "failed": status["failed"], "pending": status["pending"]}
    assert by_status["failed"] >= 1 and by_status["pending"] == 4
    lines = {line["job_id"]: line for line in records(sweep_run)}
    for row in rows:
        line = lines.get(row["job_id"])
        assert {row["guidance"], row["num_inference_steps"], row["seed"]} <= {"2.5", "3.5", "20", "28", "1", "2"}
        if row["status"] == "success":
            assert line is not None and row["files"] == line["files"][0] and row["credits"] == "0.5"
            assert row["attempts"] == str(line["attempts"]) and float(row["elapsed_s"]) == line["elapsed_s"]
        elif row["status"] == "failed":
            assert line is not None and row["error_kind"] == line["error"]["kind"] and row["error_message"]
        else:
            assert line is None and row["files"] == row["attempts"] == row["credits"] == ""
    # A text a spreadsheet would run as a formula is marked as text; the prompt keeps its words.
    assert {row["colour"] for row in rows} == {"red", "'=HYPERLINK(1)"}
    assert {row["prompt"] for row in rows} == {"a red fox", "a =HYPERLINK(1) fox"}


def test_sqlite_has_typed_axes_indexes_ratings_and_invocations(cli: Cli, sweep_run: Path, tmp_path: Path) -> None:
    first = records(sweep_run)[0]["job_id"]
    write(
        sweep_run / "ratings.jsonl",
        f'{{"kind": "score", "job_id": "{first}", "score": 2, "rater": "ann", "at": "2026-12-03T07:00:00Z"}}\n'
        f'{{"kind": "score", "job_id": "{first}", "score": 5, "rater": "bob", "at": "2026-12-03T07:01:00Z"}}\n'
        f'{{"kind": "score", "job_id": "{first}", "score": 4, "rater": "ann", "at": "2026-12-03T07:02:00Z"}}\n'
        "not a judgment\n",
    )
    result = cli("export", str(sweep_run), "--format", "sqlite", "-o", str(tmp_path / "night.db"))
    assert result.code == 0, result.err
    database = sqlite3.connect(tmp_path / "night.db")
    declared = {name: kind for _, name, kind, *_ in database.execute("PRAGMA table_info(jobs)")}
    assert list(declared) == COLUMNS
    assert (declared["guidance"], declared["num_inference_steps"], declared["seed"], declared["colour"]) == (
        "REAL", "INTEGER", "INTEGER", "TEXT",
    )  # fmt: skip
    stored = database.execute("SELECT DISTINCT typeof(guidance), typeof(num_inference_steps), typeof(seed) FROM jobs")
    assert stored.fetchall() == [("real", "integer", "integer")]
    assert database.execute("SELECT colour FROM jobs WHERE colour LIKE '=%' LIMIT 1").fetchone() == ("=HYPERLINK(1)",)
    done = database.execute("SELECT count(*), sum(credits) FROM jobs WHERE status = 'success'").fetchone()
    assert done == (json.loads(cli("status", str(sweep_run), "--json").out)["done"], done[0] * 0.5)
    by_guidance = dict(database.execute("SELECT guidance, count(*) FROM jobs GROUP BY guidance"))
    assert by_guidance == {2.5: 8, 3.5: 8}
    # ann judged again: her 4 stands, with bob's 5.
    assert database.execute("SELECT mean_score FROM jobs WHERE job_id = ?", (first,)).fetchone() == (4.5,)
    assert database.execute("SELECT count(*) FROM ratings").fetchone() == (2,)
    invocation = database.execute("SELECT succeeded, failed, credits_spent, stopped FROM invocations").fetchall()
    assert invocation == [(done[0], 12 - done[0], done[1], "max_jobs")]
    indexes = {name for (name,) in database.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"jobs_prompt_id", "jobs_status"} <= indexes
    files = database.execute("SELECT files FROM jobs WHERE status = 'success' LIMIT 1").fetchone()[0]
    assert json.loads(files)[0].startswith("images/fox/")


def test_jsonl_to_standard_output_and_its_limits(cli: Cli, sweep_run: Path, tmp_path: Path) -> None:
    result = cli("export", str(sweep_run), "--format", "jsonl", "-o", "-")
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert result.code == 0 and len(rows) == 16 and "exported 16 jobs" in result.err
    assert list(rows[0]) == COLUMNS
    assert {type(row["guidance"]) for row in rows} == {float} and {type(row["seed"]) for row in rows} == {int}

    refused = cli("export", str(sweep_run), "--format", "sqlite", "-o", "-")
    assert refused.code == 2 and "SQLite cannot go to standard output" in refused.err

    # A target that cannot be written: a clear line, exit 2, and no partial file left behind.
    (tmp_path / "taken.csv").mkdir()
    blocked = cli("export", str(sweep_run), "-o", str(tmp_path / "taken.csv"))
    assert blocked.code == 2 and f"cannot write {tmp_path / 'taken.csv'}" in blocked.err
    assert not list(tmp_path.glob(".partial-*"))
    assert cli("export", str(tmp_path / "nowhere")).code == 2


def test_an_export_replaces_the_old_one_whole(cli: Cli, sweep_run: Path) -> None:
    (sweep_run / "export.csv").write_text("an export of yesterday\n", encoding="utf-8")
    assert cli("export", str(sweep_run)).code == 0
    text = (sweep_run / "export.csv").read_text(encoding="utf-8")
    assert text.startswith("job_id,") and len(text.splitlines()) == 17
    assert not list(sweep_run.glob(".partial-*"))


def test_an_axis_named_like_a_column_keeps_its_own_column(cli: Cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write(
        run_dir / "manifest.yaml",
        "version: 1\nname: n\nprompts:\n  - id: p\n    prompt: 'a {status} {Seed}'\n"
        "    vars: {status: [calm], Seed: [x]}\nseeds: [3]\n",
    )
    assert cli("export", str(run_dir), "--format", "sqlite").code == 0
    database = sqlite3.connect(run_dir / "export.db")
    row = database.execute("SELECT status, status_axis, Seed, seed_axis FROM jobs").fetchone()
    assert row == ("pending", "calm", "x", 3)


def test_export_of_100000_jobs_stays_small(tmp_path: Path) -> None:
    source = bench_manifest(tmp_path / "100k.yaml", seeds=50)
    run_dir = tmp_path / "run"
    write_records(source, run_dir, done=lambda index: index % 2 == 0, images=False)
    (run_dir / "manifest.yaml").write_text(source.read_text())
    argv = [sys.executable, "-m", "runner", "export", str(run_dir), "--format", "sqlite"]
    code, err, peak_kb = peak_memory(argv, tmp_path)
    assert code == 0, err
    assert peak_kb < 200 * 1024, f"peak {peak_kb // 1024} MB"
    database = sqlite3.connect(run_dir / "export.db")
    counts = dict(database.execute("SELECT status, count(*) FROM jobs GROUP BY status"))
    assert counts == {"success": 50_000, "pending": 50_000}
