"""The run directory: where a run's records and images live (SPEC.md section 5)."""

from __future__ import annotations

import json
from pathlib import Path

RECORDS = "records.jsonl"


def read_success_ids(run_dir: Path) -> set[str]:
    """Ids of the jobs that have a success line in `run_dir`; empty for a new run dir.

    A torn last line (a crash mid-write) or a foreign line is not a success and is skipped.
    """
    done: set[str] = set()
    try:
        records = open(run_dir / RECORDS, "rb")
    except FileNotFoundError:
        return done
    with records:
        for raw in records:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("status") == "success":
                job = record.get("job_id")
                if isinstance(job, str):
                    done.add(job)
    return done
