"""What a run dir holds, from the run dir alone: the counts `status` shows and `plan` uses.

One pass over the plan's job ids against the records, so a job is counted once, by its latest
state: done, failed for good (sent again only with --retry-failed), failed but to be tried
again, paid and waiting to be fetched, or never sent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import endpoint
from runner.errors import UsageError
from runner.manifest import load
from runner.plan import Plan, make_plan
from runner.record_file import read_index
from runner.store import live_holder, manifest_of
from runner.summary import Summary, read_summary


@dataclass(frozen=True)
class RunStatus:
    run_dir: Path
    name: str
    total: int
    done: int
    failed_for_good: int
    failed_to_retry: int
    unfetched: int  # paid, not yet fetched
    failed_by_kind: dict[str, int]
    failures: list[tuple[str, str, int]]  # (kind, message, jobs), most jobs first
    damaged_lines: int
    credits_spent: float | None  # over every invocation; None when no price was ever known
    live: str | None
    provenance: endpoint.Provenance | None
    last_run: Summary | None
    latencies: list[float] = field(repr=False, default_factory=list)

    @property
    def failed(self) -> int:
        return self.failed_for_good + self.failed_to_retry + self.unfetched

    @property
    def pending(self) -> int:
        return self.total - self.done - self.failed

    def as_json(self) -> dict[str, Any]:
        stopped = self.last_run.stopped if self.last_run else None
        return {
            "run_dir": str(self.run_dir),
            "name": self.name,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "failed_for_good": self.failed_for_good,
            "failed_to_retry": self.failed_to_retry,
            "unfetched": self.unfetched,
            "failed_by_kind": self.failed_by_kind,
            "failures": [{"kind": k, "message": m, "jobs": n} for k, m, n in self.failures],
            "pending": self.pending,
            "damaged_lines": self.damaged_lines,
            "credits_spent": self.credits_spent,
            "live": self.live,
            "endpoint": self.provenance.describe() if self.provenance else None,
            "emulated": self.provenance.emulated if self.provenance else None,
            "stopped": stopped.reason if stopped else None,
            "pace": self.last_run.pace if self.last_run else None,
            "last_run": self.last_run.as_json() if self.last_run else None,
        }


def plan_of_run_dir(run_dir: Path, max_grid: int) -> Plan:
    """The plan of the manifest a run dir was last run with (its own copy of it)."""
    copy, base_dir = manifest_of(run_dir)
    if not copy.is_file():
        raise UsageError(f"{run_dir} is not a run directory (it has no manifest.yaml)")
    return make_plan(load(copy, base_dir=base_dir), max_grid=max_grid)


def status_of(run_dir: Path, plan: Plan) -> RunStatus:
    index = read_index(run_dir)
    done = for_good = to_retry = unfetched = 0
    kinds: Counter[str] = Counter()
    reasons: Counter[tuple[str, str]] = Counter()
    # A run dir with no records (or none at all, for `plan`) holds nothing of the plan: no pass.
    for job_id in plan.job_ids() if index.lines else ():
        if job_id in index.done:
            done += 1
            continue
        failure = index.failed.get(job_id)
        if failure is None:
            continue
        if job_id in index.unfetched:
            unfetched += 1
        elif failure.retryable:
            to_retry += 1
        else:
            for_good += 1
        kinds[failure.kind] += 1
        reasons[failure.kind, failure.message] += 1
    return RunStatus(
        run_dir=run_dir,
        name=plan.manifest.name,
        total=plan.total,
        done=done,
        failed_for_good=for_good,
        failed_to_retry=to_retry,
        unfetched=unfetched,
        failed_by_kind=dict(kinds),
        failures=[(k, m, n) for (k, m), n in reasons.most_common()],
        damaged_lines=len(index.bad),
        credits_spent=round(index.credits, 6) if index.priced else None,
        live=live_holder(run_dir),
        provenance=endpoint.read(run_dir),
        last_run=read_summary(run_dir),
        latencies=index.latencies,
    )
