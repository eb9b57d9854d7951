"""What the rest of a manifest will take: time and credits, before anything is sent.

The time per image is the median of those a run dir has already made, or a cautious guess
before there are any; concurrency divides it, and a requests-per-minute pace may bound it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from runner.settings import RunSettings

# Before any image has been made in a run dir, assume this much time per image.
ASSUMED_SECONDS_PER_IMAGE = 30.0


@dataclass(frozen=True, slots=True)
class Forecast:
    jobs: int  # to run
    seconds: float
    per_image: float
    measured: int  # images made in the run dir that `per_image` is the median of; 0 if assumed
    paced: bool  # the requests-per-minute pace, not concurrency, bounds the time
    credits: float | None  # None when no price is known
    capped_jobs: int | None  # what --max-credits allows, when it allows fewer than `jobs`


def forecast(jobs: int, settings: RunSettings, latencies: Sequence[float]) -> Forecast:
    if latencies:
        import statistics  # the forecast's alone: kept off the start-up of every run

        per_image = statistics.median(latencies)
    else:
        per_image = ASSUMED_SECONDS_PER_IMAGE
    seconds = math.ceil(jobs / settings.concurrency) * per_image
    paced = False
    if settings.requests_per_minute and jobs / settings.requests_per_minute * 60 > seconds:
        seconds, paced = jobs / settings.requests_per_minute * 60, True
    credits = jobs * settings.credits_per_image if settings.credits_per_image else None
    cap = settings.credit_cap_jobs
    return Forecast(jobs, seconds, per_image, len(latencies), paced, credits, cap if cap is not None and cap < jobs else None)
