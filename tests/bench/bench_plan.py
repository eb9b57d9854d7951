"""Plan at scale: time and peak memory of `flux-batch plan`, each run in a fresh process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.fixtures import manifest, write_records

RUNS = 3


def measure(argv: list[str], stdout: int | None = subprocess.DEVNULL) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one run of `argv` in its own process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024


def best(argv: list[str]) -> tuple[float, float]:
    runs = [measure(argv) for _ in range(RUNS)]
    return min(t for t, _ in runs), max(m for _, m in runs)


def run() -> list[tuple[str, str, str, bool]]:
    cli = [sys.executable, "-m", "runner"]
    with tempfile.TemporaryDirectory() as tmp:
        small = manifest(Path(tmp) / "100k.yaml", seeds=50)
        huge = manifest(Path(tmp) / "1m.yaml", seeds=500)
        # A run dir holding half the jobs, as a resumed overnight batch would.
        run_dir = Path(tmp) / "run"
        write_records(small, run_dir, done=lambda index: index % 2 == 0)

        _, floor_mem = measure([sys.executable, "-c", "pass"])
        plan_time, plan_mem = best([*cli, "plan", str(small), "--out", str(Path(tmp) / "empty")])
        held_time, held_mem = best([*cli, "plan", str(small), "--out", str(run_dir)])
        json_time, json_mem = best([*cli, "plan", "--json", str(small)])
        huge_time, huge_mem = measure([*cli, "plan", "--json", str(huge)])
        shutil.copy(small, run_dir / "manifest.yaml")  # as `run` leaves it: its own copy of the manifest
        csv_time, csv_mem = best([*cli, "export", str(run_dir), "-o", str(Path(tmp) / "jobs.csv")])
        db_time, db_mem = best([*cli, "export", str(run_dir), "--format", "sqlite", "-o", str(Path(tmp) / "jobs.db")])
    return [
        ("floor: a bare python process", f"{floor_mem:.0f} MB", "", True),
        (
            "plan, 100,000 jobs",
            f"{plan_time:.2f} s, {plan_mem:.0f} MB",
            "< 2 s, < 150 MB",
            plan_time < 2 and plan_mem < 150,
        ),
        (
            "plan --out (50,000 done), 100,000 jobs",
            f"{held_time:.2f} s, {held_mem:.0f} MB",
            "< 2 s, < 150 MB",
            held_time < 2 and held_mem < 150,
        ),
        ("plan --json, 100,000 jobs", f"{json_time:.2f} s, {json_mem:.0f} MB", "< 150 MB", json_mem < 150),
        ("plan --json, 1,000,000 jobs", f"{huge_time:.1f} s, {huge_mem:.0f} MB", "< 300 MB", huge_mem < 300),
        (
            "export csv (50,000 done), 100,000 jobs",
            f"{csv_time:.2f} s, {csv_mem:.0f} MB",
            "< 10 s, < 200 MB",
            csv_time < 10 and csv_mem < 200,
        ),
        (
            "export sqlite (50,000 done), 100,000 jobs",
            f"{db_time:.2f} s, {db_mem:.0f} MB",
            "< 10 s, < 200 MB",
            db_time < 10 and db_mem < 200,
        ),
    ]
