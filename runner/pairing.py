"""Which two images a rater judges next.

The pair that teaches most: of the matched pairs this rater has not judged, one of the arm
pairs with the fewest votes so far, and within it a setting with the fewest votes, so votes
spread evenly over arms and over settings; ties are broken at random. Sides are shuffled, so
neither arm sits on the left more often than the other.
"""

from __future__ import annotations

import random
from collections import Counter

from runner.arms import Shot
from runner.ratings import Judgment

Pair = tuple[Shot, Shot]  # (left, right), as shown


def next_pair(
    matches: list[Pair], standing: list[Judgment], rater: str, skipped: set[frozenset[str]], rng: random.Random
) -> Pair | None:
    """The next pair for `rater`, sides shuffled; None when every pair is judged (or skipped)."""
    shots = {shot.job_id: shot for pair in matches for shot in pair}
    mine: set[frozenset[str]] = set()
    by_arms: Counter[tuple[int, int]] = Counter()
    by_setting: Counter[str] = Counter()
    for judgment in standing:
        if judgment.kind != "pair" or judgment.a not in shots or judgment.b not in shots:
            continue
        if judgment.rater == rater:
            mine.add(frozenset((judgment.a, judgment.b)))
        first, second = shots[judgment.a], shots[judgment.b]
        by_arms[_arms(first, second)] += 1
        by_setting[first.setting] += 1
    open_pairs = [pair for pair in matches if frozenset((pair[0].job_id, pair[1].job_id)) not in mine]
    candidates = [pair for pair in open_pairs if frozenset((pair[0].job_id, pair[1].job_id)) not in skipped]
    if not candidates:
        skipped.clear()  # what was skipped comes back once everything else is judged
        candidates = open_pairs
    if not candidates:
        return None
    first, second = min(candidates, key=lambda pair: (by_arms[_arms(*pair)], by_setting[pair[0].setting], rng.random()))
    return (first, second) if rng.random() < 0.5 else (second, first)


def _arms(first: Shot, second: Shot) -> tuple[int, int]:
    return (min(first.arm.index, second.arm.index), max(first.arm.index, second.arm.index))
