"""Deciding at scale: a 2,000-image run dir opened in `review` (until the page and its first
pair are served) and tallied by `verdict`, each in a fresh process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.bench.fixtures import manifest, write_records

RUNS = 3


def _judgments(run_dir: Path) -> None:
    """A pair vote for each setting's first two arms, and a score for half the images."""
    lines = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    by_setting: dict[str, list[str]] = {}
    for line in lines:
        by_setting.setdefault(json.dumps(line["axes"], sort_keys=True), []).append(line["job_id"])
    with open(run_dir / "ratings.jsonl", "w") as out:
        for n, jobs in enumerate(by_setting.values()):
            vote = {
                "kind": "pair",
                "a": jobs[0],
                "b": jobs[1],
                "winner": "b" if n % 3 == 0 else "a",
                "rater": "ann",
                "at": f"t{n:05d}",
            }
            out.write(json.dumps(vote) + "\n")
        for n, line in enumerate(lines[::2]):
            out.write(
                json.dumps({"kind": "score", "job_id": line["job_id"], "score": 1 + n % 5, "rater": "ann", "at": "u"}) + "\n"
            )


def _review_opens(run_dir: Path) -> float:
    started = time.perf_counter()
    command = [sys.executable, "-m", "runner", "review", str(run_dir), "--no-open"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        with urllib.request.urlopen(url, timeout=30) as page:
            page.read()
        with urllib.request.urlopen(url + "api/pair", timeout=30) as pair:
            json.loads(pair.read())
        return time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=20)


def _verdict(run_dir: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "runner", "verdict", str(run_dir)], check=True, capture_output=True)
    return time.perf_counter() - started


def run() -> list[tuple[str, str, str, bool]]:
    with tempfile.TemporaryDirectory() as tmp:
        source = manifest(Path(tmp) / "2k.yaml", seeds=1)  # 4 arms x 500 settings = 2,000 images
        run_dir = Path(tmp) / "run"
        write_records(source, run_dir, done=lambda index: True)
        shutil.copy(source, run_dir / "manifest.yaml")
        _judgments(run_dir)
        review = min(_review_opens(run_dir) for _ in range(RUNS))
        tally = min(_verdict(run_dir) for _ in range(RUNS))
    return [
        ("review opens, 2,000 images (page + first pair)", f"{review:.2f} s", "< 2 s", review < 2),
        ("verdict, 2,000 images, 1,500 judgments", f"{tally:.2f} s", "< 1 s", tally < 1),
    ]
