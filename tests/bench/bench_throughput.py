"""Throughput: flux-batch against the minimal client, same emulator, same 2,000 jobs.

`run` is timed with --no-report, since the minimal client writes no report; writing the
report of the same run dir is timed as a row of its own.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOBS = 2000
LEVELS = ((16, None), (64, 0.95), (256, 0.80))  # concurrency, the target ratio to the minimal client
RUNS = 5  # best of five: a run's floor, not its luck; both clients get the same


def manifest(path: Path) -> Path:
    guidance = [round(0.5 + i * 0.25, 2) for i in range(40)]
    path.write_text(
        "version: 1\nname: bench\ndefaults: {megapixels: 0.25, aspect_ratio: '1:1'}\n"
        "prompts:\n  - {id: p, prompt: 'a benchmark picture'}\n"
        f"sweep:\n  guidance: {guidance}\n  num_inference_steps: {list(range(1, 51))}\nseeds: [1]\n",
        encoding="utf-8",
    )
    return path


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run() -> list[tuple[str, str, str, bool]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = manifest(root / "bench.yaml")
        listing = root / "jobs.jsonl"
        with open(listing, "w") as out:
            subprocess.run([sys.executable, "-m", "runner", "plan", "--json", str(source)], stdout=out, check=True)
        emulator = subprocess.Popen(
            [sys.executable, "-m", "runner", "emulator", "--port", "0", "--latency", "0.05,0.05", "--max-side", "16"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert emulator.stdout is not None
            url = emulator.stdout.readline().split(" listening on ")[1].split()[0]
            for concurrency, target in LEVELS:
                ours: list[float] = []
                theirs: list[float] = []
                cpu: list[float] = []
                their_cpu: list[float] = []
                for attempt in range(RUNS):
                    run_dir = root / f"c{concurrency}-{attempt}"
                    level = str(concurrency)
                    baseline = [sys.executable, "-m", "tests.bench.baseline", url, str(listing), level, str(run_dir / "b")]
                    runner = [sys.executable, "-m", "runner", "run", str(source), "--base-url", url, "--out", str(run_dir / "f"),
                              "--concurrency", level, "--no-progress", "--no-report"]  # fmt: skip
                    # Each goes first in turn, and each starts with no dirty pages of the other's
                    # files: flux-batch syncs its images to disk, and would otherwise pay for
                    # writing back the minimal client's too.
                    pair = [(baseline, theirs, their_cpu), (runner, ours, cpu)]
                    if attempt % 2:
                        pair.reverse()
                    for argv, walls, cpus in pair:
                        os.sync()
                        wall, used = timed(argv)
                        walls.append(wall)
                        cpus.append(used)
                ratio = min(theirs) / min(ours)
                ok = target is None or ratio >= target
                rows.append(
                    (
                        f"run {JOBS} jobs, concurrency {concurrency}",
                        f"{min(ours):.2f} s vs {min(theirs):.2f} s = {ratio:.3f}",
                        f">= {target} of baseline" if target else "(reported)",
                        ok,
                    )
                )
                per_job = f"{min(cpu) / JOBS * 1000:.2f} ms vs {min(their_cpu) / JOBS * 1000:.2f} ms"
                rows.append((f"  CPU per job (with its writer process), concurrency {concurrency}", per_job, "", True))
            # The report is written at the end of `run` unless --no-report; timed on its own.
            report_wall, _ = timed([sys.executable, "-m", "runner", "report", str(root / f"c{LEVELS[-1][0]}-0" / "f")])
            rows.append((f"report of a {JOBS}-image run dir (thumbnails made)", f"{report_wall:.2f} s", "(reported)", True))
        finally:
            emulator.terminate()
            emulator.wait()
            if emulator.stdout:
                emulator.stdout.close()
    return rows
