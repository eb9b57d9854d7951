"""`flux-batch review` and `flux-batch verdict`: judging a run's images, and what the judgments say."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import sys
import threading
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

from runner.arms import RunSet
from runner.errors import EXIT_OK, UsageError
from runner.ratings import RATINGS, standing
from runner.verdict import verdict
from runner.words import plural, printable

if TYPE_CHECKING:
    from runner.review_server import Review

MAX_RATER = 64


def verdict_command(args: argparse.Namespace) -> int:
    run_dirs = [Path(name) for name in args.run_dirs]
    found = verdict(RunSet(run_dirs, args.max_grid), standing(*run_dirs), by_rater=args.by_rater)
    if args.json:
        print(json.dumps(found.as_json(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(printable(line) for line in found.words()))
    return EXIT_OK


def review_command(args: argparse.Namespace) -> int:
    from runner.review_server import Review  # the network stack, only for the verb that serves

    rater = args.rater or _login_name()
    if not rater or len(rater) > MAX_RATER or printable(rater) != rater:
        raise UsageError(f"--rater is a name of 1 to {MAX_RATER} printable characters")
    runs = RunSet([Path(name) for name in args.run_dirs], args.max_grid)
    review = Review(runs, rater)
    return asyncio.run(_serve(review, args.port, not args.no_open))


async def _serve(review: Review, port: int, open_page: bool) -> int:
    try:
        runner, url = await review.start(port)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; try --port 0") from None
    runs = review.runs
    print(url, flush=True)
    where = ", ".join(str(run_dir / RATINGS) for run_dir in runs.run_dirs)
    print(
        f"reviewing {plural(len(runs.shots), 'image')} of {plural(len(runs.arms), 'arm')} as {review.rater}; "
        f"judgments go to {where}; Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    if open_page and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(number, stopped.set)
    try:
        await stopped.wait()
    finally:
        await runner.cleanup()
    return EXIT_OK


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container, say)
        return "reviewer"
