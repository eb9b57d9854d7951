"""`flux-batch validate` and `flux-batch plan`: what a manifest makes, before anything is sent."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from runner.cli import report_problems
from runner.errors import EXIT_OK, EXIT_USAGE, ManifestError
from runner.forecast import Forecast, forecast
from runner.manifest import load
from runner.plan import Plan, make_plan
from runner.settings import DEFAULT_BASE_URL, RunSettings, default_out, untrusted_asks
from runner.status import RunStatus, status_of
from runner.template import render
from runner.words import plural

LARGE_PLAN = 10_000  # plan warns above this many jobs


def validate_command(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.manifests:
        try:
            plan = make_plan(load(path), max_grid=args.max_grid)
        except ManifestError as exc:
            report_problems(exc)
            failed += 1
            continue
        print(f"{path}: ok, {plural(plan.total, 'job')} from {plural(len(plan.prompts), 'prompt')}")
    return EXIT_USAGE if failed else EXIT_OK


def plan_command(args: argparse.Namespace) -> int:
    plan = make_plan(load(args.manifest), max_grid=args.max_grid)
    if args.json:
        return _print_jobs(plan, sys.stdout)
    flags = {"out": args.out, "base_url": args.base_url, "retry_failed": args.retry_failed}
    settings = RunSettings.resolve(plan.manifest.run, flags, trust_manifest=True)
    asks = [] if args.trust_manifest else untrusted_asks(plan.manifest.run, {k: v for k, v in flags.items() if v is not None})
    run_dir = Path(settings.out) if settings.out else default_out(plan.manifest.name, emulated=args.emulator)
    print(describe_plan(plan, settings, run_dir, status_of(run_dir, plan), args.emulator, asks))
    if asks:
        needs = "; ".join(asks)
        print(f"flux-batch: warning: {args.manifest} asks for what only --trust-manifest allows: {needs}", file=sys.stderr)
    if plan.total > LARGE_PLAN:
        cost = f" and about {plan.total * settings.credits_per_image:,.0f} credits" if settings.credits_per_image else ""
        print(
            f"flux-batch: warning: {plan.manifest.path} makes {plan.total:,} jobs{cost}; "
            "check the grid is what you mean, and consider --max-jobs or --max-credits",
            file=sys.stderr,
        )
    return EXIT_OK


def _print_jobs(plan: Plan, out: TextIO) -> int:
    for job in plan.jobs():
        out.write(json.dumps(job.as_dict(), ensure_ascii=False) + "\n")
    out.flush()
    return EXIT_OK


def describe_plan(plan: Plan, settings: RunSettings, run_dir: Path, status: RunStatus, emulator: bool, asks: list[str]) -> str:
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
    outlook = forecast(max(0, pending), settings, status.latencies)
    rows.append(("estimate", _estimate(outlook, settings)))
    if outlook.credits is not None and settings.credits_per_image and outlook.jobs:
        cost = f"about {outlook.credits:,.0f} credits at {render(settings.credits_per_image)} an image"
        if outlook.capped_jobs is not None:
            cost += f"; --max-credits {render(settings.max_credits or 0)} allows {outlook.capped_jobs} jobs a run"
        rows.append(("cost", cost))
    if status.credits_spent is not None:
        rows.append(("spent", f"{status.credits_spent:,.6g} credits so far, over every run"))
    if settings.on_finish:
        rows.append(("on finish", settings.on_finish))
    width = max(len(label) for label, _ in rows) + 2
    lines = [f"plan for {manifest.name} ({manifest.path})", "prompts"]
    lines += [f"{label:<{width}}{value}".rstrip() for label, value in rows]
    return "\n".join(lines)


def _estimate(outlook: Forecast, settings: RunSettings) -> str:
    if outlook.jobs == 0:
        return "nothing to run"
    if outlook.measured:
        basis = f"the median of {outlook.measured:,} images made here, {outlook.per_image:.1f} s"
    else:
        basis = f"assuming ~{outlook.per_image:.0f} s an image"
    limit = f", paced at {render(settings.requests_per_minute or 0)} requests a minute" if outlook.paced else ""
    return f"about {_duration(outlook.seconds)} at concurrency {settings.concurrency}{limit}, {basis}"


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
