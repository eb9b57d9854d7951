"""The command line: parse arguments, call the core, map errors to exit codes.

The core never prints or exits; everything a user reads is written here.
"""

from __future__ import annotations

import argparse
import difflib
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
from runner.errors import EXIT_OK, EXIT_USAGE, FluxBatchError, ManifestError, UsageError
from runner.manifest import load
from runner.plan import MAX_GRID, Plan, make_plan
from runner.settings import DEFAULT_BASE_URL, RunSettings, default_out
from runner.template import render
from runner.words import plural

# Before any image has been made in a run dir, plan assumes this much time per image.
ASSUMED_SECONDS_PER_IMAGE = 30.0
LARGE_PLAN = 10_000  # plan warns above this many jobs
YOUNG_OBJECTS_PER_COLLECTION = 10_000  # the cyclic collector's first threshold; Python's is 700

EXIT_CODES_TEXT = (
    "exit codes: 0 every job done; 1 finished, some jobs failed; 2 usage or manifest error, or the\n"
    "run dir is in use or of another kind (nothing sent); 3 stopped early, resumable (bad key, no\n"
    "credits, deadline, --max-jobs or --max-credits, a full disk, a redirect); 129/130/143\n"
    "SIGHUP/SIGINT/SIGTERM, resumable"
)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    hint = _unknown_verb(parser, arguments)
    if hint:
        print(f"flux-batch: {hint}", file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(arguments)
    args.argv = arguments
    handler: Callable[[argparse.Namespace], int] = args.handler
    thresholds = gc.get_threshold()
    in_process = gc.isenabled()  # False when runner.__main__ turned the collector off to start up
    try:
        return handler(args)
    except ManifestError as exc:
        _report_problems(exc)
        return EXIT_USAGE
    except FluxBatchError as exc:
        print(f"flux-batch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`status --json | head -1`): stop quietly, as Unix tools do. What
        # is still buffered goes nowhere instead of failing again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
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


def _unknown_verb(parser: argparse.ArgumentParser, arguments: list[str]) -> str | None:
    """A mistyped verb gets a did-you-mean, not argparse's list of every choice."""
    verbs = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction)).choices
    first = next((a for a in arguments if not a.startswith("-")), None)
    if first is None or first in verbs or arguments[0].startswith("-"):
        return None
    close = difflib.get_close_matches(first, list(verbs), n=1, cutoff=0.5)
    suggestion = f"did you mean '{close[0]}'? " if close else ""
    return f"'{first}' is not a command; {suggestion}`flux-batch --help` lists them: {', '.join(verbs)}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flux-batch",
        description="Run batches of Flux Dev image generations through the 1min.ai API: a YAML manifest in, "
        "images and a JSONL log of the API's records out, resumable at any point and never paying twice.",
        epilog="`flux-batch VERB --help` explains each command. " + EXIT_CODES_TEXT.replace("\n", " "),
    )
    parser.add_argument("--version", action="version", version=f"flux-batch {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    manifest_help = "a manifest: YAML with version, name, prompts, and optionally defaults, sweep, zip, seeds, run"

    validate = _verb(
        verbs,
        "validate",
        "check manifests and report every problem at once",
        "Check each manifest completely (YAML, fields, values, the whole grid) without sending anything, "
        "and print every problem as FILE:LINE: FIELD: message. Exit 2 if any manifest has a problem.",
    )
    validate.add_argument("manifests", nargs="+", metavar="MANIFEST", help=manifest_help)
    _grid_flag(validate)
    validate.set_defaults(handler=_validate)

    plan = _verb(
        verbs,
        "plan",
        "show the jobs a manifest makes, without calling the API",
        "Show what `run` would do: jobs per prompt and axis, the endpoint and run dir, how many jobs the run "
        "dir already holds (done, failed for good, to retry), a time and cost estimate, and any hook. "
        "Nothing is sent.",
    )
    plan.add_argument("manifest", metavar="MANIFEST", help=manifest_help)
    plan.add_argument("--out", metavar="DIR", help="run dir to compare with (default: output/<name>)")
    plan.add_argument("--json", action="store_true", help="print one job per line as JSON, as a records line has it")
    plan.add_argument(
        "--emulator", action="store_true", help="plan a run on the built-in emulator (run dir output/emulator/<name>)"
    )
    plan.add_argument("--base-url", metavar="URL", help="plan a run against this API address")
    plan.add_argument("--retry-failed", action="store_true", default=None, help="count jobs that failed for good as to run")
    plan.add_argument("--trust-manifest", action="store_true", help="plan as `run --trust-manifest` would")
    _grid_flag(plan)
    plan.set_defaults(handler=_plan)

    run = _verb(
        verbs,
        "run",
        "run, or resume, a manifest into its run directory",
        "Run every job of MANIFEST that its run directory does not hold yet: the same command resumes after a "
        "stop, a crash or a cap, and pays only for what is missing.\n\n"
        "The API key is read from ONEMIN_API_KEY only; without it, add --emulator.\n"
        "Every option but --emulator, --no-progress and --trust-manifest can also be set in the manifest's run: "
        "block; the flag wins. A manifest's base_url (for another host than the API), on_finish and an out "
        "outside output/ take effect only with --trust-manifest.",
    )
    run.epilog = EXIT_CODES_TEXT
    run.add_argument("manifest", metavar="MANIFEST", help=manifest_help)
    defaults = RunSettings()
    run.add_argument(
        "--out", metavar="DIR", help="run directory (default: output/<name>; output/emulator/<name> with --emulator)"
    )
    run.add_argument(
        "--concurrency", type=int, metavar="N", help=f"generation requests in flight at once (default {defaults.concurrency})"
    )
    run.add_argument("--requests-per-minute", type=_number, metavar="R", help="pace requests to at most R a minute")
    run.add_argument(
        "--max-attempts", type=int, metavar="N", help=f"tries per job before it fails (default {defaults.max_attempts})"
    )
    run.add_argument(
        "--request-timeout",
        type=_number,
        metavar="SECONDS",
        help=f"give up on one request after this long, at most 3600 (default {defaults.request_timeout:g})",
    )
    run.add_argument("--max-jobs", type=int, metavar="N", help="submit at most N new jobs in this invocation")
    run.add_argument("--deadline", metavar="DURATION|TIME", help="stop dispatching after e.g. 8h, or at e.g. 06:30")
    run.add_argument("--base-url", metavar="URL", help="API address (default: $ONEMIN_BASE_URL, else the real API)")
    run.add_argument("--order", choices=["manifest", "interleave", "shuffle"], help="dispatch order (default manifest)")
    run.add_argument("--credits-per-image", type=_number, metavar="C", help="what one image costs, for --max-credits")
    run.add_argument("--max-credits", type=_number, metavar="C", help="spend at most C credits in this invocation")
    run.add_argument("--on-finish", metavar="CMD", help="run CMD with the path of summary.json when the run ends")
    run.add_argument(
        "--retry-failed",
        action="store_true",
        default=None,
        help="also send again the jobs that failed for good earlier (a refusal, a validation error)",
    )
    run.add_argument(
        "--async-mode",
        action="store_true",
        default=None,
        help="ask for asynchronous generations and poll them, so a slow one is never paid twice",
    )
    run.add_argument("--emulator", action="store_true", help="start the built-in emulator of the API and use it")
    run.add_argument(
        "--trust-manifest", action="store_true", help="let the manifest's run: block set base_url, on_finish and out"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    run.add_argument("--no-report", dest="report", action="store_false", default=None, help="do not write report.html at the end")
    _grid_flag(run)
    run.set_defaults(handler=_run)

    report = _verb(
        verbs,
        "report",
        "(re)write RUN_DIR/report.html, a gallery of the run",
        "Write RUN_DIR/report.html: one file that opens from disk, with a grid per prompt on axes you pick, "
        "A/B arms side by side, and failed and pending jobs in their cells.",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, as `run` made it")
    report.add_argument("--sheet", action="store_true", help="also draw a contact-sheet PNG per prompt in RUN_DIR/sheets")
    _grid_flag(report)
    report.set_defaults(handler=_report)

    status = _verb(
        verbs,
        "status",
        "done, failed and pending counts of a run directory",
        "Count the jobs of a run directory from its files alone: done, failed for good, failed and to be tried "
        "again, pending; the failures grouped by reason; where the images came from; whether a run is live in "
        "it now; and how the last run ended.",
    )
    status.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, as `run` made it")
    status.add_argument("--json", action="store_true", help="print the counts as JSON")
    _grid_flag(status)
    status.set_defaults(handler=_status)

    emulator = _verb(
        verbs,
        "emulator",
        "serve the built-in emulator of the API on loopback",
        "Serve an emulator of the 1min.ai Flux Dev API on 127.0.0.1, with its error shapes, signed image URLs "
        "and Asset API. Knobs inject latency, rate limits and faults; it accepts the key 'emulator-key'.",
    )
    emulator.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080; 0 picks a free one)")
    add_knob_flags(emulator)
    emulator.set_defaults(handler=_emulator)
    return parser


def _number(text: str) -> float:
    """A flag's number: finite, as every range check assumes (NaN passes them all)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _verb(verbs: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        name, help=summary, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    return parser


def _grid_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-grid",
        type=int,
        default=MAX_GRID,
        metavar="JOBS",
        help=f"refuse a manifest of more jobs than this (default {MAX_GRID:,}); raise it for larger grids",
    )


def _validate(args: argparse.Namespace) -> int:
    settle_memory()
    failed = 0
    for path in args.manifests:
        try:
            plan = make_plan(load(path), max_grid=args.max_grid)
        except ManifestError as exc:
            _report_problems(exc)
            failed += 1
            continue
        print(f"{path}: ok, {plural(plan.total, 'job')} from {plural(len(plan.prompts), 'prompt')}")
    return EXIT_USAGE if failed else EXIT_OK


def _plan(args: argparse.Namespace) -> int:
    settle_memory()
    plan = make_plan(load(args.manifest), max_grid=args.max_grid)
    if args.json:
        return _print_jobs(plan, sys.stdout)
    from runner.settings import untrusted_asks
    from runner.status import status_of

    flags = {"out": args.out, "base_url": args.base_url, "retry_failed": args.retry_failed}
    settings = RunSettings.resolve(plan.manifest.run, flags, trust_manifest=True)
    asks = [] if args.trust_manifest else untrusted_asks(plan.manifest.run, {k: v for k, v in flags.items() if v is not None})
    run_dir = Path(settings.out) if settings.out else default_out(plan.manifest.name, emulated=args.emulator)
    status = status_of(run_dir, plan)
    print(_describe_plan(plan, settings, run_dir, status, args.emulator, asks))
    if asks:
        print(
            f"flux-batch: warning: {args.manifest} asks for what only --trust-manifest allows: {'; '.join(asks)}",
            file=sys.stderr,
        )
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
    return report_command(Path(args.run_dir), sheet=args.sheet, max_grid=args.max_grid)


def _status(args: argparse.Namespace) -> int:
    from runner.cli_run import status_command

    settle_memory()
    return status_command(Path(args.run_dir), as_json=args.json, max_grid=args.max_grid)


def _emulator(args: argparse.Namespace) -> int:
    settle_memory()
    try:
        knobs = knobs_from(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return serve_emulator(knobs, args.port)


def _print_jobs(plan: Plan, out: TextIO) -> int:
    for job in plan.jobs():
        out.write(json.dumps(job.as_dict(), ensure_ascii=False) + "\n")
    out.flush()
    return EXIT_OK


def _describe_plan(plan: Plan, settings: RunSettings, run_dir: Path, status: Any, emulator: bool, asks: list[str]) -> str:
    manifest = plan.manifest
    rows: list[tuple[str, str]] = []
    for prompt in plan.prompts:
        vars_text = "; ".join(f"{name}: {_values(values)}" for name, values in prompt.spec.vars)
        rows.append((f"  {prompt.spec.id}", f"{plural(plan.count(prompt), 'job')}   {vars_text}".rstrip()))
    if manifest.sweep:
        rows.append(("sweep", ""))
        rows += [(f"  {name}", _values(values)) for name, values in manifest.sweep]
    if manifest.zip:
        rows.append(("zip (paired)", ""))
        rows += [(f"  {name}", _values(values)) for name, values in manifest.zip]
    source = "seeds" if manifest.seeds else f"seeds (from seed_base {manifest.seed_base})"
    rows.append((source, _values(plan.seeds)))
    rows.append(("total", plural(plan.total, "job")))
    endpoint = "the built-in emulator" if emulator else settings.base_url or os.environ.get("ONEMIN_BASE_URL") or DEFAULT_BASE_URL
    if asks:
        endpoint += "  (the manifest's run: block needs --trust-manifest)"
    rows.append(("endpoint", endpoint))
    held_back = status.unfetched + (0 if settings.retry_failed else status.failed_for_good)
    pending = plan.total - status.done - held_back
    held = [f"{status.done} done"]
    if status.failed_for_good:
        how = "sent again" if settings.retry_failed else "not sent again without --retry-failed"
        held.append(f"{status.failed_for_good} failed for good ({how})")
    if status.failed_to_retry:
        held.append(f"{status.failed_to_retry} failed and tried again")
    if status.unfetched:
        held.append(f"{status.unfetched} paid images to fetch")
    rows.append(("run dir", f"{run_dir}: {', '.join(held)}, {pending} to run"))
    if status.provenance is not None and status.provenance.emulated:
        rows.append(("", "its images come from the emulator"))
    rows.append(("estimate", _estimate(pending, settings, status.latencies)))
    if settings.credits_per_image:
        cost = f"about {pending * settings.credits_per_image:,.0f} credits at {render(settings.credits_per_image)} an image"
        if settings.credit_cap_jobs is not None and settings.credit_cap_jobs < pending:
            cost += f"; --max-credits {render(settings.max_credits or 0)} allows {settings.credit_cap_jobs} jobs a run"
        rows.append(("cost", cost))
    if settings.on_finish:
        rows.append(("on finish", settings.on_finish))
    width = max(len(label) for label, _ in rows) + 2
    lines = [f"plan for {manifest.name} ({manifest.path})", "prompts"]
    lines += [f"{label:<{width}}{value}".rstrip() for label, value in rows]
    return "\n".join(lines)


def _estimate(pending: int, settings: RunSettings, latencies: Sequence[float]) -> str:
    if pending <= 0:
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


def _report_problems(exc: ManifestError) -> None:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    files = sorted({p.file for p in exc.problems})
    print(f"{plural(len(exc.problems), 'problem')} in {', '.join(files)}; nothing was sent to the API", file=sys.stderr)
    if exc.stage == "fields":
        print("(checks of the whole grid, such as duplicate requests, run once these are fixed)", file=sys.stderr)
