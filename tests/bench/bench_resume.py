"""Resume start-up: from `flux-batch run` starting to its first request, over 100,000 records."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.bench.fixtures import manifest, write_records

DONE = 100_000


def first_request_after(url: str, argv: list[str]) -> float:
    """Seconds from starting `argv` until the emulator has seen a generation request."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - start < 60:
            with urllib.request.urlopen(f"{url}/__stats", timeout=5) as answer:
                if json.loads(answer.read())["requests"].get("features"):
                    return time.perf_counter() - start
            time.sleep(0.005)
        raise RuntimeError("no request within 60 s")
    finally:
        process.wait(timeout=60)
        if process.stderr:
            process.stderr.close()


def run() -> list[tuple[str, str, str, bool]]:
    cli = [sys.executable, "-m", "runner"]
    with tempfile.TemporaryDirectory() as tmp:
        source = manifest(Path(tmp) / "m.yaml", seeds=51)  # 102,000 jobs, 100,000 of them done
        run_dir = Path(tmp) / "run"
        write_records(source, run_dir, done=lambda index: index < DONE)
        emulator = subprocess.Popen(
            [*cli, "emulator", "--port", "0", "--latency", "0.05,0.05", "--max-side", "16"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert emulator.stdout is not None
            url = emulator.stdout.readline().split(" listening on ")[1].split()[0]
            seconds = first_request_after(
                url,
                [
                    *cli,
                    "run",
                    str(source),
                    "--out",
                    str(run_dir),
                    "--base-url",
                    url,
                    "--max-jobs",
                    "1",
                    "--no-progress",
                    "--no-report",
                ],
            )
        finally:
            emulator.terminate()
            emulator.wait()
            if emulator.stdout:
                emulator.stdout.close()
    return [(f"resume over {DONE:,} records: first request after", f"{seconds:.2f} s", "< 2 s", seconds < 2)]
