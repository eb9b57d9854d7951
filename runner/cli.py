"""The command line: parse arguments, call the core, map errors to exit codes.

The core never prints or exits; everything a user reads is written here.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from runner import __version__
from runner.cli_emulator import add_knob_flags, knobs_from, serve_emulator
from runner.errors import EXIT_OK, EXIT_USAGE, FluxBatchError, ManifestError, RunLocked, UsageError
from runner.manifest import load
from runner.plan import Plan, make_plan
from runner.settings import RunSettings
from runner.store import read_index
from runner.template import render

# Before any image has been made in a run dir, plan assumes this much time per image.
ASSUMED_SECONDS_PER_IMAGE = 30.0
LARGE_PLAN = 10_000  # plan warns above this many jobs
YOUNG_OBJECTS_PER_COLLECTION = 10_000  # the cyclic collector's first threshold; Python's is 700


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    thresholds = gc.get_threshold()
    in_process = gc.isenabled()  # False when runner.__main__ turned the collector off to start up
    try:
        return handler(args)
    except ManifestError as exc:
        _report_problems(exc)
        return EXIT_USAGE
    except (UsageError, RunLocked) as exc:
        print(f"flux-batch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FluxBatchError as exc:
        print(f"flux-batch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    finally:
        if in_process:  # give the caller its collector back as it was
            gc.unfreeze()
            gc.set_threshold(*thresholds)
        # A command about to exit keeps start-up's objects frozen: the collection at
        # interpreter exit then skips them, which saves 30 ms of every invocation.


def settle_memory() -> None:
    """Start-up is over: keep what it made out of the cyclic collector's way, and let the
    collector run less often. A run's own objects are JSON-like and freed by reference
    counting; over 2,000 jobs this took collection from about 50 ms to about 1 ms."""
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS_PER_COLLECTION, 10, 10)
    gc.enable()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flux-batch",
        description="Run batches of Flux Dev image generations through the 1min.ai API.",
    )
    parser.add_argument("--version", action="version", version=f"flux-batch {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    validate = verbs.add_parser("validate", help="check manifests and report every problem at once")
    validate.add_argument("manifests", nargs="+", metavar="MANIFEST")
    validate.set_defaults(handler=_validate)

    plan = verbs.add_parser("plan", help="show the jobs a manifest makes, without calling the API")
    plan.add_argument("manifest", metavar="MANIFEST")
    plan.add_argument("--out", metavar="DIR", help="run dir to compare with (default: output/<name>)")
    plan.add_argument("--json", action="store_true", help="print one job per line as JSON")
    plan.set_defaults(handler=_plan)

    run = verbs.add_parser(
        "run",
        help="run, or resume, a manifest into its run directory",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "The API key is read from ONEMIN_API_KEY only; without it, add --emulator.\n"
            "Every option but --emulator and --no-progress can also be set in the manifest's run: block.\n\n"
            "exit codes: 0 every job done; 1 finished, some jobs failed; 2 usage or manifest error, or the\n"
            "run dir is in use (nothing sent); 3 stopped early, resumable (bad key, no credits, deadline,\n"
            "--max-jobs or --max-credits, a full disk); 130/143 SIGINT/SIGTERM, resumable"
        ),
    )
    run.add_argument("manifest", metavar="MANIFEST")
    run.add_argument("--out", metavar="DIR", help="run directory (default: output/<name>)")
    run.add_argument("--concurrency", type=int, metavar="N", help="generation requests in flight at once (default 4)")
    run.add_argument("--requests-per-minute", type=float, metavar="R", help="pace requests to at most R a minute")
    run.add_argument("--max-attempts", type=int, metavar="N", help="tries per job before it fails (default 6)")
    run.add_argument(
        "--request-timeout", type=float, metavar="SECONDS", help="give up on one request after this long (default 300)"
    )
    run.add_argument("--max-jobs", type=int, metavar="N", help="submit at most N new jobs in this invocation")
    run.add_argument("--deadline", metavar="DURATION|TIME", help="stop dispatching after e.g. 8h, or at e.g. 06:30")
    run.add_argument("--base-url", metavar="URL", help="API address (default: $ONEMIN_BASE_URL, else the real API)")
    run.add_argument("--order", choices=["manifest", "interleave", "shuffle"], help="dispatch order (default manifest)")
    run.add_argument("--credits-per-image", type=float, metavar="C", help="what one image costs, for --max-credits")
    run.add_argument("--max-credits", type=float, metavar="C", help="spend at most C credits in this invocation")
    run.add_argument("--on-finish", metavar="CMD", help="run CMD with the path of summary.json when the run ends")
    run.add_argument(
        "--async-mode",
        action="store_true",
        default=None,
        help="ask for asynchronous generations and poll them, so a slow one is never paid twice",
    )
    run.add_argument("--emulator", action="store_true", help="start the built-in emulator of the API and use it")
    run.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    run.add_argument("--no-report", dest="report", action="store_false", default=None, help="do not write report.html at the end")
    run.set_defaults(handler=_run)

    report = verbs.add_parser("report", help="(re)write RUN_DIR/report.html, a gallery of the run")
    report.add_argument("run_dir", metavar="RUN_DIR")
    report.add_argument("--sheet", action="store_true", help="also draw a contact-sheet PNG per prompt in RUN_DIR/sheets")
    report.set_defaults(handler=_report)

    status = verbs.add_parser("status", help="done, failed and pending counts of a run directory")
    status.add_argument("run_dir", metavar="RUN_DIR")
    status.add_argument("--json", action="store_true", help="print the counts as JSON")
    status.set_defaults(handler=_status)

    emulator = verbs.add_parser("emulator", help="serve the built-in emulator of the API on loopback")
    emulator.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080; 0 picks a free one)")
    add_knob_flags(emulator)
    emulator.set_defaults(handler=_emulator)
    return parser


def _validate(args: argparse.Namespace) -> int:
    settle_memory()
    failed = 0
    for path in args.manifests:
        try:
            plan = make_plan(load(path))
        except ManifestError as exc:
            _report_problems(exc)
            failed += 1
            continue
        print(f"{path}: ok, {_count(plan.total, 'job')} from {_count(len(plan.prompts), 'prompt')}")
    return EXIT_USAGE if failed else EXIT_OK


def _plan(args: argparse.Namespace) -> int:
    settle_memory()
    plan = make_plan(load(args.manifest))
    if args.json:
        return _print_jobs(plan, sys.stdout)
    settings = RunSettings.resolve(plan.manifest.run, {"out": args.out})
    run_dir = Path(settings.out or Path("output") / plan.manifest.name)
    index = read_index(run_dir)
    held = sum(1 for job_id in plan.job_ids() if job_id in index.done) if index.done else 0
    print(_describe_plan(plan, settings, run_dir, held, index.latencies))
    if plan.total > LARGE_PLAN:
        cost = f" and about {plan.total * settings.credits_per_image:,.0f} credits" if settings.credits_per_image else ""
        print(
            f"flux-batch: warning: {plan.manifest.path} makes {plan.total:,} jobs{cost}; "
            "check the grid is what you mean, and consider --max-jobs or --max-credits",
            file=sys.stderr,
        )
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from runner.cli_run import run_command  # aiohttp and friends only for the verbs that use them

    settle_memory()
    return run_command(args)


def _report(args: argparse.Namespace) -> int:
    from runner.cli_run import report_command

    settle_memory()
    return report_command(Path(args.run_dir), sheet=args.sheet)


def _status(args: argparse.Namespace) -> int:
    from runner.cli_run import status_command

    settle_memory()
    return status_command(Path(args.run_dir), as_json=args.json)


def _emulator(args: argparse.Namespace) -> int:
    settle_memory()
    return serve_emulator(knobs_from(args), args.port)


def _print_jobs(plan: Plan, out: TextIO) -> int:
    try:
        for job in plan.jobs():
            out.write(json.dumps(job.as_dict(), ensure_ascii=False) + "\n")
        out.flush()
    except BrokenPipeError:
        # The reader went away (`plan --json | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return EXIT_OK


def _describe_plan(plan: Plan, settings: RunSettings, run_dir: Path, held: int, latencies: Sequence[float]) -> str:
    manifest = plan.manifest
    rows: list[tuple[str, str]] = []
    for prompt in plan.prompts:
        vars_text = "; ".join(f"{name}: {_values(values)}" for name, values in prompt.spec.vars)
        rows.append((f"  {prompt.spec.id}", f"{_count(plan.count(prompt), 'job')}   {vars_text}".rstrip()))
    if manifest.sweep:
        rows.append(("sweep", ""))
        rows += [(f"  {name}", _values(values)) for name, values in manifest.sweep]
    if manifest.zip:
        rows.append(("zip (paired)", ""))
        rows += [(f"  {name}", _values(values)) for name, values in manifest.zip]
    source = "seeds" if manifest.seeds else f"seeds (from seed_base {manifest.seed_base})"
    rows.append((source, _values(plan.seeds)))
    rows.append(("total", _count(plan.total, "job")))
    pending = plan.total - held
    rows.append(("run dir", f"{run_dir}: {held} done, {pending} to run"))
    rows.append(("estimate", _estimate(pending, settings, latencies)))
    if settings.credits_per_image:
        cost = f"about {pending * settings.credits_per_image:,.0f} credits at {render(settings.credits_per_image)} an image"
        if settings.credit_cap_jobs is not None and settings.credit_cap_jobs < pending:
            cost += f"; --max-credits {render(settings.max_credits or 0)} allows {settings.credit_cap_jobs} jobs a run"
        rows.append(("cost", cost))
    width = max(len(label) for label, _ in rows) + 2
    lines = [f"plan for {manifest.name} ({manifest.path})", "prompts"]
    lines += [f"{label:<{width}}{value}".rstrip() for label, value in rows]
    return "\n".join(lines)


def _estimate(pending: int, settings: RunSettings, latencies: Sequence[float]) -> str:
    if pending == 0:
        return "nothing to run"
    if latencies:
        import statistics  # plan's estimate only: kept off the start-up of every run

        per_image = statistics.median(latencies)
        basis = f"the median of {len(latencies):,} images made here, {per_image:.1f} s"
    else:
        per_image = ASSUMED_SECONDS_PER_IMAGE
        basis = f"assuming ~{per_image:.0f} s an image"
    seconds = math.ceil(pending / settings.concurrency) * per_image
    limit = ""
    if settings.requests_per_minute:
        paced = pending / settings.requests_per_minute * 60
        if paced > seconds:
            seconds, limit = paced, f", paced at {render(settings.requests_per_minute)} requests a minute"
    return f"about {_duration(seconds)} at concurrency {settings.concurrency}{limit}, {basis}"


def _duration(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _values(values: Sequence[Any], shown: int = 8) -> str:
    texts = [render(v) for v in values]
    if len(texts) > shown:
        return f"{', '.join(texts[: shown - 1])}, ... {texts[-1]} ({len(texts)} values)"
    return ", ".join(texts)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _report_problems(exc: ManifestError) -> None:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    files = sorted({p.file for p in exc.problems})
    print(
        f"{_count(len(exc.problems), 'problem')} in {', '.join(files)}; nothing was sent to the API",
        file=sys.stderr,
    )
    if exc.stage == "fields":
        print("(checks of the whole grid, such as duplicate requests, run once these are fixed)", file=sys.stderr)
