"""Run settings: the manifest's `run:` block overlaid by command-line flags, checked once.

Both sources are checked by the manifest schema's `$defs/run`, so a flag and a manifest key
obey the same rules, stated once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from runner import schemas
from runner.errors import UsageError
from runner.manifest import explain

DEFAULT_BASE_URL = "https://api.1min.ai"


@dataclass(frozen=True, slots=True)
class RunSettings:
    out: str | None = None
    concurrency: int = 4
    requests_per_minute: float | None = None
    max_attempts: int = 6
    request_timeout: float = 300.0
    max_jobs: int | None = None
    deadline: str | None = None
    base_url: str | None = None
    async_mode: bool = False
    order: str = "manifest"
    credits_per_image: float | None = None
    max_credits: float | None = None
    on_finish: str | None = None
    report: bool = True

    @property
    def credit_cap_jobs(self) -> int | None:
        """How many new jobs --max-credits allows; None without a credit cap."""
        if self.max_credits is None or self.credits_per_image is None:
            return None
        return int(self.max_credits // self.credits_per_image)

    @property
    def job_cap(self) -> int | None:
        caps = [cap for cap in (self.max_jobs, self.credit_cap_jobs) if cap is not None]
        return min(caps) if caps else None

    @classmethod
    def resolve(cls, manifest_run: Mapping[str, Any], flags: Mapping[str, Any]) -> RunSettings:
        """Manifest values, then flags that were given (not None) on top; UsageError if invalid."""
        given = {name: value for name, value in flags.items() if value is not None}
        problems = [
            f"--{'.'.join(map(str, path)).replace('_', '-')}: {message}"
            for error in schemas.errors("manifest", given, "/$defs/run")
            for path, message in explain(error, tuple(error.absolute_path))
        ]
        if problems:
            raise UsageError("\n".join(problems))
        known = {f.name for f in fields(cls)}
        settings = cls(**{k: v for k, v in {**manifest_run, **given}.items() if k in known})
        if settings.max_credits is not None and settings.credits_per_image is None:
            raise UsageError(
                "--max-credits needs the price of an image: set run: {credits_per_image: N} in the manifest "
                "(or --credits-per-image N)"
            )
        return settings


_DURATION_PART = re.compile(r"([0-9]+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def deadline_at(text: str, now: datetime) -> datetime:
    """When a `--deadline` ends: a duration from `now` ("8h", "1h30m"), or the next HH:MM."""
    if ":" in text:
        hours, minutes = (int(part) for part in text.split(":"))
        moment = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
        return moment if moment > now else moment + timedelta(days=1)
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    return now + timedelta(seconds=seconds)
