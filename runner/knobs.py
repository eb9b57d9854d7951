"""The emulator's knobs: how it behaves. Light to import: the CLI declares flags from them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

DEFAULT_KEY = "emulator-key"


@dataclass(frozen=True)
class Knobs:
    """How the emulator behaves; rates are probabilities per generation request."""

    latency: tuple[float, float] = (0.05, 0.15)  # seconds, uniform
    requests_per_minute: float | None = None  # beyond it: 429 with Retry-After
    rate_window: float = 60.0  # seconds over which requests_per_minute is counted
    retry_after: float = 1.0
    server_error: float = 0.0  # 500 with a JSON body
    cloudflare: float = 0.0  # 502/503/522/524 HTML pages
    drop: float = 0.0  # connection closed without an answer
    hang: float = 0.0  # no answer until the client gives up
    non_json: float = 0.0  # 200 whose body is not JSON
    busy: float = 0.0  # 400 EXTERNAL_API_RESPONSE_WITH_ERROR, provider 503 inside
    refuse: float = 0.0  # the same 400 with a provider 422 inside: refused for good
    fail_first: int = 0  # the first N attempts of every distinct promptObject get a 500
    download_fail: float = 0.0  # image downloads answering 500
    download_truncate: float = 0.0  # image downloads cut short, as a broken proxy might
    upload_fail_first: int = 0  # the first N uploads to the Asset API answer 503
    temporary_url_ttl: float = 3600.0
    credits: int | None = None  # images left; None is unlimited
    credits_answer: str = "200"  # how exhaustion is said: "200" (INSUFFICIENT_CREDITS) or "402"
    keys: frozenset[str] = frozenset({DEFAULT_KEY})
    max_side: int | None = None  # cap on image width/height, for fast tests and benchmarks
    seed: int = 0  # of the fault dice, so a faulty run is repeatable

    def with_(self, **changes: Any) -> Knobs:
        return replace(self, **changes)
