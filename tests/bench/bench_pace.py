"""Rate limits: flux-batch against an emulator that allows R requests a minute.

The emulator is a token bucket of R a minute with a burst of 10, as APIs are, and answers 429
with a Retry-After in whole seconds past it. A run either is told R (`--requests-per-minute`)
or is told nothing and learns it. The emulator counts what its limit let through, from the
first such request to the last; what was allowed over that time is 1 + R x (last - first) / 60
(the sustained rate; a burst is a loan, not a rate). "Through" is their ratio, and "429" the
share of the run's generation requests that were answered 429.

Each level runs for a fixed time, with more jobs than it can send: the run is stopped by
`--deadline`, as an overnight run would be. The slowest level runs ten minutes, so that it too
sends some hundreds of requests: what a run told nothing pays to find a limit is a fixed count
of 429s, not a share (its first requests go out at once, 16 against a burst of 10, and a
measure of the limit takes one or two more), and over four minutes at 60 a minute those alone
are 3% of what it sends.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

LEVELS = ((60, 600), (600, 120), (3000, 120))  # requests a minute, seconds of running
AGAIN = 60  # seconds of a second run at the slowest level, starting at the pace it learned
BURST = 10
TOLD, LEARNED = 0.97, 0.93  # the targets: share of the allowed requests that get through
MOST_429 = 0.03  # of its requests, for a run told nothing


def manifest(path: Path, jobs: int) -> Path:
    path.write_text(
        "version: 1\nname: pace\ndefaults: {megapixels: 0.25, aspect_ratio: '1:1'}\n"
        "prompts:\n  - {id: p, prompt: 'a paced picture'}\n"
        f"repeats: {jobs}\nseed_base: 7\n",
        encoding="utf-8",
    )
    return path


def measure(rate: int, seconds: int, told: bool, root: Path, again: int = 0) -> list[dict[str, float]]:
    """A run against a fresh emulator: the share of allowed requests through, of 429s; with
    `again`, a second run of that many seconds into the same run dir against the same server,
    once its bucket is full again, as the next night would find it."""
    emulator = subprocess.Popen(
        [sys.executable, "-m", "runner", "emulator", "--port", "0", "--latency", "0.05,0.15", "--max-side", "16"]
        + ["--requests-per-minute", str(rate), "--rate-burst", str(BURST)],
        stdout=subprocess.PIPE,
        text=True,
    )
    figures = []
    try:
        assert emulator.stdout is not None
        url = emulator.stdout.readline().split(" listening on ")[1].split()[0]
        work = root / f"{rate}-{'told' if told else 'learned'}"
        work.mkdir()
        source = manifest(work / "pace.yaml", min(10_000, rate * (seconds + again) // 60 + 500))
        before: dict[str, float] = {"let_through": 0, "429": 0, "features": 0}
        for n, length in enumerate([seconds, again] if again else [seconds]):
            if n:
                time.sleep(BURST * 60 / rate)  # the bucket fills up again between two nights
            argv = [sys.executable, "-m", "runner", "run", str(source), "--base-url", url, "--out", str(work / "out")]
            argv += ["--concurrency", "16", "--no-progress", "--no-report", "--deadline", f"{length}s"]
            argv += ["--requests-per-minute", str(rate)] if told else []
            env = {"ONEMIN_API_KEY": "emulator-key", "PATH": "/usr/bin:/bin"}
            subprocess.run(argv, capture_output=True, env=env, check=False)
            with urllib.request.urlopen(f"{url}/__stats") as answer:
                stats = json.load(answer)
            now = {
                "let_through": stats["let_through"],
                "429": stats["statuses"].get("429", 0),
                "features": stats["requests"].get("features", 0),
            }
            # The first run: from the first request let through to the last. A second: over its
            # deadline, a little more than it sent for (it starts up first): never flattering.
            window = stats["let_through_s"] if not n else length
            requests = now["features"] - before["features"]
            figures.append({
                "through": (now["let_through"] - before["let_through"]) / (1 + rate * window / 60),
                "429": (now["429"] - before["429"]) / max(1, requests),
                "requests": requests,
            })  # fmt: skip
            before = now
    finally:
        emulator.terminate()
        emulator.wait()
    return figures


def told_run(rate: int, seconds: int, root: Path) -> list[dict[str, float]]:
    return measure(rate, seconds, True, root)


def learned(rate: int, seconds: int, root: Path) -> list[dict[str, float]]:
    """A run told nothing; at the slowest level, then the next night's, which starts at the
    pace the first one learned."""
    return measure(rate, seconds, False, root, AGAIN if rate == LEVELS[0][0] else 0)


def run() -> list[tuple[str, str, str, bool]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(6) as pool:
        # All at once: each is held to its rate, so they share two cores with room to spare.
        root = Path(tmp)
        futures: dict[tuple[int, bool], Future[list[dict[str, float]]]] = {}
        for rate, seconds in LEVELS:
            futures[(rate, True)] = pool.submit(told_run, rate, seconds, root)
            futures[(rate, False)] = pool.submit(learned, rate, seconds, root)
        for (rate, told), future in futures.items():
            for n, got in enumerate(future.result()):
                if told:
                    ok = got["through"] >= TOLD and got["429"] == 0
                    target = f">= {TOLD} and no 429"
                else:
                    ok = got["through"] >= LEARNED and got["429"] <= MOST_429
                    target = f">= {LEARNED}, <= {MOST_429:.0%} 429"
                name = f"rate limit {rate}/min, {'told' if told else 'learned'}" + (", next run" if n else "")
                rows.append((name, f"{got['through']:.3f}, {got['429']:.1%} 429", target, ok))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
