"""runner/stats.py against values computed another way: bisection for the Wilson bounds,
Pascal's triangle in floats for the sign test, Simpson's rule over Student's density for t,
Hunter's MM algorithm for Bradley-Terry, and published figures where there are some."""

from __future__ import annotations

import math

import pytest

from runner.stats import Z95, bradley_terry, mean_interval, sign_test, t975, votes_needed, wilson


def _wilson_by_bisection(successes: int, n: int) -> tuple[float, float]:
    """The Wilson bounds are where |p̂ − p| = z·sqrt(p(1 − p)/n): found by bisection."""
    observed = successes / n

    def outside(p: float) -> bool:
        return abs(observed - p) > Z95 * math.sqrt(p * (1 - p) / n)

    def edge(inside: float, out: float) -> float:
        for _ in range(200):
            middle = (inside + out) / 2
            inside, out = (inside, middle) if outside(middle) else (middle, out)
        return (inside + out) / 2

    low = 0.0 if successes == 0 else edge(observed, 0.0)
    high = 1.0 if successes == n else edge(observed, 1.0)
    return low, high


@pytest.mark.parametrize(("successes", "n"), [(30, 40), (1, 2), (7, 9), (12, 13), (50, 100), (3, 1000)])
def test_wilson_matches_its_definition(successes: int, n: int) -> None:
    assert wilson(successes, n) == pytest.approx(_wilson_by_bisection(successes, n), abs=1e-9)


def test_wilson_at_the_edges() -> None:
    # 0 of n and n of n: the far bound is z²/(n + z²) from the edge, the near one the edge itself.
    for n in (1, 10, 250):
        reach = Z95**2 / (n + Z95**2)
        assert wilson(0, n)[0] == 0.0 and wilson(0, n)[1] == pytest.approx(reach)
        assert wilson(n, n)[1] == 1.0 and wilson(n, n)[0] == pytest.approx(1 - reach)
    assert wilson(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)  # the textbook figure
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(30, 40) == pytest.approx((0.5980, 0.8581), abs=1e-4)  # "60-86%"


def _binomial_half(n: int) -> list[float]:
    row = [1.0]
    for _ in range(n):
        row = [(a + b) / 2 for a, b in zip([0.0, *row], [*row, 0.0], strict=True)]
    return row


@pytest.mark.parametrize(("wins", "losses"), [(30, 10), (10, 30), (0, 6), (5, 5), (9, 3), (1, 0), (60, 40), (0, 0)])
def test_sign_test_matches_pascals_triangle(wins: int, losses: int) -> None:
    n = wins + losses
    pmf = _binomial_half(n)
    tail = sum(pmf[: min(wins, losses) + 1])
    assert sign_test(wins, losses) == pytest.approx(min(1.0, 2 * tail), rel=1e-9)


def test_sign_test_published_values() -> None:
    assert sign_test(30, 10) == pytest.approx(0.002221, abs=1e-6)  # R: binom.test(30, 40)
    assert sign_test(0, 6) == 2 / 64
    assert sign_test(5, 5) == 1.0 and sign_test(0, 0) == 1.0


def test_votes_needed_gives_the_power_it_promises() -> None:
    n = votes_needed(0.10)
    assert n == 194
    # The exact power of a two-sided 5% sign test with n votes at a true win rate of 60%.
    pmf_null = _binomial_half(n)
    critical = [k for k in range(n + 1) if 2 * min(sum(pmf_null[: k + 1]), sum(pmf_null[k:])) <= 0.05]
    power = sum(math.comb(n, k) * 0.6**k * 0.4 ** (n - k) for k in critical)
    assert 0.75 < power < 0.85


def _t_cdf(x: float, df: int) -> float:
    """Student's t distribution function by Simpson's rule over its density."""
    scale = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def density(t: float) -> float:
        return scale * float((1 + t * t / df) ** (-(df + 1) / 2))

    steps = 20_000
    width = x / steps
    area = density(0) + density(x) + sum((4 if i % 2 else 2) * density(i * width) for i in range(1, steps))
    return 0.5 + area * width / 3


@pytest.mark.parametrize("df", [1, 2, 5, 12, 30, 31, 45, 120, 1000])
def test_t_quantiles(df: int) -> None:
    assert _t_cdf(t975(df), df) == pytest.approx(0.975, abs=2e-5)


def test_mean_interval() -> None:
    mean, interval = mean_interval([1, 2, 3, 4, 5])
    assert mean == 3 and interval is not None
    half = 2.7764 * math.sqrt(2.5) / math.sqrt(5)
    assert interval == pytest.approx((3 - half, 3 + half))
    assert mean_interval([4]) == (4, None)
    assert mean_interval([3, 3, 3]) == (3, (3, 3))


def _hunter_mm(k: int, wins: dict[tuple[int, int], float]) -> list[float]:
    """Bradley-Terry by Hunter's (2004) minorisation-maximisation, centred log-strengths."""
    gamma = [1.0] * k
    for _ in range(5000):
        new = []
        for i in range(k):
            won = sum(w for (a, _), w in wins.items() if a == i)
            games = sum((wins.get((i, j), 0) + wins.get((j, i), 0)) / (gamma[i] + gamma[j]) for j in range(k) if j != i)
            new.append(won / games)
        total = sum(new)
        gamma = [g * k / total for g in new]
    logs = [math.log(g) for g in gamma]
    centre = sum(logs) / k
    return [value - centre for value in logs]


def test_bradley_terry_agrees_with_hunters_algorithm() -> None:
    wins = {(0, 1): 14.5, (1, 0): 5.5, (1, 2): 11, (2, 1): 9, (0, 2): 17, (2, 0): 3, (2, 3): 8, (3, 2): 12, (0, 3): 10, (3, 0): 6}
    fitted = bradley_terry(["a", "b", "c", "d"], wins, prior=0.0)
    expected = _hunter_mm(4, wins)
    assert [s.log_strength for s in fitted] == pytest.approx(expected, abs=1e-6)
    assert [s.chance for s in fitted] == pytest.approx([1 / (1 + math.exp(-v)) for v in expected], abs=1e-6)
    for strength in fitted:
        assert strength.ci95[0] < strength.chance < strength.ci95[1]


def test_bradley_terry_of_two_arms_is_the_log_odds_with_its_textbook_interval() -> None:
    a, b = bradley_terry(["a", "b"], {(0, 1): 30, (1, 0): 10}, prior=0.0)
    assert a.log_strength - b.log_strength == pytest.approx(math.log(3))
    # θa − mean(θ) is half the log-odds; its variance is a quarter of 1/(n p (1 − p)).
    half_width = Z95 * math.sqrt(1 / (40 * 0.75 * 0.25)) / 2
    centre = math.log(3) / 2
    assert a.ci95 == pytest.approx((_sigma(centre - half_width), _sigma(centre + half_width)))


def _sigma(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_an_arm_that_never_lost_has_a_finite_strength_with_the_prior() -> None:
    strengths = bradley_terry(["a", "b", "c"], {(0, 1): 5, (0, 2): 5, (1, 2): 3, (2, 1): 2})
    assert all(math.isfinite(s.log_strength) for s in strengths)
    assert strengths[0].chance > strengths[1].chance > strengths[2].chance
    assert sum(s.log_strength for s in strengths) == pytest.approx(0, abs=1e-9)
    lonely = bradley_terry(["a", "b", "c"], {(0, 1): 2, (1, 0): 1})  # c never judged: the prior holds it at average
    assert lonely[2].chance == pytest.approx(0.5, abs=0.05) and lonely[2].ci95[1] - lonely[2].ci95[0] > 0.5
