"""`flux-batch run`: the command-line edge of a run.

Decides where requests go and with which key, opens the run dir, wires signals to a graceful
stop, shows progress, and turns the outcome into words and an exit code."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TypeVar

from runner.emulator.knobs import DEFAULT_KEY, Knobs
from runner.endpoint import Endpoint, is_loopback
from runner.errors import EXIT_FAILED, EXIT_OK, StopReason, UsageError
from runner.execute import Result, run_plan
from runner.manifest import load
from runner.plan import Plan, make_plan
from runner.progress import Progress, RunLog, fan_out
from runner.settings import DEFAULT_BASE_URL, RunSettings, deadline_at, default_out
from runner.stop import Stop
from runner.store import LOG, RunDir
from runner.summary import SUMMARY, Stopped
from runner.words import plural

# SIGHUP is what a closed terminal or a dropped ssh session sends: a run stops as for SIGTERM.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
KEY_VARIABLE = "ONEMIN_API_KEY"
T = TypeVar("T")


def signal_exit_code(signum: int) -> int:
    return 128 + signum


@dataclass(frozen=True)
class Target:
    """Where requests go. `base_url` None means: start the built-in emulator."""

    base_url: str | None
    api_key: str

    def __repr__(self) -> str:  # never show the key, not even in a debugger or a traceback
        return f"Target(base_url={self.base_url!r}, api_key=<hidden>)"


def settings_of(args: argparse.Namespace, plan: Plan) -> RunSettings:
    """The run's settings: the manifest's run: block, with the flags that were given on top."""
    flags = {f.name: getattr(args, f.name, None) for f in fields(RunSettings)}
    return RunSettings.resolve(plan.manifest.run, flags, trust_manifest=args.trust_manifest, source=str(args.manifest))


def run_command(args: argparse.Namespace) -> int:
    plan = make_plan(load(args.manifest), max_grid=args.max_grid)
    settings = settings_of(args, plan)
    target = target_of(settings, args.emulator)
    deadline = deadline_at(settings.deadline, datetime.now().astimezone()).timestamp() if settings.deadline else None
    run_dir_path = Path(settings.out) if settings.out else default_out(plan.manifest.name, emulated=target.base_url is None)
    resume = "flux-batch " + shlex.join(args.argv)
    with RunDir.open(run_dir_path, plan.manifest.text, source=Path(args.manifest), endpoint=Endpoint(target.base_url)) as run_dir:
        log = RunLog(run_dir.path / LOG)
        log.write(
            f"run of {plan.manifest.path} ({plural(plan.total, 'job')}) against {target.base_url or 'the built-in emulator'}"
        )
        for note in run_dir.notes:
            say(f"flux-batch: {note}")
            log.write(note)
        progress = Progress(enabled=not args.no_progress)
        stop = Stop(deadline)
        received: list[int] = []
        after_the_run = AfterTheRun()
        try:
            on_event = fan_out(progress, log)

            def work(base_url: str) -> Awaitable[Result]:
                return run_plan(plan, run_dir, settings, base_url, target.api_key, stop, on_event)

            result = asyncio.run(with_signals(work, target, stop, received, after_the_run))
        except asyncio.CancelledError:
            progress.close()
            log.write("abandoned the jobs in flight at a second signal")
            log.close()
            say("flux-batch: stopped at once; jobs in flight were abandoned and will run again")
            say(f"flux-batch: to resume: {resume}")
            return signal_exit_code(received[-1]) if received else 130
        progress.close()
        # What the run was is what its summary says: a signal after the summary was written
        # (the run was over) is the report's business, not the run's.
        stopped = None if result.idle else result.summary.stopped
        code = exit_code_of(stopped, received, result)
        if received and (stopped is None or stopped.reason != StopReason.SIGNAL):
            after_the_run.heard_during_the_close(received[-1])
        if stop.reason is not None and not log.stopped:
            log.write(f"STOP: {stop.message}")
        log.write(f"finished with exit code {code}: {json.dumps(asdict(result.summary.jobs))}")
        log.close()
    _tell(plan, run_dir_path, result, run_dir.provenance is not None and run_dir.provenance.emulated)
    if stopped is not None and stopped.reason == StopReason.SIGNAL:
        done = result.summary.jobs.done
        say(f"flux-batch: interrupted; {done} of {plural(plan.total, 'job')} done. To resume: {resume}")
    elif stopped is not None:
        say(f"flux-batch: stopped early: {stopped.message}. {StopReason(stopped.reason).advice}")
    if settings.report and not result.idle:
        after_the_run.unless_signalled(lambda: write_report_quietly(run_dir_path, plan))
    if settings.on_finish:
        on_finish(settings.on_finish, run_dir_path / SUMMARY, code)
    return code


def exit_code_of(stopped: Stopped | None, received: list[int], result: Result) -> int:
    if stopped is not None and stopped.reason == StopReason.SIGNAL:
        return signal_exit_code(received[0])
    if stopped is not None:
        return StopReason(stopped.reason).exit_code
    jobs = result.summary.jobs
    return EXIT_OK if jobs.done >= jobs.total else EXIT_FAILED


def on_finish(command: str, summary: Path, code: int) -> None:
    """Run the user's notification command; its failure is reported, never fatal."""
    argv = [*shlex.split(command), str(summary)]
    environment = {**os.environ, "FLUX_BATCH_SUMMARY": str(summary), "FLUX_BATCH_EXIT_CODE": str(code)}
    environment.pop(KEY_VARIABLE, None)  # a notification hook has no business with the API key
    try:
        finished = subprocess.run(argv, env=environment, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        say(f"flux-batch: --on-finish command could not run: {exc}")
        return
    if finished.returncode != 0:
        say(f"flux-batch: --on-finish command exited with {finished.returncode}")


async def with_signals(
    work: Callable[[str], Awaitable[T]], target: Target, stop: Stop, received: list[int], after_the_run: AfterTheRun
) -> T:
    """`work(base_url)` with the signals wired to `stop` (a second one cancels it), against
    `target`, or the built-in emulator, started here, when it has no base URL."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def react(signum: signal.Signals, count: int) -> None:
        if signum == signal.SIGHUP:
            _leave_the_terminal()
        if count == 1:
            stop.request(StopReason.SIGNAL, f"{signum.name} received")
            say(f"\nflux-batch: {signum.name}: finishing the jobs in flight; send it again to abandon them")
        elif main is not None:
            main.cancel()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Recorded here, in the handler, rather than by loop.add_signal_handler: that one
        # passes the signal through the loop's self-pipe, and a signal arriving as the run
        # returns would still be in the pipe when the handler is removed, and be lost.
        received.append(signum)
        loop.call_soon_threadsafe(react, signal.Signals(signum), len(received))

    for signum in SIGNALS:
        signal.signal(signum, on_signal)
    served = None
    try:
        base_url = target.base_url
        if base_url is None:
            from runner.emulator.server import start  # Pillow and the server only with --emulator

            _, served, base_url = await start(Knobs())
        return await work(base_url)
    finally:
        if served is not None:
            await served.cleanup()
        for signum in SIGNALS:
            after_the_run.take_over(signum)  # one handler replaces the other: no signal falls between


def _leave_the_terminal() -> None:
    """The terminal is gone (SIGHUP): what would be printed goes nowhere instead of failing
    with an I/O error halfway through the run's last words. run.log still has them."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass
        os.dup2(devnull, stream.fileno())
    os.close(devnull)


class _Interrupted(BaseException):
    """A signal after the run: like KeyboardInterrupt, not an error a report may catch."""


class AfterTheRun:
    """From the end of the run to the exit, a signal skips what is left of the report and never
    changes the run's exit code. It takes over each signal from the run's handler in one step:
    with none in between, the default action would kill the process."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._interrupting = False

    def take_over(self, signum: int) -> None:
        signal.signal(signum, self._heard)

    def _heard(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            _leave_the_terminal()
        self.received = signal.Signals(signum).name
        if self._interrupting:
            raise _Interrupted(self.received)

    def heard_during_the_close(self, signum: int) -> None:
        """A signal the event loop heard after the summary was written: the run was over, so
        it is this one's, and the report is skipped as for any signal after the run."""
        self.received = signal.Signals(signum).name

    def unless_signalled(self, work: Callable[[], None]) -> None:
        """`work`, unless a signal has come, or until one comes."""
        if self.received is None:
            self._interrupting = True
            try:
                work()
            except _Interrupted:
                pass
            finally:
                self._interrupting = False
        if self.received is not None:
            say(f"flux-batch: {self.received} received after the run: the rest of its report was skipped")


def target_of(settings: RunSettings, use_emulator: bool) -> Target:
    if use_emulator:
        # The real key never goes to the emulator: it has its own.
        return Target(None, DEFAULT_KEY)
    base_url = settings.base_url or os.environ.get("ONEMIN_BASE_URL") or DEFAULT_BASE_URL
    key = os.environ.get(KEY_VARIABLE, "")
    if key:
        return Target(base_url, key)
    if is_loopback(base_url):
        return Target(base_url, DEFAULT_KEY)  # an emulator started with `flux-batch emulator`
    raise UsageError(
        f"{KEY_VARIABLE} is not set, so {base_url} cannot be used.\n"
        f"  Set it to your 1min.ai API key:  export {KEY_VARIABLE}=...\n"
        "  or try flux-batch against its built-in emulator:  flux-batch run MANIFEST --emulator"
    )


def _tell(plan: Plan, run_dir: Path, result: Result, emulated: bool) -> None:
    summary = result.summary
    jobs = summary.jobs
    total = plural(jobs.total, "job")
    if result.idle:
        last = f" (last run {summary.finished_at})" if summary.finished_at else ""
        print(f"{plan.manifest.name}: nothing to do: {jobs.done} of {total} done{last}")
    else:
        p50, p95 = summary.latency_p50, summary.latency_p95
        timing = f", p50 {p50:.1f} s, p95 {p95:.1f} s a job" if p50 is not None and p95 is not None else ""
        spent = f", {summary.credits_spent:,.6g} credits" if summary.credits_spent is not None else ""
        print(
            f"{plan.manifest.name}: {jobs.done} of {total} done "
            f"({jobs.succeeded} this run, {jobs.failed} failed, {plural(summary.retries, 'retry', 'retries')}{spent}) "
            f"in {summary.wall_s:.1f} s{timing}"
        )
        for kind, count in sorted(summary.failures_by_kind.items()):
            say(f"flux-batch: {count} failed ({kind}), e.g. {summary.failure_examples.get(kind, '')}")
    held_back = jobs.held_back
    if held_back:
        say(
            f"flux-batch: {plural(held_back, 'job')} failed for good earlier and {'was' if held_back == 1 else 'were'} "
            "not sent again; --retry-failed sends them"
        )
    print(f"images in {run_dir / 'images'}, records in {run_dir / 'records.jsonl'}")
    if emulated:
        print("these images come from the emulator: placeholders, not paid results")


def write_report_quietly(run_dir: Path, plan: Plan) -> None:
    """The report at the end of a run is a courtesy: a failure to draw it is not the run's."""
    from runner.report import write_report

    try:
        print(f"report in {write_report(run_dir, plan)}")
    except Exception as exc:  # whatever the report meets (a picture it cannot read, a full disk)
        say(f"flux-batch: could not write the report ({type(exc).__name__}: {exc}); try `flux-batch report {run_dir}`")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
