"""What the benchmarks share: a manifest of a given size, and a run dir that holds part of it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


def write_records(source: Path, run_dir: Path, done: Callable[[int], bool], images: bool = True) -> None:
    """Fill run_dir/records.jsonl with success lines, as flux-batch writes them, for the jobs
    whose index in manifest order satisfies `done`, and (with `images`) put a small file where
    each line says its image is, as in a real run dir: a resume fetches missing images again.

    Streamed line by line: a child's peak RSS includes this process's own memory at fork time
    (Linux carries ru_maxrss across exec), so the benchmarking process must stay small.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    listing_argv = [sys.executable, "-m", "runner", "plan", "--json", str(source)]
    with (
        subprocess.Popen(listing_argv, stdout=subprocess.PIPE, text=True) as listing,
        open(run_dir / "records.jsonl", "w", encoding="utf-8") as records,
    ):
        assert listing.stdout is not None
        for index, line in enumerate(listing.stdout):
            if not done(index):
                continue
            job = json.loads(line)
            records.write(json.dumps(_success_line(job, index)) + "\n")
            if images:
                folder = run_dir / "images" / job["prompt_id"]
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{job['job_id']}.webp").write_bytes(_TINY_WEBP)


_TINY_WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"


def _success_line(job: dict[str, Any], index: int) -> dict[str, Any]:
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
    return {
        "job_id": job["job_id"], "prompt_id": job["prompt_id"], "status": "success", "attempts": 1,
        "axes": job["axes"], "request": job["request"], "aiRecord": ai_record,
        "files": [f"images/{job['prompt_id']}/{job['job_id']}.webp"], "error": None,
        "started_at": "2026-11-23T19:00:00.000Z", "finished_at": "2026-11-23T19:00:14.000Z", "elapsed_s": 14.2,
    }  # fmt: skip
