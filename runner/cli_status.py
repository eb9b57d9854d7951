"""`flux-batch status`, `runs` and `report`: what run dirs hold, read from them alone."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runner.errors import EXIT_OK, EXIT_USAGE, UsageError
from runner.runs import RunRow, survey
from runner.status import plan_of_run_dir, status_of
from runner.words import plural, printable


def status_command(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    status = status_of(run_dir, plan_of_run_dir(run_dir, args.max_grid))
    if args.json:
        print(json.dumps(status.as_json(), indent=2))
        return EXIT_OK
    kinds = f" ({', '.join(f'{k} {n}' for k, n in sorted(status.failed_by_kind.items()))})" if status.failed else ""
    print(
        f"{run_dir}: {plural(status.total, 'job')}: {status.done} done, {status.failed} failed{kinds}, {status.pending} pending"
    )
    if status.failed_for_good:
        print(f"  {status.failed_for_good} failed for good: a plain re-run leaves them; --retry-failed sends them again")
    if status.failed_to_retry or status.unfetched:
        again = [f"{status.failed_to_retry} to send again"] if status.failed_to_retry else []
        again += [f"{status.unfetched} paid images to fetch"] if status.unfetched else []
        print(f"  {', '.join(again)}: the next run takes them up")
    shown = 5
    for kind, message, count in status.failures[:shown]:
        print(f"  {count} x {kind}: {printable(message)}")
    if len(status.failures) > shown:
        print(f"  ... and {len(status.failures) - shown} other reasons; `status --json` lists them all")
    if status.damaged_lines:
        print(f"  records.jsonl has {plural(status.damaged_lines, 'damaged line')}: the next run sets them aside")
    if status.credits_spent is not None:
        print(f"credits spent: {status.credits_spent:,.6g}, over every run")
    if status.provenance is not None:
        print(f"images from {status.provenance.describe()}")
    if status.live:
        print(f"live: {status.live} is running in it now")
    last = status.last_run
    if last:
        stopped = f", stopped ({last.stopped.reason}: {last.stopped.message})" if last.stopped else ""
        jobs = last.jobs
        print(f"last run: {last.started_at} for {last.wall_s:.1f} s: {jobs.succeeded} succeeded, {jobs.failed} failed{stopped}")
        if last.pace:
            print(pace_line(last.pace))
    return EXIT_OK


def pace_line(pace: dict[str, Any]) -> str:
    """How fast the last run was let go, and when and why it last changed: one line."""
    rate, told, sent, throttled = (pace.get(k) for k in ("requests_per_minute", "told", "sent", "throttled"))
    slowed = pace.get("slowed")
    last = slowed[-1] if isinstance(slowed, list) and slowed and isinstance(slowed[-1], dict) else None
    answered = f", {throttled:,} of {sent:,} requests answered 429" if isinstance(throttled, int) and throttled else ""
    if last is None or not isinstance(rate, int | float):
        return f"pace: {told:,g} requests a minute, as told{answered}" if isinstance(told, int | float) else "pace: none"
    why = printable(str(last.get("why")))
    return f"pace: {rate:,g} requests a minute since {printable(str(last.get('at')))}: {why}{answered}"


def runs_command(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory: `flux-batch runs DIR` lists the run dirs under DIR")
    rows = survey(root, args.max_grid)
    if args.json:
        print(json.dumps([row.as_json() for row in rows], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print(f"no run directories under {root}: `flux-batch run MANIFEST` makes one")
    for row in rows:
        print("\n".join(_run_lines(row)))
    return EXIT_OK


def _run_lines(row: RunRow) -> list[str]:
    if row.damaged:
        return [f"{row.path}  DAMAGED: {printable(row.damaged)}"]
    live = f"  LIVE: {row.live}" if row.live else ""
    lines = [f"{row.path}  ({row.name}, {row.endpoint or 'never run'}){live}"]
    counts = [f"{row.done:,}/{row.total:,} done"]
    counts += [f"{row.failed_for_good:,} failed for good"] if row.failed_for_good else []
    counts += [f"{row.to_retry:,} to retry"] if row.to_retry else []
    counts += [f"{row.pending:,} pending"] if row.pending else []
    if row.credits_spent is not None:
        last = f" (last run {row.credits_last:,.6g})" if row.credits_last is not None else ""
        counts.append(f"{row.credits_spent:,.6g} credits{last}")
    lines.append("  " + ", ".join(counts))
    if row.last_started:
        stopped = f", stopped: {row.stopped}" if row.stopped else ""
        lines.append(f"  last run {row.last_started} to {row.last_finished or '?'}{stopped}")
    return lines


def report_command(args: argparse.Namespace) -> int:
    from runner.report import write_report  # Pillow only where it draws
    from runner.sheets import contact_sheets

    run_dir = Path(args.run_dir)
    plan = plan_of_run_dir(run_dir, args.max_grid)
    try:
        print(f"report in {write_report(run_dir, plan)}")
        if args.sheet:
            for path in contact_sheets(run_dir, plan):
                print(f"contact sheet in {path}")
    except OSError as exc:
        _say(f"flux-batch: cannot write the report in {run_dir}: {exc.strerror or exc}")
        return EXIT_USAGE
    return EXIT_OK


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
