"""The end of a run: how long it goes on after its last job, making the report's thumbnails.

Two runs of the same jobs against the emulator, whose pictures are full-sized (a megapixel,
about 25 ms each to make into a thumbnail; a photograph takes about 60 ms), paced at 20
requests a second as a real account might be:
- a run as it is by default: its thumbnails are made as the pictures land, and its end is the
  time from its last job's records line to the process's exit (the report included);
- a run with `--no-report`, then `flux-batch report` of its run dir: every thumbnail left to
  the end, as before, and its end is the report's whole time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

JOBS = 400
PER_MINUTE = 1200


def manifest(path: Path) -> Path:
    path.write_text(
        "version: 1\nname: thumbs\ndefaults: {megapixels: 1, aspect_ratio: '1:1'}\n"
        f"prompts:\n  - {{id: p, prompt: 'a full-sized picture'}}\nrepeats: {JOBS}\nseed_base: 7\n",
        encoding="utf-8",
    )
    return path


def last_line_at(run_dir: Path) -> float:
    """When the last records line of `run_dir` was finished, in seconds since the epoch."""
    with open(run_dir / "records.jsonl", encoding="utf-8") as lines:
        finished = max(json.loads(line)["finished_at"] for line in lines)
    return datetime.fromisoformat(finished.replace("Z", "+00:00")).timestamp()


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def run() -> list[tuple[str, str, str, bool]]:
    cli = [sys.executable, "-m", "runner"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = manifest(root / "thumbs.yaml")
        emulator = subprocess.Popen([*cli, "emulator", "--port", "0", "--latency", "0.5,0.5"], stdout=subprocess.PIPE, text=True)
        try:
            assert emulator.stdout is not None
            url = emulator.stdout.readline().split(" listening on ")[1].split()[0]
            flags = ["--base-url", url, "--no-progress", "--concurrency", "16", "--requests-per-minute", str(PER_MINUTE)]
            timed([*cli, "run", str(source), "--out", str(root / "early"), *flags])
            early_end = time.time() - last_line_at(root / "early")
            timed([*cli, "run", str(source), "--out", str(root / "late"), *flags, "--no-report"])
            late_end = timed([*cli, "report", str(root / "late")])
        finally:
            emulator.terminate()
            emulator.wait()
            if emulator.stdout:
                emulator.stdout.close()
    what = f"end of a run of {JOBS} one-megapixel pictures at {PER_MINUTE}/min"
    return [
        (f"{what}, thumbnails made as they land", f"{early_end:.2f} s", "(reported)", True),
        (f"{what}, thumbnails left to the report", f"{late_end:.2f} s", "(reported)", True),
    ]
