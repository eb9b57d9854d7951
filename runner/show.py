"""One job of a run dir in full, and its request as a curl command to send it again by hand.

A job is named by its id, any unambiguous start of it, or the name of one of its images
(`images/3f2a9c01d4e5b6a7-1.webp`), as a tired user copies it from the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import inputs
from runner.endpoint import Provenance
from runner.errors import UsageError
from runner.plan import Job, Plan
from runner.record_file import numbered_lines
from runner.records import Record
from runner.settings import DEFAULT_BASE_URL
from runner.store import uploaded_assets

EMULATOR_ADDRESS = "http://127.0.0.1:8080"  # where `flux-batch emulator` listens unless told otherwise
ASSET_PLACEHOLDER = "ASSET_PATH_FROM_THE_UPLOAD"


@dataclass(frozen=True)
class JobHistory:
    """A job as the manifest makes it, and every records line written for it, oldest first."""

    job: Job
    in_manifest: bool  # False: a job of an earlier manifest, known from its records alone
    lines: list[Record]

    @property
    def state(self) -> str:
        if any(line.succeeded for line in self.lines):
            return "done"
        return "failed" if self.lines else "pending"

    def as_json(self) -> dict[str, Any]:
        return {
            **self.job.as_dict(),
            "state": self.state,
            "in_manifest": self.in_manifest,
            "records": [line.as_json() for line in self.lines],
        }


def find(run_dir: Path, plan: Plan, name: str) -> JobHistory:
    """The job `name` stands for, in the manifest or else in the records; UsageError if no
    job or more than one answers to it."""
    key = Path(name).name.split(".")[0].split("-")[0].lower()
    if not key or any(c not in "0123456789abcdef" for c in key):
        raise UsageError(f"{name!r} is not a job id: a job id is 16 hexadecimal digits, as `export` lists them")
    matches = {job.job_id: job for job in plan.jobs() if job.job_id.startswith(key)}
    lines = [r for r in _records_starting(run_dir, key) if r.job_id in matches or not matches]
    in_manifest = bool(matches)
    if not matches:
        matches = {line.job_id: line.job for line in lines}
    if not matches:
        raise UsageError(f"no job {key} in {run_dir}: `flux-batch export {run_dir} -o -` lists every job")
    if len(matches) > 1:
        some = ", ".join(sorted(matches)[:5])
        raise UsageError(f"{key} is the start of {len(matches)} job ids ({some}, ...): give more of it")
    job_id, job = next(iter(matches.items()))
    return JobHistory(job, in_manifest, [line for line in lines if line.job_id == job_id])


def _records_starting(run_dir: Path, key: str) -> list[Record]:
    marker = f'"job_id": "{key}'.encode()
    found = []
    for _, raw in numbered_lines(run_dir):
        if marker in raw[:80] and (record := Record.decode(raw)) is not None and record.job_id.startswith(key):
            found.append(record)
    return found


def base_url_of(provenance: Provenance | None) -> str:
    """Where a job of this run dir was sent: the last API it used, or the emulator's address."""
    if provenance is not None and provenance.emulated:
        return EMULATOR_ADDRESS
    if provenance is not None and provenance.base_urls:
        return provenance.base_urls[-1]
    return DEFAULT_BASE_URL


def curl(run_dir: Path, plan: Plan, job: Job, base_url: str) -> str:
    """The request of `job` as the provider's page writes it: a command for a POSIX shell that
    reads the key from $ONEMIN_API_KEY when it runs, so the key is never in what is printed."""
    base = base_url.rstrip("/")
    prompt_object = dict(job.request.get("promptObject") or {})
    lines = []
    token = prompt_object.get("image_prompt")
    if inputs.is_token(token):
        uploads = uploaded_assets(run_dir)
        asset = (uploads.get(base_url) or uploads.get(base) or {}).get(token)
        if asset is None:
            source = plan.manifest.local_images.get(token)
            picture = str(source.resolve()) if source else "YOUR_INPUT_IMAGE"
            lines += [
                f"# The input image is not uploaded to {base} yet: upload it, then put the path the answer",
                f"# gives in image_prompt in place of {ASSET_PLACEHOLDER}.",
                f"curl -X POST {_quote(base + '/api/assets')} \\",
                '  -H "API-KEY: $ONEMIN_API_KEY" \\',
                f"  -F {_quote('asset=@' + picture)}",
                "",
            ]
        prompt_object["image_prompt"] = asset or ASSET_PLACEHOLDER
    body = json.dumps({**job.request, "promptObject": prompt_object}, indent=2, ensure_ascii=False)
    lines += [
        f"curl -X POST {_quote(base + '/api/features')} \\",
        '  -H "API-KEY: $ONEMIN_API_KEY" \\',
        "  -H 'Content-Type: application/json' \\",
        f"  -d {_quote(body)}",
    ]
    return "\n".join(lines)


def _quote(text: str) -> str:
    """`text` as one word of a POSIX shell, taken literally: in single quotes, where nothing is
    special but the single quote itself (closed, escaped, reopened)."""
    return "'" + text.replace("'", "'\\''") + "'"
