"""Plan at scale: time and peak memory of `flux-batch plan`, each run in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 3


def manifest(path: Path, seeds: int) -> Path:
    """4 arms x 5 subjects x 10 guidance x 10 steps x `seeds` seeds (seeds=50: 100,000 jobs)."""
    subjects = ["fox", "owl", "heron", "lynx", "otter"]
    arms = "".join(
        f"  - id: arm{i}\n    prompt: 'style {i}: a {{subject}} in the snow'\n    vars: {{subject: {subjects}}}\n"
        for i in range(4)
    )
    path.write_text(
        "version: 1\nname: bench\ndefaults: {aspect_ratio: '1:1', megapixels: 1, output_quality: 80}\n"
        f"prompts:\n{arms}sweep:\n  guidance: {[1 + i / 2 for i in range(10)]}\n"
        f"  num_inference_steps: {list(range(5, 51, 5))}\nrepeats: {seeds}\n",
        encoding="utf-8",
    )
    return path


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
        run_dir.mkdir()
        # Streamed line by line: a child's peak RSS includes this process's own memory at
        # fork time (Linux carries ru_maxrss across exec), so this process must stay small.
        with (
            subprocess.Popen([*cli, "plan", "--json", str(small)], stdout=subprocess.PIPE, text=True) as listing,
            open(run_dir / "records.jsonl", "w", encoding="utf-8") as records,
        ):
            assert listing.stdout is not None
            for index, line in enumerate(listing.stdout):
                if index % 2 == 0:
                    job = json.loads(line)
                    records.write(json.dumps({**job, "status": "success", "aiRecord": {}, "files": []}) + "\n")

        _, floor_mem = measure([sys.executable, "-c", "pass"])
        plan_time, plan_mem = best([*cli, "plan", str(small), "--out", str(Path(tmp) / "empty")])
        held_time, held_mem = best([*cli, "plan", str(small), "--out", str(run_dir)])
        json_time, json_mem = best([*cli, "plan", "--json", str(small)])
        huge_time, huge_mem = measure([*cli, "plan", "--json", str(huge)])
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
    ]
