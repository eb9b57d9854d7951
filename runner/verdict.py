"""Is B really better than A? The standing judgments of a set of run dirs, tallied.

    pairs    for each two arms with votes: wins, losses and ties from the first arm's side,
             the win rate of decided votes, its Wilson 95% interval, the exact sign test
    ranking  with three or more arms: Bradley-Terry strengths with 95% intervals
    axes     for each swept field: the mean score of each value, its 95% interval and n
    raters   with several raters: how often each two agree, on pairs and on scores

and the same in plain words, saying when there are too few votes to tell.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from runner.arms import RunSet
from runner.ratings import Judgment
from runner.stats import Strength, bradley_terry, mean_interval, sign_test, votes_needed, wilson
from runner.template import render
from runner.words import plural

SIGNIFICANT = 0.05
DIFFERENCE = 0.10  # the difference "too few votes" speaks of: 60% against 50%


@dataclass(frozen=True)
class PairTally:
    a: str
    b: str
    wins: int  # a's
    losses: int
    ties: int

    @property
    def decided(self) -> int:
        return self.wins + self.losses

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.decided if self.decided else None

    def as_json(self) -> dict[str, Any]:
        low, high = wilson(self.wins, self.decided)
        return {
            "a": self.a, "b": self.b, "wins": self.wins, "losses": self.losses, "ties": self.ties,
            "win_rate": _round(self.win_rate), "ci95": [round(low, 4), round(high, 4)],
            "p_value": round(sign_test(self.wins, self.losses), 6),
        }  # fmt: skip

    def words(self) -> str:
        if not self.decided:
            ties = f" ({plural(self.ties, 'tie')})" if self.ties else ""
            return f"{self.a} vs {self.b}: no decided votes yet{ties}"
        p = sign_test(self.wins, self.losses)
        leader, won, other = (self.a, self.wins, self.b) if self.wins >= self.losses else (self.b, self.losses, self.a)
        low, high = wilson(won, self.decided)
        figures = f"({won / self.decided:.0%}, 95% CI {low * 100:.0f}-{high:.0%}, p = {_p(p)})"
        ties = f", {plural(self.ties, 'tie')}" if self.ties else ""
        if p < SIGNIFICANT:
            return f"{leader} wins {won} of {self.decided} decided votes against {other} {figures}{ties}"
        more = max(1, votes_needed(DIFFERENCE) - self.decided)
        return (
            f"{self.a} vs {self.b}: too few votes to tell: {leader} wins {won} of {self.decided} decided votes "
            f"{figures}{ties}; need about {more} more for a {DIFFERENCE * 100:.0f}-point difference"
        )


@dataclass(frozen=True)
class Mean:
    value: Any  # the axis value, or the arm
    n: int
    mean: float
    ci95: tuple[float, float] | None

    def as_json(self, key: str = "value") -> dict[str, Any]:
        interval = [round(self.ci95[0], 4), round(self.ci95[1], 4)] if self.ci95 else None
        return {key: self.value, "n": self.n, "mean": round(self.mean, 4), "ci95": interval}

    def words(self) -> str:
        interval = f", 95% CI {self.ci95[0]:.1f}-{self.ci95[1]:.1f}" if self.ci95 else ""
        return f"{render(self.value)} → {self.mean:.2f} (n {self.n}{interval})"


@dataclass(frozen=True)
class Verdict:
    arms: list[str]
    judgments: int
    raters: list[str]
    pairs: list[PairTally]
    ranking: list[Strength]
    axes: dict[str, list[Mean]]
    arm_scores: list[Mean]
    agreement: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "arms": self.arms,
            "judgments": self.judgments,
            "raters": self.raters,
            "pairs": [pair.as_json() for pair in self.pairs],
            "ranking": [
                {"arm": s.arm, "strength": round(s.chance, 4), "ci95": [round(s.ci95[0], 4), round(s.ci95[1], 4)]}
                for s in self.ranking
            ],
            "axes": {name: [mean.as_json() for mean in means] for name, means in self.axes.items()},
            "arm_scores": [mean.as_json("arm") for mean in self.arm_scores],
            "agreement": self.agreement,
        }

    def words(self) -> list[str]:
        if not self.judgments:
            return ["no judgments yet: `flux-batch review RUN_DIR` opens a page to make them"]
        lines = [f"{plural(self.judgments, 'judgment')} by {', '.join(self.raters)}"]
        lines += [pair.words() for pair in self.pairs]
        if self.ranking:
            lines.append("ranking (the chance to beat an average arm, 95% CI):")
            lines += [f"  {n}. {s.arm} {s.chance:.2f} ({s.ci95[0]:.2f}-{s.ci95[1]:.2f})" for n, s in enumerate(self.ranking, 1)]
        if self.arm_scores and len(self.arms) > 1:
            lines.append("mean score by arm: " + "; ".join(mean.words() for mean in self.arm_scores))
        for name, means in self.axes.items():
            lines.append(f"mean score by {name}: " + "; ".join(mean.words() for mean in means))
        for row in self.agreement:
            lines.append(_agreement_words(row))
        return lines


def verdict(runs: RunSet, standing: list[Judgment], by_rater: bool = False) -> Verdict:
    """Tally `standing` (each rater's latest judgments) over the arms and axes of `runs`."""
    arm_of = {job_id: shot.arm for job_id, shot in runs.shots.items()}
    labels = [arm.label for arm in runs.arms]
    tallies: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])  # wins, losses, ties of the first
    bt_wins: dict[tuple[int, int], float] = defaultdict(float)
    scores: dict[str, list[int]] = defaultdict(list)
    for judgment in standing:
        if judgment.kind == "pair" and judgment.a in arm_of and judgment.b in arm_of:
            first, second = arm_of[judgment.a].index, arm_of[judgment.b].index
            if first == second:
                continue
            winner = {"a": first, "b": second}.get(judgment.winner)
            low, high = min(first, second), max(first, second)
            tally = tallies[low, high]
            if winner is None:
                tally[2] += 1
                bt_wins[low, high] += 0.5
                bt_wins[high, low] += 0.5
            else:
                tally[0 if winner == low else 1] += 1
                bt_wins[winner, high if winner == low else low] += 1
        elif judgment.kind == "score" and judgment.score is not None:
            scores[judgment.job_id].append(judgment.score)
    pairs = [PairTally(labels[i], labels[j], *counts) for (i, j), counts in sorted(tallies.items())]
    voted = sorted({i for pair in tallies for i in pair})
    ranking: list[Strength] = []
    if len(voted) >= 3:
        place = {arm: n for n, arm in enumerate(voted)}
        wins = {(place[i], place[j]): w for (i, j), w in bt_wins.items()}
        ranking = sorted(bradley_terry([labels[i] for i in voted], wins), key=lambda s: -s.chance)
    return Verdict(
        arms=labels,
        judgments=len(standing),
        raters=sorted({judgment.rater for judgment in standing}),
        pairs=pairs,
        ranking=ranking,
        axes=_axis_means(runs, scores),
        arm_scores=_arm_means(runs, scores),
        agreement=_agreement(standing) if by_rater else [],
    )


