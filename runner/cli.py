"""The command line's edge: parse arguments, call the verb's handler, map errors to exit codes.

The core never prints or exits; everything a user reads is written by the cli_* modules:

    cli_args.py    every verb, flag and help text
    cli_plan.py    validate, plan
    cli_run.py     run: signals, progress, the words at the end
    cli_status.py  status, runs, report
    cli_export.py  export, show
    cli_review.py  review, verdict
    emulator/cli.py  emulator
"""

from __future__ import annotations

import argparse
import difflib
import gc
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from runner.cli_args import parser
from runner.errors import EXIT_OK, EXIT_USAGE, FluxBatchError, ManifestError
from runner.words import plural

YOUNG_OBJECTS_PER_COLLECTION = 10_000  # the cyclic collector's first threshold; Python's is 700


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbs = parser()
    hint = _unknown_verb(verbs, arguments)
    if hint:
        print(f"flux-batch: {hint}", file=sys.stderr)
        return EXIT_USAGE
    args = verbs.parse_args(arguments)
    args.argv = arguments
    thresholds = gc.get_threshold()
    in_process = gc.isenabled()  # False when runner.__main__ turned the collector off to start up
    try:
        handler = _handler(args.handler)
        settle_memory()
        return handler(args)
    except ManifestError as exc:
        report_problems(exc)
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


def _handler(name: str) -> Callable[[argparse.Namespace], int]:
    """The verb's handler, "module:function": its module is imported only for that verb."""
    module, function = name.split(":")
    handler: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), function)
    return handler


def settle_memory() -> None:
    """Start-up is over: keep what it made out of the cyclic collector's way, and let the
    collector run less often. A run's own objects are JSON-like and freed by reference
    counting; over 2,000 jobs this took collection from about 50 ms to about 1 ms."""
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS_PER_COLLECTION, 10, 10)
    gc.enable()


def _unknown_verb(verbs: argparse.ArgumentParser, arguments: list[str]) -> str | None:
    """A mistyped verb gets a did-you-mean, not argparse's list of every choice."""
    choices = next(action for action in verbs._actions if isinstance(action, argparse._SubParsersAction)).choices
    first = next((a for a in arguments if not a.startswith("-")), None)
    if first is None or first in choices or arguments[0].startswith("-"):
        return None
    close = difflib.get_close_matches(first, list(choices), n=1, cutoff=0.5)
    suggestion = f"did you mean '{close[0]}'? " if close else ""
    return f"'{first}' is not a command; {suggestion}`flux-batch --help` lists them: {', '.join(choices)}"


def report_problems(exc: ManifestError) -> None:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    files = sorted({p.file for p in exc.problems})
    print(f"{plural(len(exc.problems), 'problem')} in {', '.join(files)}; nothing was sent to the API", file=sys.stderr)
    if exc.stage == "fields":
        print("(checks of the whole grid, such as duplicate requests, run once these are fixed)", file=sys.stderr)
