"""The emulator's knobs: how it behaves, and the flags that set them. Light to import: the
command line declares its flags from them.

Each knob says its unit and meaning in its field's metadata; `flux-batch emulator --help`
shows that text, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields, replace
from typing import Any

DEFAULT_KEY = "emulator-key"


def knob(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Knobs:
    """How the emulator behaves; rates are probabilities per generation request."""

    latency: tuple[float, float] = knob((0.05, 0.15), "seconds a generation takes, drawn uniformly from MIN,MAX")
    requests_per_minute: float | None = knob(None, "requests allowed per rate window, scaled to a minute; past it, 429")
    rate_window: float = knob(60.0, "seconds over which requests_per_minute is counted")
    rate_burst: int | None = knob(
        None, "requests a token bucket holds: with it, requests_per_minute refills a bucket this deep instead of a window"
    )
    rate_policy: int = knob(0, "1: every answer states the limit in a RateLimit-Policy header")
    retry_after: float = knob(1.0, "seconds a 429 asks the client to wait (its Retry-After header; a bucket says its own)")
    server_error: float = knob(0.0, "probability (0-1) of a 500 with a JSON body")
    cloudflare: float = knob(0.0, "probability of a Cloudflare HTML page: 502, 503, 522 or 524")
    drop: float = knob(0.0, "probability of closing the connection without an answer")
    hang: float = knob(0.0, "probability of never answering, until the client gives up")
    non_json: float = knob(0.0, "probability of a 200 whose body is an HTML page, not JSON")
    busy: float = knob(0.0, "probability of the relay's 'busy' 400 with a provider 503 inside (retryable)")
    refuse: float = knob(0.0, "probability of the relay's 'busy' 400 with a provider 422 inside (refused for good)")
    fail_first: int = knob(0, "the first N attempts of every distinct promptObject get a 500")
    download_fail: float = knob(0.0, "probability (0-1) that an image download answers 503")
    download_fail_first: int = knob(0, "the first N downloads of every image answer 503")
    download_retry_after: float | None = knob(None, "seconds a failed download asks to wait (Retry-After); none by default")
    download_truncate: float = knob(0.0, "probability that an image download is cut short, as a broken proxy might")
    upload_fail_first: int = knob(0, "the first N uploads to the Asset API answer 503")
    temporary_url_ttl: float = knob(3600.0, "seconds a signed temporaryUrl stays valid")
    credits: int | None = knob(None, "images the account can pay for; unlimited by default")
    cost: float | None = knob(None, "credits each image costs, said in the aiRecord's creditsUsed; not said by default")
    credits_answer: str = knob("200", "how exhaustion is said: 200 (INSUFFICIENT_CREDITS in the record) or 402")
    keys: frozenset[str] = knob(frozenset({DEFAULT_KEY}), "API keys accepted, comma-separated")
    max_side: int | None = knob(None, "pixels: the longest side of an image is scaled down to this, for fast tests")
    seed: int = knob(0, "seed of the fault dice, so a faulty run is repeatable")

    def with_(self, **changes: Any) -> Knobs:
        return replace(self, **changes)


def add_knob_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Knobs field, e.g. --server-error 0.1 or --latency 0.05,0.2."""
    for knob in fields(Knobs):
        flag = "--" + knob.name.replace("_", "-")
        default = knob.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple | frozenset) else default
        meaning = knob.metadata.get("help", "")
        parser.add_argument(flag, dest=f"knob_{knob.name}", metavar="VALUE", help=f"{meaning} (default {shown})")


def knobs_from(args: argparse.Namespace) -> Knobs:
    changes: dict[str, Any] = {}
    for knob in fields(Knobs):
        text = getattr(args, f"knob_{knob.name}", None)
        if text is None:
            continue
        declared = str(knob.type)  # e.g. "int | None", "tuple[float, float]"
        try:
            if declared.startswith("tuple"):
                changes[knob.name] = tuple(float(part) for part in text.split(","))
            elif declared.startswith("frozenset"):
                changes[knob.name] = frozenset(part for part in text.split(",") if part)
            elif declared.startswith("int"):
                changes[knob.name] = int(text)
            elif declared.startswith("str"):
                changes[knob.name] = text
            else:
                changes[knob.name] = float(text)
        except ValueError:
            raise ValueError(f"emulator --{knob.name.replace('_', '-')}: cannot use {text!r}") from None
    return Knobs().with_(**changes)
