"""Statistics that say how far to trust an evaluation number. Pure functions of scores; no torch.

One model, one number:

- :func:`wilson_interval`, :class:`Accuracy`, :func:`accuracy`: a proportion with n and its 95%
  interval (Wilson), which stays inside [0, 1] even at 0/n and n/n.
- :func:`bootstrap_ci`: the 95% percentile interval of any mean-like statistic, by resampling items.

Two models on the *same* items (always compare paired):

- :func:`mcnemar` (right/wrong per item) and :func:`sign_test` (better/worse/tie per item): exact
  binomial tests on the items where the two differ.
- :func:`paired_difference`: the accuracy difference with an exact interval that agrees with
  McNemar's test; :func:`compare` says it in one sentence. :func:`paired_bootstrap` gives the mean
  difference of any per-item score with a bootstrap interval (unreliable when few items differ).
- :func:`win_rate`: A/B verdicts with ties, ties counted half.
- :func:`mcnemar_sample_size`: how many items a difference of a given size needs.

Two raters (or a judge and a verifier) on the same items:

- :func:`cohen_kappa`: agreement beyond chance, with a bootstrap interval.
"""
from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Hashable, Sequence

Z95 = 1.959963984540054  # two-sided 95% normal quantile


# ---------------------------------------------------------------------------------------------
def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``k / n`` (Wilson 1927).

    Unlike ``p ± 1.96·sqrt(p(1-p)/n)`` it stays inside [0, 1] and is not zero-width at 0/n or n/n.

    >>> tuple(round(x, 3) for x in wilson_interval(28, 30))
    (0.787, 0.982)
    >>> tuple(round(x, 3) for x in wilson_interval(0, 30))
    (0.0, 0.114)
    """
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # at 0/n and n/n the bound equals p exactly in theory; clamp away the float rounding
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


@dataclass(frozen=True)
class Accuracy:
    """``k`` correct of ``n``, with its 95% Wilson interval. ``str()`` gives the reader's form."""
    k: int
    n: int

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else float("nan")

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(self.k, self.n)

    def __str__(self) -> str:
        """Whole percents, with a decimal more (up to two) where the interval would print as a point:
        0/900 is "0.0% (0/900; 95% CI 0.0–0.4%)", not "0–0%".

        >>> str(Accuracy(3, 10)), str(Accuracy(0, 900))
        ('30% (3/10; 95% CI 11–60%)', '0.0% (0/900; 95% CI 0.0–0.4%)')
        """
        lo, hi = self.ci
        digits = 0
        while digits < 2 and lo != hi and round(100 * lo, digits) == round(100 * hi, digits):
            digits += 1
        return f"{100 * self.value:.{digits}f}% ({self.k}/{self.n}; 95% CI {100 * lo:.{digits}f}–{100 * hi:.{digits}f}%)"

    def as_dict(self) -> dict:
        lo, hi = self.ci
        return {"accuracy": self.value, "k": self.k, "n": self.n, "ci_low": lo, "ci_high": hi}


def accuracy_of(correct: Sequence[bool]) -> Accuracy:
    return Accuracy(sum(bool(c) for c in correct), len(correct))


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> dict:
    """Exact McNemar test of two models scored on the same items.

    Only the discordant items count: ``only_a`` (A right, B wrong) and ``only_b``. Under "no
    difference" each discordant item is a fair coin, so the two-sided p-value is a binomial tail.

    >>> mcnemar([1, 1, 1, 1, 0], [0, 0, 0, 0, 0])["p_value"]
    0.125
    """
    if len(a) != len(b):
        raise ValueError(f"mcnemar: {len(a)} vs {len(b)} items; a paired test needs the same items")
    only_a = sum(bool(x) and not bool(y) for x, y in zip(a, b))
    only_b = sum(bool(y) and not bool(x) for x, y in zip(a, b))
    return {"only_a": only_a, "only_b": only_b,
            "p_value": _binomial_two_sided(min(only_a, only_b), only_a + only_b)}


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, n_boot: int = 10_000,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``b - a`` over the same items, with a 95% percentile interval from resampling items.

    >>> paired_bootstrap([0, 0, 0, 0], [1, 1, 1, 1])
    (1.0, 1.0, 1.0)
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"paired_bootstrap: {len(a)} vs {len(b)} items; need the same, non-empty items")
    return bootstrap_ci([float(y) - float(x) for x, y in zip(a, b)], n_boot=n_boot, seed=seed)


