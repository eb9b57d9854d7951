"""The statistics of a verdict, exact where they can be and written out in full.

    wilson          the Wilson score interval of a proportion (95%)
    sign_test       the exact two-sided sign test of wins against losses (ties left out)
    votes_needed    decided votes for a sign test to see a given difference, 80% of the time
    mean_interval   a mean and its Student-t 95% interval
    bradley_terry   strengths of three or more arms from pairwise votes, with 95% intervals

Why no library: scipy's binomtest and choix's Bradley-Terry would bring numpy and scipy (over
100 MB) for what is here a few exact lines: the sign test sums binomial coefficients in
integers, the Wilson interval is a closed formula, and Bradley-Terry is a Newton iteration on
a handful of arms. tests/test_stats.py checks each against values computed another way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # the 97.5% point of the standard normal
Z80 = 0.8416212335729143  # the 80% point: a power of 80%

# Student's t, 97.5% point, for 1..30 degrees of freedom; past 30 a Cornish-Fisher expansion
# around the normal is good to four decimals.
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of successes/n; (0, 1) when n is 0 (nothing is known)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / scale
    # At 0 of n and n of n the bounds are exactly 0 and 1; rounding must not move them.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def sign_test(wins: int, losses: int) -> float:
    """The exact two-sided p-value of `wins` against `losses` if either side were as likely to
    win: twice the smaller tail of Binomial(n, 1/2), at most 1. Computed in integers."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1))
    return min(1.0, 2 * tail / (1 << n))


def votes_needed(difference: float = 0.10, z_alpha: float = Z95, z_power: float = Z80) -> int:
    """Decided votes for the sign test (at 5%, two-sided) to detect a win rate of
    0.5 + `difference` 80% of the time, by the normal approximation."""
    p = 0.5 + difference
    root = (z_alpha * 0.5 + z_power * math.sqrt(p * (1 - p))) / difference
    return math.ceil(root * root)


def t975(df: int) -> float:
    """The 97.5% point of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError("a t interval needs at least two values")
    if df <= len(_T975):
        return _T975[df - 1]
    z = Z95
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def mean_interval(values: Sequence[float]) -> tuple[float, tuple[float, float] | None]:
    """The mean of `values` and its 95% t interval (None for fewer than two values)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t975(n - 1) * spread / math.sqrt(n)
    return mean, (mean - half, mean + half)


@dataclass(frozen=True)
class Strength:
    """One arm's Bradley-Terry strength, as the chance it beats an average arm (one whose
    log-strength is the mean of all), with a 95% interval."""

    arm: str
    chance: float
    ci95: tuple[float, float]
    log_strength: float  # centred: the arms' log-strengths sum to 0


def bradley_terry(arms: Sequence[str], wins: dict[tuple[int, int], float], prior: float = 0.1) -> list[Strength]:
    """Fit log-strengths θ to `wins[i, j]` (times arm i beat arm j; a tie counts half to each)
    under P(i beats j) = σ(θi − θj), with a weak normal prior (precision `prior`) so an arm
    that never lost still has a finite strength. Newton's method; the intervals come from the
    curvature at the fit (the model's own, by the Laplace approximation)."""
    k = len(arms)
    theta = [0.0] * k
    for _ in range(200):
        gradient, hessian = _derivatives(k, theta, wins, prior)
        step = _solve(_pinned(hessian), gradient)
        shift = sum(step) / k
        # Kept centred: the prior's optimum along a common shift is a mean of 0.
        theta = [t + s - shift for t, s in zip(theta, step, strict=True)]
        if max(abs(s - shift) for s in step) < 1e-12:
            break
    _, hessian = _derivatives(k, theta, wins, prior)
    covariance = _inverse(_pinned(hessian))
    centre = sum(theta) / k
    strengths = []
    for i in range(k):
        # The variance of θi − mean(θ): c·Σ·c with c = e_i − 1/k.
        c = [(1.0 if j == i else 0.0) - 1 / k for j in range(k)]
        variance = sum(c[a] * covariance[a][b] * c[b] for a in range(k) for b in range(k))
        spread = Z95 * math.sqrt(max(variance, 0.0))
        value = theta[i] - centre
        strengths.append(Strength(arms[i], _sigmoid(value), (_sigmoid(value - spread), _sigmoid(value + spread)), value))
    return strengths


def _derivatives(
    k: int, theta: list[float], wins: dict[tuple[int, int], float], prior: float
) -> tuple[list[float], list[list[float]]]:
    """The gradient of the log-posterior and its negated Hessian (positive definite)."""
    gradient = [-prior * t for t in theta]
    hessian = [[prior if i == j else 0.0 for j in range(k)] for i in range(k)]
    pairs = {(min(i, j), max(i, j)) for i, j in wins if i != j}
    for i, j in pairs:
        w_ij, w_ji = wins.get((i, j), 0.0), wins.get((j, i), 0.0)
        n = w_ij + w_ji
        if n == 0:
            continue
        p = _sigmoid(theta[i] - theta[j])
        gradient[i] += w_ij - n * p
        gradient[j] -= w_ij - n * p
        curvature = n * p * (1 - p)
        hessian[i][i] += curvature
        hessian[j][j] += curvature
        hessian[i][j] -= curvature
        hessian[j][i] -= curvature
    return gradient, hessian


def _pinned(hessian: list[list[float]]) -> list[list[float]]:
    """The Hessian plus the all-ones matrix. Votes say nothing of a shift of every θ alike,
    so the Hessian is (nearly) singular along it; adding 11ᵀ changes only that direction,
    which no answer here depends on (strengths are centred), and keeps the inverse exact."""
    return [[value + 1.0 for value in row] for row in hessian]


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    inverse = _inverse(matrix)
    return [sum(row[j] * vector[j] for j in range(len(vector))) for row in inverse]


def _inverse(matrix: list[list[float]]) -> list[list[float]]:
    """Gauss-Jordan with partial pivoting, for the small symmetric positive definite
    matrices above (one row per arm)."""
    n = len(matrix)
    work = [list(row) + [1.0 if i == j else 0.0 for j in range(n)] for i, row in enumerate(matrix)]
    for column in range(n):
        pivot = max(range(column, n), key=lambda r: abs(work[r][column]))
        work[column], work[pivot] = work[pivot], work[column]
        lead = work[column][column]
        work[column] = [value / lead for value in work[column]]
        for r in range(n):
            if r != column and work[r][column] != 0.0:
                factor = work[r][column]
                work[r] = [a - factor * b for a, b in zip(work[r], work[column], strict=True)]
    return [row[n:] for row in work]
