"""`flux-batch status` and `flux-batch report`: what a run dir holds, read from it alone."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runner.errors import EXIT_OK, EXIT_USAGE, UsageError
from runner.manifest import load
from runner.plan import Plan, make_plan
from runner.status import status_of
from runner.store import manifest_of
from runner.words import plural


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
        print(f"  {count} x {kind}: {message}")
    if len(status.failures) > shown:
        print(f"  ... and {len(status.failures) - shown} other reasons; `status --json` lists them all")
    if status.damaged_lines:
        print(f"  records.jsonl has {plural(status.damaged_lines, 'damaged line')}: the next run sets them aside")
    if status.provenance is not None:
        print(f"images from {status.provenance.describe()}")
    if status.live:
        print(f"live: {status.live} is running in it now")
    last = status.last_run
    if last:
        stopped = f", stopped ({last.stopped.reason}: {last.stopped.message})" if last.stopped else ""
        jobs = last.jobs
        print(f"last run: {last.started_at} for {last.wall_s:.1f} s: {jobs.succeeded} succeeded, {jobs.failed} failed{stopped}")
    return EXIT_OK


def plan_of_run_dir(run_dir: Path, max_grid: int) -> Plan:
    copy, base_dir = manifest_of(run_dir)
    if not copy.is_file():
        raise UsageError(f"{run_dir} is not a run directory (it has no manifest.yaml)")
    return make_plan(load(copy, base_dir=base_dir), max_grid=max_grid)


def report_command(args: argparse.Namespace) -> int:
    from runner.report import contact_sheets, write_report  # Pillow's drawing only where it draws

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