def _binomial_tail(k: int, m: int, p: float, upper: bool) -> float:
    """P(X >= k) if ``upper`` else P(X <= k), for X ~ Binomial(m, p) (summed in logs: m may be large)."""
    if p <= 0.0:
        return float(not upper or k <= 0)
    if p >= 1.0:
        return float(upper or k >= m)
    terms = range(k, m + 1) if upper else range(0, k + 1)
    lp, lq = math.log(p), math.log1p(-p)
    return sum(math.exp(math.lgamma(m + 1) - math.lgamma(i + 1) - math.lgamma(m - i + 1) + i * lp + (m - i) * lq)
               for i in terms)


def clopper_pearson(k: int, m: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Clopper–Pearson 1934) interval of a binomial proportion ``k / m``: every p whose
    one-sided tails both stay above ``alpha / 2``. It excludes 1/2 exactly when the doubled-tail
    sign test (:func:`mcnemar`) has p < alpha.

    >>> tuple(round(x, 3) for x in clopper_pearson(4, 4))
    (0.398, 1.0)
    """
    if m <= 0:
        return 0.0, 1.0

    def solve(tail_is_small):                   # bisection on a monotone tail probability
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if tail_is_small(mid) else (lo, mid)
        return (lo + hi) / 2
    low = 0.0 if k == 0 else solve(lambda p: _binomial_tail(k, m, p, upper=True) < alpha / 2)
    high = 1.0 if k == m else solve(lambda p: _binomial_tail(k, m, p, upper=False) >= alpha / 2)
    return low, high


@dataclass(frozen=True)
class PairedDifference:
    """B's accuracy minus A's on the same n items, with an exact 95% interval that agrees with
    McNemar's test: the interval excludes 0 exactly when p < 0.05.

    Only the ``m = only_a + only_b`` discordant items carry information. Given m, ``only_b`` is
    Binomial(m, π) and the difference is (m / n)(2π − 1), so the Clopper–Pearson interval of π
    maps to an interval of the difference (conditional on m). A bootstrap interval does not have
    this property: with 4 discordant items all going one way it excludes 0 while p = 0.125.
    With no discordant item (m = 0) the map would give a zero-width interval; the difference is
    then bounded by the share of discordant items, whose Clopper–Pearson upper bound (0 of n) is used.
    """
    n: int
    only_a: int
    only_b: int
    p_value: float
    low: float
    high: float

    @property
    def value(self) -> float:
        return (self.only_b - self.only_a) / self.n


def paired_difference(a: Sequence[bool], b: Sequence[bool], alpha: float = 0.05) -> PairedDifference:
    """:class:`PairedDifference` of two models right/wrong on the same items (a 1 − ``alpha`` interval)."""
    test = mcnemar(a, b)
    n, m = len(a), test["only_a"] + test["only_b"]
    if n == 0:
        raise ValueError("paired_difference: no items")
    if m == 0:      # no discordant item: the difference is bounded by the discordance rate, itself uncertain
        bound = clopper_pearson(0, n, alpha)[1]
        return PairedDifference(n, 0, 0, test["p_value"], -bound, bound)
    lo, hi = clopper_pearson(test["only_b"], m, alpha)
    return PairedDifference(n, test["only_a"], test["only_b"], test["p_value"],
                            m / n * (2 * lo - 1), m / n * (2 * hi - 1))


def signed_percent(x: float, digits: int = 0) -> str:
    """``x`` as a signed percentage with ``digits`` decimals, and plain "0%" when it rounds to zero
    (never "-0%").

    >>> signed_percent(0.034), signed_percent(-0.002), signed_percent(-0.12), signed_percent(0.0033, 1)
    ('+3%', '0%', '-12%', '+0.3%')
    """
    value = round(100 * x, digits)
    return "0%" if value == 0 else f"{value:+.{digits}f}%"


def compare(a: Sequence[bool], b: Sequence[bool], name_a: str = "A", name_b: str = "B",
            alpha: float = 0.05) -> str:
    """One sentence comparing two models on the same items: both accuracies, the paired
    difference with its exact interval (:func:`paired_difference`), McNemar's p, and whether the
    difference is real. The interval and the verdict cannot disagree."""
    d = paired_difference(a, b, alpha)
    if d.p_value < alpha:
        verdict = f"{name_b if d.value > 0 else name_a} is better (p < {alpha:g})"
    else:
        verdict = "not distinguishable at this n"
    digits = _interval_digits(d.low, d.high)
    pct = lambda x: signed_percent(x, digits)                      # noqa: E731
    return (f"{name_a} {accuracy_of(a)} vs {name_b} {accuracy_of(b)}: difference {pct(d.value)} "
            f"(paired exact {1 - alpha:.0%} CI {pct(d.low)} to {pct(d.high)}; {name_a} alone right on "
            f"{d.only_a}, {name_b} alone on {d.only_b}; McNemar p = {d.p_value:.2g}): {verdict}")


def _interval_digits(low: float, high: float) -> int:
    """Decimals for an interval's percentages: one when the interval is small (both bounds within 5
    points), and as many (up to 2) as keep a nonzero bound from printing as "0%", so an interval
    that excludes 0 never reads as if it touched it.

    >>> _interval_digits(-0.12, 0.30), _interval_digits(-0.02, 0.01), _interval_digits(0.003, 0.08)
    (0, 1, 1)
    """
    digits = 1 if max(abs(low), abs(high)) < 0.05 else 0
    while digits < 2 and any(b != 0 and round(100 * b, digits) == 0 for b in (low, high)):
        digits += 1
    return digits


def _binomial_two_sided(low: int, m: int) -> float:
    """P(X <= low) * 2 for X ~ Binomial(m, 1/2), capped at 1 (the exact two-sided sign-test p)."""
    return min(1.0, 2 * sum(math.comb(m, i) for i in range(low + 1)) / 2 ** m) if m else 1.0


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for several tests read together (Holm 1979): a
    result is significant at level α, with the chance of any false positive among them at most α,
    when its adjusted p is below α. Sort the m p-values; the i-th smallest (from 0) is multiplied by
    m − i, and each adjusted value is at least the one before it (capped at 1). Returned in the
    input's order.

    >>> holm([0.01, 0.04, 0.03, 0.005])
    [0.03, 0.06, 0.06, 0.02]
    """
    m = len(p_values)
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: p_values[j])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def sign_test(a: Sequence[float], b: Sequence[float]) -> dict:
    """Exact sign test of two models' scores on the same items: per item B better, worse or tied.

    Ties carry no information about which is better and are left out; under "no difference"
    each remaining item is a fair coin. On 0/1 scores it is McNemar's test.

    >>> sign_test([1, 2, 3, 4, 5, 6], [2, 3, 4, 5, 6, 6])
    {'b_better': 5, 'a_better': 0, 'ties': 1, 'p_value': 0.0625}
    """
    if len(a) != len(b):
        raise ValueError(f"sign_test: {len(a)} vs {len(b)} items; a paired test needs the same items")
    b_better = sum(y > x for x, y in zip(a, b))
    a_better = sum(x > y for x, y in zip(a, b))
    return {"b_better": b_better, "a_better": a_better, "ties": len(a) - a_better - b_better,
            "p_value": _binomial_two_sided(min(a_better, b_better), a_better + b_better)}


