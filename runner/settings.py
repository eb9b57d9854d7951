"""Run settings: the manifest's `run:` block overlaid by command-line flags, checked once.

Both sources are checked by the manifest schema's `$defs/run`, so a flag and a manifest key
obey the same rules, stated once.

A manifest may have been written by someone else. Three of its settings could hurt the one who
runs it, so they take effect only with --trust-manifest: `base_url` for any host but the
official API (the API key would go there), `on_finish` (a command), and an `out` outside
output/ (files written anywhere).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from runner import schemas
from runner.errors import UsageError
from runner.wording import explain

DEFAULT_BASE_URL = "https://api.1min.ai"
OUTPUT_ROOT = Path("output")
MAX_DEADLINE = timedelta(days=366)


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
    retry_failed: bool = False
    priority: int = 0  # among the manifests of a night

    @property
    def credit_cap_jobs(self) -> int | None:
        """How many new jobs --max-credits allows; None without a credit cap."""
        if self.max_credits is None or self.credits_per_image is None:
            return None
        return int(min(self.max_credits / self.credits_per_image, 1e15))

    @property
    def job_cap(self) -> int | None:
        caps = [cap for cap in (self.max_jobs, self.credit_cap_jobs) if cap is not None]
        return min(caps) if caps else None

    @classmethod
    def resolve(
        cls, manifest_run: Mapping[str, Any], flags: Mapping[str, Any], trust_manifest: bool = False, source: str = "the manifest"
    ) -> RunSettings:
        """Manifest values, then flags that were given (not None) on top; UsageError if invalid,
        or if the manifest asks for what only --trust-manifest allows."""
        given = {name: value for name, value in flags.items() if value is not None}
        if not trust_manifest:
            _refuse_untrusted(manifest_run, given, source)
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
    if seconds > MAX_DEADLINE.total_seconds():
        raise UsageError(f"--deadline {text}: a deadline is at most {MAX_DEADLINE.days} days away")
    return now + timedelta(seconds=seconds)


def official(base_url: str) -> bool:
    """Is `base_url` the 1min.ai API itself (https, on 1min.ai)?"""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    return parts.scheme == "https" and (host == "1min.ai" or host.endswith(".1min.ai"))


def default_out(name: str, emulated: bool) -> Path:
    """Where a manifest runs unless told: the emulator's placeholder pictures apart from paid ones."""
    return OUTPUT_ROOT / "emulator" / name if emulated else OUTPUT_ROOT / name


def untrusted_asks(manifest_run: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    """What the manifest's run: block asks for that only --trust-manifest allows, in words."""
    asks = []
    base_url = manifest_run.get("base_url")
    if isinstance(base_url, str) and "base_url" not in given and not official(base_url):
        asks.append(f"run.base_url sends the API key to {urlsplit(base_url).netloc or base_url}")
    if isinstance(manifest_run.get("on_finish"), str) and "on_finish" not in given:
        asks.append(f"run.on_finish runs the command {manifest_run['on_finish']!r}")
    out = manifest_run.get("out")
    if isinstance(out, str) and "out" not in given and not _inside_output(out):
        asks.append(f"run.out writes to {out}, outside {OUTPUT_ROOT}/")
    return asks


def _refuse_untrusted(manifest_run: Mapping[str, Any], given: Mapping[str, Any], source: str) -> None:
    asks = untrusted_asks(manifest_run, given)
    if asks:
        raise UsageError(
            f"{source} asks for what only a manifest you trust may: {'; '.join(asks)}.\n"
            "  If you wrote it or trust its author, add --trust-manifest; or give --base-url, --on-finish or --out yourself."
        )


def _inside_output(out: str) -> bool:
    path = PurePosixPath(out)
    return not path.is_absolute() and ".." not in path.parts and path.parts[:1] == (OUTPUT_ROOT.name,)
