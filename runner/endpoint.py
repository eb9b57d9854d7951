"""Where a run dir's images came from: the emulator, or a real API at a base URL.

Emulator pictures are placeholders. They must never stand in a run dir as if they were paid
results, or a user who tries the tool on the emulator and then sets a key would be told that
everything is done. So a run dir records its kind in `endpoint.json`, and a run refuses a
run dir of the other kind before anything is sent:

    stored            built-in emulator   a loopback base URL      any other base URL
    (new run dir)     emulated            as its answers say       real
    emulated          ok                  ok (an emulator process) refused
    real              refused             ok                       ok (a relay, the API)

Whether an answer came from an emulator is known for sure only from the answer: the emulator
marks every answer with a header. A run dir whose first answers say otherwise than it was
recorded takes their word while it holds no images; once it holds some, the run stops.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runner.errors import EndpointMismatch
from runner.records import Record

FILE = "endpoint.json"
EMULATOR_USER = "emulator-user"  # the userId of the emulator's aiRecords, for run dirs older than endpoint.json


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where requests go: `base_url`, or the emulator built into flux-batch when None."""

    base_url: str | None

    @property
    def built_in(self) -> bool:
        return self.base_url is None

    @property
    def loopback(self) -> bool:
        return self.base_url is None or is_loopback(self.base_url)

    def describe(self) -> str:
        return self.base_url or "the built-in emulator"


@dataclass(frozen=True, slots=True)
class Provenance:
    """What endpoint.json says: whether the images are emulated, and every base URL used."""

    emulated: bool
    base_urls: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.emulated:
            return "the emulator (placeholder pictures, not paid results)"
        return ", ".join(self.base_urls) if self.base_urls else "a real API"

    def with_base_url(self, base_url: str | None) -> Provenance:
        if base_url is None or base_url in self.base_urls:
            return self
        return Provenance(self.emulated, (*self.base_urls, base_url))

    def as_json(self) -> dict[str, Any]:
        return {"emulated": self.emulated, "base_urls": list(self.base_urls)}


def read(run_dir: Path) -> Provenance | None:
    try:
        data = json.loads((run_dir / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("emulated"), bool):
        return None
    urls = data.get("base_urls")
    return Provenance(data["emulated"], tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else ())


def infer(first_success: Record | None) -> Provenance | None:
    """The provenance of a run dir made before endpoint.json, from one of its records."""
    if first_success is None:
        return None
    user = first_success.ai_record.get("userId") if first_success.ai_record else None
    return Provenance(emulated=user == EMULATOR_USER)


def admit(run_dir: Path, stored: Provenance | None, endpoint: Endpoint, holds_images: bool) -> Provenance:
    """The provenance the run dir has once `endpoint` runs into it; EndpointMismatch if it may
    not. A run dir that holds no images yet may change its kind."""
    if stored is None or not holds_images:
        return Provenance(emulated=endpoint.built_in, base_urls=() if endpoint.base_url is None else (endpoint.base_url,))
    if stored.emulated and not endpoint.loopback:
        raise EndpointMismatch(
            f"{run_dir} holds images made by the emulator (placeholders, not paid results), so it cannot take "
            f"images from {endpoint.describe()}.\n"
            f"  Run into another directory, e.g. --out {run_dir.parent / (run_dir.name + '-api')}, or remove {run_dir}; "
            "nothing was sent."
        )
    if not stored.emulated and endpoint.built_in:
        raise EndpointMismatch(
            f"{run_dir} holds paid images from {stored.describe()}; the emulator's placeholder pictures cannot join them.\n"
            "  Leave out --out to run into output/emulator/NAME, or give another --out; nothing was sent."
        )
    return stored  # the base URL joins it once one of its answers is taken (RunDir.answered_by)


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