def _axis_means(runs: RunSet, scores: dict[str, list[int]]) -> dict[str, list[Mean]]:
    axes: dict[str, list[Mean]] = {}
    for name in runs.swept:
        by_value: dict[str, tuple[Any, list[int]]] = {}
        for job_id, given in scores.items():
            shot = runs.shots.get(job_id)
            if shot is not None and name in shot.axes:
                value = shot.axes[name]
                by_value.setdefault(repr(value), (value, []))[1].extend(given)
        if by_value:
            ordered = sorted(by_value.values(), key=lambda item: _order(item[0]))
            axes[name] = [_mean(value, given) for value, given in ordered]
    return axes


def _arm_means(runs: RunSet, scores: dict[str, list[int]]) -> list[Mean]:
    by_arm: dict[int, list[int]] = defaultdict(list)
    for job_id, given in scores.items():
        if job_id in runs.shots:
            by_arm[runs.shots[job_id].arm.index].extend(given)
    return [_mean(runs.arms[index].label, given) for index, given in sorted(by_arm.items())]


def _mean(value: Any, given: list[int]) -> Mean:
    mean, interval = mean_interval(given)
    if interval is not None:  # scores are 1 to 5: so is any mean they could have
        interval = (max(1.0, interval[0]), min(5.0, interval[1]))
    return Mean(value, len(given), mean, interval)


def _order(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) and not isinstance(value, bool) else (1, str(value))


def _agreement(standing: list[Judgment]) -> list[dict[str, Any]]:
    """For each two raters: the pairs both judged, how often alike, Cohen's kappa; the images
    both scored, and the mean difference of their scores."""
    votes: dict[str, dict[tuple[str, ...], str]] = defaultdict(dict)
    scored: dict[str, dict[str, int]] = defaultdict(dict)
    for judgment in standing:
        if judgment.kind == "pair":
            first, second = sorted((judgment.a, judgment.b))
            chosen = {"a": judgment.a, "b": judgment.b}.get(judgment.winner, "tie")
            votes[judgment.rater][first, second] = "first" if chosen == first else "second" if chosen == second else "tie"
        elif judgment.kind == "score" and judgment.score is not None:
            scored[judgment.rater][judgment.job_id] = judgment.score
    rows = []
    for one, other in combinations(sorted({*votes, *scored}), 2):
        common = sorted(set(votes[one]) & set(votes[other]))
        alike = sum(votes[one][item] == votes[other][item] for item in common)
        both = sorted(set(scored[one]) & set(scored[other]))
        differences = [abs(scored[one][job] - scored[other][job]) for job in both]
        rows.append({
            "raters": [one, other],
            "pairs": len(common),
            "agree": alike,
            "agreement": round(alike / len(common), 4) if common else None,
            "kappa": _kappa([votes[one][i] for i in common], [votes[other][i] for i in common]),
            "scores": len(both),
            "mean_score_difference": round(sum(differences) / len(differences), 4) if differences else None,
        })  # fmt: skip
    return rows


def _kappa(first: list[str], second: list[str]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items; None when chance explains all."""
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    expected = sum((first.count(label) / n) * (second.count(label) / n) for label in {*first, *second})
    return None if expected >= 1 else round((observed - expected) / (1 - expected), 4)


def _agreement_words(row: dict[str, Any]) -> str:
    one, other = row["raters"]
    parts = []
    if row["pairs"]:
        kappa = f", Cohen's kappa {row['kappa']:.2f}" if row["kappa"] is not None else ""
        parts.append(f"agree on {row['agree']} of {row['pairs']} pairs both judged ({row['agreement']:.0%}{kappa})")
    if row["scores"]:
        parts.append(f"differ by {row['mean_score_difference']:.2f} on average over {row['scores']} images both scored")
    return f"{one} and {other}: " + ("; ".join(parts) if parts else "judged nothing in common")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _p(value: float) -> str:
    return f"{value:.3f}" if value >= 0.001 else "< 0.001"
