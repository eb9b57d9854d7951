"""`flux-batch run` and `flux-batch status`: the command-line edge of a run.

Decides where requests go and with which key, opens the run dir, wires signals to a graceful
stop, shows progress, and turns the outcome into words and an exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import shlex
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runner.errors import EXIT_FAILED, EXIT_OK, EXIT_STOPPED, UsageError
from runner.execute import Event, Stop, run_plan
from runner.knobs import DEFAULT_KEY, Knobs
from runner.manifest import load
from runner.plan import Plan, make_plan
from runner.progress import Progress, RunLog, fan_out
from runner.settings import DEFAULT_BASE_URL, RunSettings, deadline_at
from runner.store import LOG, SUMMARY, RunDir, manifest_of, read_index, read_summary

EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
KEY_VARIABLE = "ONEMIN_API_KEY"


@dataclass(frozen=True)
class Target:
    """Where requests go. `base_url` None means: start the built-in emulator."""

    base_url: str | None
    api_key: str

    def __repr__(self) -> str:  # never show the key, not even in a debugger or a traceback
        return f"Target(base_url={self.base_url!r}, api_key=<hidden>)"


def run_command(args: argparse.Namespace) -> int:
    plan = make_plan(load(args.manifest))
    flags = {
        "out": args.out,
        "concurrency": args.concurrency,
        "requests_per_minute": args.requests_per_minute,
        "max_attempts": args.max_attempts,
        "request_timeout": args.request_timeout,
        "max_jobs": args.max_jobs,
        "deadline": args.deadline,
        "base_url": args.base_url,
        "async_mode": args.async_mode,
        "order": args.order,
        "credits_per_image": args.credits_per_image,
        "max_credits": args.max_credits,
        "on_finish": args.on_finish,
        "report": args.report,
    }
    settings = RunSettings.resolve(plan.manifest.run, flags)
    target = _target(settings, args.emulator)
    deadline = deadline_at(settings.deadline, datetime.now().astimezone()).timestamp() if settings.deadline else None
    run_dir_path = Path(settings.out or Path("output") / plan.manifest.name)
    with RunDir.open(run_dir_path, plan.manifest.text, source=Path(args.manifest)) as run_dir:
        log = RunLog(run_dir.path / LOG)
        log.write(f"run of {plan.manifest.path} ({plan.total} jobs) against {target.base_url or 'the built-in emulator'}")
        for note in run_dir.notes:
            print(f"flux-batch: {note}", file=sys.stderr)
            log.write(note)
        progress = Progress(enabled=not args.no_progress)
        stop = Stop()
        received: list[signal.Signals] = []
        try:
            summary = asyncio.run(_run(plan, run_dir, settings, target, stop, fan_out(progress, log), deadline, received))
        except asyncio.CancelledError:
            progress.close()
            log.write("abandoned the jobs in flight at a second signal")
            log.close()
            print("flux-batch: stopped at once; jobs in flight were abandoned and will run again", file=sys.stderr)
            return EXIT_SIGNAL[received[-1]] if received else 130
        progress.close()
        code = _exit_code(stop, received, summary)
        if stop.requested and stop.reason not in ("auth", "credits"):  # those were logged as they happened
            log.write(f"STOP: {stop.message}")
        log.write(f"finished with exit code {code}: {json.dumps(summary['jobs'])}")
        log.close()
    _report(plan, run_dir_path, summary)
    if settings.report:
        _write_report(run_dir_path, plan)
    if stop.requested and stop.reason != "signal":
        print(f"flux-batch: stopped early: {stop.message}. {_advice(stop.reason)}", file=sys.stderr)
    if settings.on_finish:
        _on_finish(settings.on_finish, run_dir_path / SUMMARY, code)
    return code


def _exit_code(stop: Stop, received: list[signal.Signals], summary: dict[str, Any]) -> int:
    if stop.reason == "signal":
        return EXIT_SIGNAL[received[0]]
    if stop.requested:
        return EXIT_STOPPED
    return EXIT_OK if summary["jobs"]["pending"] == 0 else EXIT_FAILED


def _on_finish(command: str, summary: Path, code: int) -> None:
    """Run the user's notification command; its failure is reported, never fatal."""
    argv = [*shlex.split(command), str(summary)]
    environment = {**os.environ, "FLUX_BATCH_SUMMARY": str(summary), "FLUX_BATCH_EXIT_CODE": str(code)}
    environment.pop(KEY_VARIABLE, None)  # a notification hook has no business with the API key
    try:
        finished = subprocess.run(argv, env=environment, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"flux-batch: --on-finish command could not run: {exc}", file=sys.stderr)
        return
    if finished.returncode != 0:
        print(f"flux-batch: --on-finish command exited with {finished.returncode}", file=sys.stderr)


