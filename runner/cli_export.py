"""`flux-batch export` and `flux-batch show`: a run dir's jobs as a table, or one job in full."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from runner import endpoint
from runner.errors import EXIT_OK, UsageError
from runner.export import Table, export
from runner.record_file import first_success
from runner.show import JobHistory, base_url_of, curl, find
from runner.status import plan_of_run_dir
from runner.words import plural, printable


def export_command(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    table = Table(plan_of_run_dir(run_dir, args.max_grid), run_dir)
    target = args.output or str(run_dir / f"export.{'db' if args.format == 'sqlite' else args.format}")
    try:
        count = export(table, args.format, target)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except BrokenPipeError:
        raise  # the reader of standard output went away: quiet, as for every verb
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    where = "standard output" if target == "-" else target
    print(f"exported {plural(count, 'job')} of {run_dir} to {where}", file=sys.stderr if target == "-" else sys.stdout)
    return EXIT_OK


def show_command(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    plan = plan_of_run_dir(run_dir, args.max_grid)
    history = find(run_dir, plan, args.job_id)
    if args.curl:
        provenance = endpoint.read(run_dir) or endpoint.infer(first_success(run_dir))
        if args.base_url is None and provenance is not None and provenance.emulated:
            print("# made on the emulator: `flux-batch emulator` serves this address, with the key emulator-key")
        print(curl(run_dir, plan, history.job, args.base_url or base_url_of(provenance)))
    elif args.json:
        print(_json(history.as_json()))
    else:
        print("\n".join(_described(run_dir, history)))
    return EXIT_OK


def _described(run_dir: Path, history: JobHistory) -> list[str]:
    job = history.job
    origin = "" if history.in_manifest else " (not in the current manifest: from an earlier one)"
    text = [f"job {job.job_id} of prompt {job.prompt_id}: {history.state}{origin}"]
    if job.axes:
        text.append("axes: " + ", ".join(f"{name}={json.dumps(value)}" for name, value in job.axes.items()))
    text.append("request:\n" + textwrap.indent(_json(job.request), "  "))
    attempts = sum(line.attempts for line in history.lines)
    text.append(f"attempts: {attempts} over {plural(len(history.lines), 'records line')}")
    for line in history.lines:
        credits = f", {line.credits:g} credits" if line.credits is not None else ""
        if line.succeeded:
            how = "recovered from an image on disk" if line.recovered else f"{line.elapsed_s:g} s{credits}"
            text.append(f"  {line.finished_at}  SUCCESS after {plural(line.attempts, 'attempt')} ({how})")
            text += [f"    {run_dir / name}" for name in line.files]
        elif line.error is not None:
            code = f" {line.error.status}" if line.error.status else ""
            again = "" if line.error.retryable else " (failed for good)"
            text.append(f"  {line.finished_at}  FAILED after {plural(line.attempts, 'attempt')}: {line.error.kind}{code}{again}")
            text.append(f"    {printable(line.error.message)}")
    last = history.lines[-1].ai_record if history.lines else None
    if last:
        text.append("aiRecord of the last line:\n" + textwrap.indent(_json(last), "  "))
    if not history.lines:
        text.append("not sent yet: the next `flux-batch run` of its manifest sends it")
    return text


_C1_CONTROLS = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}


def _json(value: object) -> str:
    """JSON for a terminal: readable in any script, but with no character a terminal obeys
    (json escapes the C0 controls itself; the C1 ones, such as a lone CSI, it leaves)."""
    return json.dumps(value, indent=2, ensure_ascii=False).translate(_C1_CONTROLS)
