"""Resume start-up: from `flux-batch run` starting to its first request, over 100,000 records."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.bench.bench_plan import manifest

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
        run_dir.mkdir()
        with (
            subprocess.Popen([*cli, "plan", "--json", str(source)], stdout=subprocess.PIPE, text=True) as listing,
            open(run_dir / "records.jsonl", "w", encoding="utf-8") as records,
        ):
            assert listing.stdout is not None
            for index, line in enumerate(listing.stdout):
                if index >= DONE:
                    break
                job = json.loads(line)
                ai_record = {
                    "uuid": f"{index:032x}",
                    "model": "black-forest-labs/flux-dev",
                    "type": "IMAGE_GENERATOR",
                    "status": "SUCCESS",
                    "createdAt": "2026-11-23T19:00:00.000Z",
                    "aiRecordDetail": {
                        "promptObject": job["request"]["promptObject"],
                        "resultObject": [f"development/images/2026_11_23_19_00_00_{index:012d}.webp"],
                    },
                    "temporaryUrl": "https://s3.example/asset.1min.ai/development/images/x.webp?X-Amz-Signature=" + "0" * 64,
                }
                line_out = {
                    "job_id": job["job_id"], "prompt_id": job["prompt_id"], "status": "success", "attempts": 1,
                    "axes": job["axes"], "request": job["request"], "aiRecord": ai_record,
                    "files": [f"images/{job['prompt_id']}/{job['job_id']}.webp"], "error": None,
                    "started_at": "2026-11-23T19:00:00.000Z", "finished_at": "2026-11-23T19:00:14.000Z", "elapsed_s": 14.2,
                }  # fmt: skip
                records.write(json.dumps(line_out) + "\n")
            listing.terminate()
        emulator = subprocess.Popen(
            [*cli, "emulator", "--port", "0", "--latency", "0.05,0.05", "--max-side", "16"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert emulator.stdout is not None
            url = emulator.stdout.readline().split(" listening on ")[1].split()[0]
            seconds = first_request_after(
                url,
                [*cli, "run", str(source), "--out", str(run_dir), "--base-url", url, "--max-jobs", "1", "--no-progress"],
            )
        finally:
            emulator.terminate()
            emulator.wait()
            if emulator.stdout:
                emulator.stdout.close()
    return [(f"resume over {DONE:,} records: first request after", f"{seconds:.2f} s", "< 2 s", seconds < 2)]