async def _run(
    plan: Plan,
    run_dir: RunDir,
    settings: RunSettings,
    target: Target,
    stop: Stop,
    on_event: Callable[[Event], None],
    deadline: float | None,
    received: list[signal.Signals],
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal(signum: signal.Signals) -> None:
        received.append(signum)
        if len(received) == 1:
            stop.request("signal", f"{signum.name} received")
            print(
                f"\nflux-batch: {signum.name}: finishing the jobs in flight; send it again to abandon them",
                file=sys.stderr,
                flush=True,
            )
        elif main is not None:
            main.cancel()

    for signum in EXIT_SIGNAL:
        loop.add_signal_handler(signum, on_signal, signum)
    served = None
    try:
        base_url = target.base_url
        if base_url is None:
            from runner.emulator import start  # Pillow and the server only with --emulator

            _, served, base_url = await start(Knobs())
        _, summary = await run_plan(plan, run_dir, settings, base_url, target.api_key, stop, on_event, deadline=deadline)
        return summary
    finally:
        if served is not None:
            await served.cleanup()
        for signum in EXIT_SIGNAL:
            loop.remove_signal_handler(signum)


def _target(settings: RunSettings, use_emulator: bool) -> Target:
    if use_emulator:
        # The real key never goes to the emulator: it has its own.
        return Target(None, DEFAULT_KEY)
    base_url = settings.base_url or os.environ.get("ONEMIN_BASE_URL") or DEFAULT_BASE_URL
    key = os.environ.get(KEY_VARIABLE, "")
    if key:
        return Target(base_url, key)
    if _is_loopback(base_url):
        return Target(base_url, DEFAULT_KEY)  # an emulator started with `flux-batch emulator`
    raise UsageError(
        f"{KEY_VARIABLE} is not set, so {base_url} cannot be used.\n"
        f"  Set it to your 1min.ai API key:  export {KEY_VARIABLE}=...\n"
        "  or try flux-batch against its built-in emulator:  flux-batch run MANIFEST --emulator"
    )


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _advice(reason: str | None) -> str:
    return {
        "auth": f"Check {KEY_VARIABLE}, then run the same command again to resume.",
        "credits": "Top up the account, then run the same command again to resume.",
        "deadline": "Run the same command again to resume.",
        "max_jobs": "Run the same command again for the next jobs.",
        "disk": "Free some space, then run the same command again to resume.",
    }.get(reason or "", "Run the same command again to resume.")


def _report(plan: Plan, run_dir: Path, summary: dict[str, Any]) -> None:
    jobs = summary["jobs"]
    latency = summary["latency_s"]
    timing = f", p50 {latency['p50']:.1f} s, p95 {latency['p95']:.1f} s a job" if latency["p50"] is not None else ""
    print(
        f"{plan.manifest.name}: {jobs['done']} of {jobs['total']} jobs done "
        f"({jobs['succeeded']} this run, {jobs['failed']} failed, {summary['retries']} retries) "
        f"in {summary['wall_s']:.1f} s{timing}"
    )
    for kind, count in sorted(summary["failures_by_kind"].items()):
        example = summary["failure_examples"].get(kind, "")
        print(f"flux-batch: {count} failed ({kind}), e.g. {example}", file=sys.stderr)
    print(f"images in {run_dir / 'images'}, records in {run_dir / 'records.jsonl'}")


def status_command(run_dir: Path, as_json: bool) -> int:
    plan = plan_of_run_dir(run_dir)
    index = read_index(run_dir)
    ids = set(plan.job_ids())
    done = len(ids & index.done)
    failed: dict[str, int] = {}
    reasons: Counter[tuple[str, str]] = Counter()
    for job_id, (kind, message) in index.failed.items():
        if job_id in ids:
            failed[kind] = failed.get(kind, 0) + 1
            reasons[kind, message] += 1
    n_failed = sum(failed.values())
    status: dict[str, Any] = {
        "run_dir": str(run_dir),
        "name": plan.manifest.name,
        "total": plan.total,
        "done": done,
        "failed": n_failed,
        "failed_by_kind": failed,
        "failures": [{"kind": k, "message": m, "jobs": n} for (k, m), n in reasons.most_common()],
        "pending": plan.total - done - n_failed,
        "last_run": read_summary(run_dir),
    }
    if as_json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    kinds = f" ({', '.join(f'{k} {n}' for k, n in sorted(failed.items()))})" if failed else ""
    print(f"{run_dir}: {plan.total} jobs: {done} done, {n_failed} failed{kinds}, {status['pending']} pending")
    shown = 5
    for (kind, message), count in reasons.most_common(shown):
        print(f"  {count} x {kind}: {message}")
    if len(reasons) > shown:
        print(f"  ... and {len(reasons) - shown} other reasons; `status --json` lists them all")
    last = status["last_run"]
    if last:
        print(
            f"last run: {last['started_at']} for {last['wall_s']:.1f} s: {last['jobs']['succeeded']} succeeded, "
            f"{last['jobs']['failed']} failed" + (f", stopped ({last['stopped']['reason']})" if last.get("stopped") else "")
        )
    return EXIT_OK


def plan_of_run_dir(run_dir: Path) -> Plan:
    copy, base_dir = manifest_of(run_dir)
    if not copy.is_file():
        raise UsageError(f"{run_dir} is not a run directory (it has no manifest.yaml)")
    return make_plan(load(copy, base_dir=base_dir))


def report_command(run_dir: Path, sheet: bool) -> int:
    from runner.report import contact_sheets, write_report  # Pillow's drawing only where it draws

    plan = plan_of_run_dir(run_dir)
    print(f"report in {write_report(run_dir, plan)}")
    if sheet:
        for path in contact_sheets(run_dir, plan):
            print(f"contact sheet in {path}")
    return EXIT_OK


def _write_report(run_dir: Path, plan: Plan) -> None:
    """The report at the end of a run is a courtesy: a failure to draw it is not the run's."""
    from runner.report import write_report

    try:
        print(f"report in {write_report(run_dir, plan)}")
    except OSError as exc:
        print(f"flux-batch: could not write the report: {exc}; try `flux-batch report {run_dir}`", file=sys.stderr)
