"""The command line's words: every verb, flag and help text, and nothing else.

Each verb names its handler as "module:function", imported only when that verb runs: `validate`
and `plan` never load the network stack, and `run` loads it once.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from runner import __version__
from runner.emulator.knobs import add_knob_flags
from runner.plan import MAX_GRID
from runner.settings import RunSettings

EXIT_CODES_TEXT = (
    "exit codes: 0 every job done; 1 finished, some jobs failed; 2 usage or manifest error, or the\n"
    "run dir is in use or of another kind (nothing sent); 3 stopped early, resumable (bad key, no\n"
    "credits, deadline, --max-jobs or --max-credits, a full disk, a redirect); 129/130/143\n"
    "SIGHUP/SIGINT/SIGTERM, resumable"
)


def parser() -> argparse.ArgumentParser:
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
    validate.set_defaults(handler="runner.cli_plan:validate_command")

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
    plan.set_defaults(handler="runner.cli_plan:plan_command")

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
    run.add_argument(
        "manifest",
        nargs="+",
        metavar="MANIFEST",
        help=manifest_help + "; several, or a directory (every *.yaml in it, scanned again as the night goes on), "
        "run as one night: one pool, one pace and one set of caps for all of them",
    )
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
    run.add_argument(
        "--share",
        choices=["fair", "priority"],
        default="fair",
        help="several manifests: take turns (fair, the default), or go in order: run.priority, then as listed",
    )
    run.add_argument("--night-log", metavar="DIR", help="several manifests: where night.json is written (default output/)")
    run.add_argument("--no-report", dest="report", action="store_false", default=None, help="do not write report.html at the end")
    _grid_flag(run)
    run.set_defaults(handler="runner.cli_night:run_or_night")

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
    report.set_defaults(handler="runner.cli_status:report_command")

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
    status.set_defaults(handler="runner.cli_status:status_command")

    runs = _verb(
        verbs,
        "runs",
        "every run directory under a root: what it holds, cost and is doing",
        "List every run directory under ROOT, the most recently active first: its name and endpoint, its done, "
        "failed, to-retry and pending jobs, the credits spent (in all and in the last run), how the last run "
        "ended, and whether a run is live in it now. A run dir that cannot be read is listed as damaged.",
    )
    runs.add_argument("root", nargs="?", default="output", metavar="ROOT", help="where to look (default output/)")
    runs.add_argument("--json", action="store_true", help="print one object per run dir as JSON")
    _grid_flag(runs)
    runs.set_defaults(handler="runner.cli_status:runs_command")

    export = _verb(
        verbs,
        "export",
        "write a run directory's jobs as CSV, JSON lines or SQLite",
        "Write one row per job of RUN_DIR's manifest, done or not: job_id, prompt_id, status, one column per axis, "
        "the prompt, files, attempts, elapsed_s, error kind and message, credits, mean score and wins. SQLite also "
        "holds the tables ratings and invocations. The file appears whole or not at all.",
    )
    export.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, as `run` made it")
    export.add_argument("--format", choices=["csv", "jsonl", "sqlite"], default="csv", help="the file's format (default csv)")
    export.add_argument(
        "-o", "--output", metavar="FILE", help="where to write (default RUN_DIR/export.csv, .jsonl or .db; - for stdout)"
    )
    _grid_flag(export)
    export.set_defaults(handler="runner.cli_export:export_command")

    show = _verb(
        verbs,
        "show",
        "one job of a run directory in full",
        "Show one job: its axes, its request, every records line written for it (attempts, errors, files, "
        "credits) and the API's last record. JOB_ID may be any unambiguous start of the id, or an image's name. "
        "--curl prints the request as a curl command that reads the key from $ONEMIN_API_KEY when it runs.",
    )
    show.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, as `run` made it")
    show.add_argument("job_id", metavar="JOB_ID", help="a job id, its start, or the name of one of its images")
    shown_as = show.add_mutually_exclusive_group()
    shown_as.add_argument("--curl", action="store_true", help="print the request as a curl command to send by hand")
    shown_as.add_argument("--json", action="store_true", help="print the job and its records lines as JSON")
    show.add_argument("--base-url", metavar="URL", help="the API the curl command calls (default: the one the run dir last used)")
    _grid_flag(show)
    show.set_defaults(handler="runner.cli_export:show_command")

    review = _verb(
        verbs,
        "review",
        "judge a run's images in the browser: blind pairs, scores, notes",
        "Serve a page on 127.0.0.1 to judge the images of RUN_DIRs: blind pairs of two arms made with the same "
        "axes and seed (keys: left, right, down for a tie, s to skip), and a grid to score images 1-5 and note "
        "them. Arms may come from several run dirs. Judgments are appended to RUN_DIR/ratings.jsonl, on disk "
        "before the page says saved; images a live run adds appear without a reload.",
    )
    review.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories, as `run` made them")
    review.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: a free one)")
    review.add_argument("--rater", metavar="NAME", help="who is judging (default: the login name)")
    review.add_argument("--no-open", action="store_true", help="do not open a browser; only print the address")
    _grid_flag(review)
    review.set_defaults(handler="runner.cli_review:review_command")

    verdict = _verb(
        verbs,
        "verdict",
        "what the judgments say: win rates, a ranking, scores by axis",
        "Tally the judgments of RUN_DIRs: for each two arms, wins, losses and ties with a Wilson 95% interval and "
        "an exact sign test; with three or more arms a Bradley-Terry ranking; the mean score of each value of "
        "each swept field. Says plainly when there are too few votes to tell.",
    )
    verdict.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories, as `run` made them")
    verdict.add_argument("--json", action="store_true", help="print the verdict as JSON")
    verdict.add_argument("--by-rater", action="store_true", help="also show how far each two raters agree")
    _grid_flag(verdict)
    verdict.set_defaults(handler="runner.cli_review:verdict_command")

    emulator = _verb(
        verbs,
        "emulator",
        "serve the built-in emulator of the API on loopback",
        "Serve an emulator of the 1min.ai Flux Dev API on 127.0.0.1, with its error shapes, signed image URLs "
        "and Asset API. Knobs inject latency, rate limits and faults; it accepts the key 'emulator-key'.",
    )
    emulator.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080; 0 picks a free one)")
    add_knob_flags(emulator)
    emulator.set_defaults(handler="runner.emulator.cli:emulator_command")
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
