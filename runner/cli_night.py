"""`flux-batch run` with several manifests or a directory: the command-line edge of a night.

Decides the shared settings (the flags: concurrency, pace, caps, deadline), opens each manifest
as `run` would (skipping, with why, one that is invalid or busy), runs the night with the
signals wired as for one run, then says in one line per manifest who got what, writes
night.json, draws each manifest's report and hands night.json to --on-finish."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict, fields
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from runner.cli_run import (
    AfterTheRun,
    exit_code_of,
    on_finish,
    run_command,
    say,
    signal_exit_code,
    target_of,
    with_signals,
    write_report_quietly,
)
from runner.diskwriter import write_whole
from runner.endpoint import Endpoint
from runner.errors import EXIT_USAGE, FluxBatchError, ManifestError, RunLocked, UsageError
from runner.events import Event
from runner.manifest import load
from runner.night import Entry, Opened, manifests_in, run_night
from runner.night_progress import NightProgress
from runner.pace import Change
from runner.pacing import Pacer
from runner.plan import make_plan
from runner.pool import Quota
from runner.progress import RunLog, fan_out
from runner.records import utc_timestamp
from runner.settings import OUTPUT_ROOT, RunSettings, deadline_at, default_out
from runner.stop import Stop
from runner.store import RunDir
from runner.words import plural

NIGHT_LOG = "night.json"
SHARED = ("concurrency", "requests_per_minute", "max_jobs", "max_credits", "deadline", "on_finish", "base_url")


def run_or_night(args: argparse.Namespace) -> int:
    """`flux-batch run`: one manifest as one run, several (or a directory) as a night."""
    if len(args.manifest) == 1 and not Path(args.manifest[0]).is_dir():
        args.manifest = args.manifest[0]
        return run_command(args)
    return night_command(args)


def night_command(args: argparse.Namespace) -> int:
    sources = [Path(source) for source in args.manifest]
    for source in sources:
        if not source.exists():
            raise UsageError(f"{source}: no such manifest or directory")
    if args.out:
        raise UsageError("--out names one run dir; with several manifests each runs into its own, output/<name>")
    flags = {f.name: getattr(args, f.name, None) for f in fields(RunSettings)}
    shared = {name: flags[name] for name in SHARED}
    # A night's prices are each manifest's own (checked as each opens): a stand-in lets the
    # shared flags be checked here as for one run.
    shared["credits_per_image"] = flags["credits_per_image"] or (1.0 if flags["max_credits"] else None)
    night = RunSettings.resolve({}, shared, trust_manifest=True, source="the command line")
    own_flags = {name: value for name, value in flags.items() if name not in SHARED}
    target = target_of(night, args.emulator)
    deadline = deadline_at(night.deadline, datetime.now().astimezone()).timestamp() if night.deadline else None
    stop = Stop(deadline)
    progress = NightProgress(enabled=not args.no_progress)
    live_logs: set[RunLog] = set()  # the run.log of every manifest running: each hears the pace change

    def paced(change: Change) -> None:
        event = Event("pace", count=round((change.rate or 0) * 60), message=change.why)
        progress.paced(event)
        for log in live_logs:
            log(event)

    pacer = Pacer(night.concurrency, night.requests_per_minute, sleep=stop.sleep, stopped=lambda: stop.requested, on_change=paced)
    quota = Quota(night.max_jobs, night.max_credits)
    found = manifests_in(sources)
    print(
        f"night of {plural(len(found), 'manifest')} from {', '.join(map(str, sources))}"
        + (", and those that appear" if any(s.is_dir() for s in sources) else "")
    )

    def open_manifest(path: Path, place: int) -> Opened | Entry:
        try:
            plan = make_plan(load(str(path)), max_grid=args.max_grid)
            settings = RunSettings.resolve(plan.manifest.run, own_flags, trust_manifest=args.trust_manifest, source=str(path))
        except ManifestError as exc:
            return Entry(path, "invalid", str(exc))
        except FluxBatchError as exc:
            return Entry(path, "invalid", f"{path}: {exc}")
        if night.max_credits is not None and settings.credits_per_image is None:
            return Entry(path, "invalid", f"{path}: --max-credits needs the price of an image: run: {{credits_per_image: N}}")
        if args.share == "priority" and "priority" not in plan.manifest.run:
            settings = _with(settings, priority=-place)  # in the order listed, after any stated priority
        run_dir_path = Path(settings.out) if settings.out else default_out(plan.manifest.name, emulated=target.base_url is None)
        entry = Entry(path, "ran", name=plan.manifest.name, run_dir=run_dir_path, plan=plan, settings=settings)
        try:
            run_dir = RunDir.open(run_dir_path, plan.manifest.text, source=path, endpoint=Endpoint(target.base_url))
        except RunLocked as exc:
            return Entry(path, "busy", str(exc), plan.manifest.name, run_dir_path)
        except FluxBatchError as exc:
            return Entry(path, "invalid", str(exc), plan.manifest.name, run_dir_path)
        log = RunLog(run_dir.path / "run.log")
        log.write(f"run of {path} ({plural(plan.total, 'job')}) in a night of several manifests")
        progress.say(f"  {plan.manifest.name}: {plural(plan.total, 'job')} into {run_dir_path}")
        live_logs.add(log)

        def close_log() -> None:
            live_logs.discard(log)
            progress.finished(plan.manifest.name)
            log.close()

        return Opened(entry, run_dir, fan_out(progress.manifest(plan.manifest.name), log), close_log)

    received: list[int] = []
    after_the_run = AfterTheRun()
    try:
        entries = asyncio.run(
            with_signals(lambda base_url: run_night(sources, open_manifest, base_url, target.api_key, stop, pacer, quota),
                         target, stop, received, after_the_run)
        )  # fmt: skip
    except asyncio.CancelledError:
        progress.close()
        say("flux-batch: stopped at once; jobs in flight were abandoned and will run again. Run the same command to resume.")
        return signal_exit_code(received[-1]) if received else 130
    progress.close()
    codes = [_code_of(entry, received) for entry in entries]
    code = max(codes, default=EXIT_USAGE)
    morning = _morning(entries, codes, stop, pacer)
    for line in _lines(morning):
        print(line)
    log_dir = Path(args.night_log) if args.night_log else OUTPUT_ROOT
    night_file = _write_night(log_dir, morning)
    print(f"night in {night_file}")
    for entry in entries:
        if entry.state == "ran" and entry.result and not entry.result.idle and entry.settings and entry.settings.report:
            assert entry.run_dir is not None and entry.plan is not None
            after_the_run.unless_signalled(partial(write_report_quietly, entry.run_dir, entry.plan))
    if night.on_finish:
        on_finish(night.on_finish, night_file, code)
    return code


def _with(settings: RunSettings, **changes: Any) -> RunSettings:
    return RunSettings(**{**{f.name: getattr(settings, f.name) for f in fields(RunSettings)}, **changes})


def _code_of(entry: Entry, received: list[int]) -> int:
    if entry.state != "ran" or entry.result is None:
        return EXIT_USAGE if entry.state in ("invalid", "busy") else 3
    result = entry.result
    return exit_code_of(None if result.idle else result.summary.stopped, received, result)


def _morning(entries: list[Entry], codes: list[int], stop: Stop, pacer: Pacer) -> dict[str, Any]:
    """What the night did, as night.json holds it."""
    rows = []
    totals = {"done": 0, "failed": 0, "left": 0, "submitted": 0, "credits": 0.0}
    for entry, code in zip(entries, codes, strict=True):
        row: dict[str, Any] = {"manifest": str(entry.manifest), "name": entry.name or None, "state": entry.state,
                               "run_dir": str(entry.run_dir) if entry.run_dir else None, "exit_code": code}  # fmt: skip
        if entry.message:
            row["message"] = entry.message
        if entry.result is not None:
            summary = entry.result.summary
            jobs = summary.jobs
            row.update(jobs=asdict(jobs), credits=summary.credits_spent,
                       stopped=asdict(summary.stopped) if summary.stopped and not entry.result.idle else None)  # fmt: skip
            totals["done"] += jobs.done
            totals["failed"] += jobs.failed if not entry.result.idle else 0
            totals["left"] += jobs.pending
            totals["submitted"] += jobs.submitted if not entry.result.idle else 0
            totals["credits"] += (summary.credits_spent or 0.0) if not entry.result.idle else 0.0
        rows.append(row)
    return {
        "finished_at": utc_timestamp(),
        "manifests": rows,
        "totals": totals,
        "stopped": {"reason": str(stop.reason), "message": stop.message} if stop.reason is not None else None,
        "exit_code": max(codes, default=EXIT_USAGE),
        "pace": pacer.pace.report(),
    }


def _lines(morning: dict[str, Any]) -> list[str]:
    lines = []
    for row in morning["manifests"]:
        name = row["name"] or row["manifest"]
        if row["state"] == "ran" and "jobs" in row:
            jobs = row["jobs"]
            stopped = f", stopped: {row['stopped']['message']}" if row.get("stopped") else ""
            spent = f", {row['credits']:,.6g} credits" if row.get("credits") is not None else ""
            lines.append(
                f"{name}: {jobs['done']:,} of {plural(jobs['total'], 'job')} done ({jobs['submitted']:,} sent tonight, "
                f"{jobs['failed']:,} failed, {jobs['pending']:,} left{spent}){stopped}"
            )
        elif row["state"] == "busy":
            lines.append(f"{name}: skipped, its run dir is busy: {row['message']}")
        elif row["state"] == "invalid":
            lines.append(f"{name}: skipped, it cannot run:\n  " + row["message"].replace("\n", "\n  "))
        else:
            lines.append(f"{name}: failed: {row.get('message', '')}")
    totals = morning["totals"]
    why = f"; stopped: {morning['stopped']['message']}" if morning["stopped"] else ""
    lines.append(
        f"night: {totals['done']:,} done, {totals['failed']:,} failed, {totals['left']:,} left, "
        f"{totals['submitted']:,} sent{why}; exit code {morning['exit_code']}"
    )
    return lines


def _write_night(folder: Path, morning: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / NIGHT_LOG
    write_whole(str(target), (json.dumps(morning, indent=2, ensure_ascii=False) + "\n").encode())
    return target