def bootstrap_ci(values: Sequence[float], stat: Callable[[list], float] | None = None, *,
                 n_boot: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """``stat(values)`` (default: the mean) with a 95% percentile bootstrap interval: resample the
    items with replacement ``n_boot`` times and take the 2.5th and 97.5th percentiles.

    >>> bootstrap_ci([1.0, 1.0, 1.0])
    (1.0, 1.0, 1.0)
    """
    values = list(values)
    if not values:
        raise ValueError("bootstrap_ci: no values")
    stat = stat or (lambda v: sum(v) / len(v))
    rng, n = random.Random(seed), len(values)
    boots = sorted(stat([values[rng.randrange(n)] for _ in range(n)]) for _ in range(n_boot))
    return stat(values), boots[int(0.025 * n_boot)], boots[int(0.975 * n_boot) - 1]


def ratio_of_medians(a: Sequence[float], b: Sequence[float], *, n_boot: int = 4000,
                     seed: int = 0) -> tuple[float, float, float]:
    """median(a) / median(b) of two independent samples (e.g. step times of two runs), with a 95%
    percentile interval from resampling each sample on its own.

    >>> ratio_of_medians([2.0, 2.0, 2.0], [1.0, 1.0])
    (2.0, 2.0, 2.0)
    """
    a, b = list(a), list(b)
    if not a or not b:
        raise ValueError("ratio_of_medians: both samples need values")
    rng = random.Random(seed)
    boots = sorted(statistics.median(rng.choices(a, k=len(a))) / statistics.median(rng.choices(b, k=len(b)))
                   for _ in range(n_boot))
    return statistics.median(a) / statistics.median(b), boots[int(0.025 * n_boot)], boots[int(0.975 * n_boot) - 1]


@dataclass(frozen=True)
class WinRate:
    """A/B verdicts over the same prompts: B's wins, losses and ties, and B's win rate with ties
    counted as half a win, with its bootstrap interval and the sign test on the non-tied items."""
    wins: int
    losses: int
    ties: int
    rate: float
    ci: tuple[float, float]
    p_value: float

    def __str__(self) -> str:
        return (f"win rate {self.rate:.0%} (95% CI {100 * self.ci[0]:.0f}–{100 * self.ci[1]:.0f}%; {self.wins} wins, "
                f"{self.ties} ties, {self.losses} losses of {self.wins + self.ties + self.losses}; "
                f"sign test p = {self.p_value:.2g})")


def win_rate(verdicts: Sequence[str], *, seed: int = 0) -> WinRate:
    """Win rate of B over A from per-prompt verdicts ``"B"`` (B wins), ``"A"`` or ``"tie"``.

    >>> str(win_rate(["B"] * 6 + ["tie"] * 2 + ["A"] * 2))
    'win rate 70% (95% CI 45–95%; 6 wins, 2 ties, 2 losses of 10; sign test p = 0.29)'
    """
    unknown = sorted(set(verdicts) - {"A", "B", "tie"})
    if unknown:
        raise ValueError(f"win_rate: verdicts must be 'A', 'B' or 'tie', got {unknown}")
    points = [{"B": 1.0, "tie": 0.5, "A": 0.0}[v] for v in verdicts]
    rate, lo, hi = bootstrap_ci(points, seed=seed)
    c = Counter(verdicts)
    return WinRate(c["B"], c["A"], c["tie"], rate, (lo, hi),
                   _binomial_two_sided(min(c["A"], c["B"]), c["A"] + c["B"]))


def mcnemar_sample_size(difference: float, discordant: float, *, alpha: float = 0.05,
                        power: float = 0.8) -> int:
    """Items needed for McNemar's test to detect an accuracy difference ``difference`` (e.g. 0.05)
    with probability ``power`` when a fraction ``discordant`` of items (where exactly one model is
    right) differ between the models (Connor 1987's normal approximation).

    The difference is what you hope to see; the discordant fraction comes from a pilot run. Small
    differences are expensive: n grows with 1 / difference².

    >>> mcnemar_sample_size(0.10, 0.20)
    155
    """
    d, pd = abs(difference), discordant
    if not 0 < d <= pd <= 1:
        raise ValueError(f"need 0 < difference ({difference}) <= discordant fraction ({discordant}) <= 1")
    z_a, z_b = NormalDist().inv_cdf(1 - alpha / 2), NormalDist().inv_cdf(power)
    return math.ceil((z_a * math.sqrt(pd) + z_b * math.sqrt(pd - d * d)) ** 2 / (d * d))


def kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable], *, n_boot: int = 2000,
                seed: int = 0) -> tuple[float, float, float]:
    """Cohen's κ of two raters' labels on the same items, with a 95% bootstrap interval.

    κ = (observed agreement − chance agreement) / (1 − chance agreement), where chance agreement
    is what two raters with these label frequencies would reach by guessing independently.
    κ = 1: perfect; 0: no better than chance. A rater who always says "yes" agrees often with a
    mostly-"yes" reference but gets κ = 0: that is why κ, not raw agreement, is reported.

    >>> cohen_kappa(["y", "y", "n", "n"], ["y", "y", "n", "n"])[0]
    1.0
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"cohen_kappa: {len(a)} vs {len(b)} labels; need the same, non-empty items")
    pairs = list(zip(a, b))
    est, lo, hi = bootstrap_ci(pairs, lambda p: kappa([x for x, _ in p], [y for _, y in p]),
                               n_boot=n_boot, seed=seed)
    return est, lo, hi
