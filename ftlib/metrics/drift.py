"""Drift between a reference window of requests and a live one: KS and chi-square tests, and PSI.

A deployed model sees requests that can drift away from what it was trained and tested on (longer
prompts, another language, another task). Each logged request gives a few features (prompt length,
answer length, latency, family or language); :func:`compare_windows` compares each feature's
distribution in a reference window with a live window:

- numbers: the two-sample Kolmogorov-Smirnov statistic (the largest gap between the two empirical
  CDFs; :func:`ks_statistic` from scratch, the p-value from ``scipy.stats.ks_2samp``);
- categories: a chi-square test of the 2 x k table of counts (``scipy.stats.chi2_contingency``);
- both: the population stability index, PSI = Σ (live% - ref%) · ln(live% / ref%) over bins (deciles
  of the reference for numbers), an effect size with the usual reading: < 0.1 stable, 0.1-0.25 a
  moderate shift, > 0.25 a large one. Empty bins are smoothed (half a count added to every bin);
  with small windows PSI is biased upwards, so read it with the window size in mind.

A feature is flagged when its p-value, Holm-adjusted over the features compared, is below ``alpha``
and its PSI reaches ``min_psi``: a test alone flags tiny shifts in big windows, a PSI alone has no
error rate. :func:`false_alarm_rate` measures how often unshifted windows get flagged.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

from ftlib.cores.stats import holm


def ks_statistic(a: Sequence[float], b: Sequence[float]) -> float:
    """The largest gap between the empirical CDFs of ``a`` and ``b`` (from scratch)."""
    a, b = sorted(a), sorted(b)
    i = j = 0
    gap = 0.0
    while i < len(a) and j < len(b):
        x = min(a[i], b[j])
        while i < len(a) and a[i] == x:
            i += 1
        while j < len(b) and b[j] == x:
            j += 1
        gap = max(gap, abs(i / len(a) - j / len(b)))
    return gap


def _quantile_edges(values: Sequence[float], bins: int) -> list[float]:
    s = sorted(values)
    edges = sorted({s[min(len(s) - 1, int(len(s) * k / bins))] for k in range(1, bins)})
    return edges


def _counts(values: Sequence, keys: list) -> list[float]:
    counts = {k: 0 for k in keys}
    for v in values:
        counts[v] += 1
    return [float(counts[k]) for k in keys]


def psi_from_counts(ref: list[float], cur: list[float]) -> float:
    """PSI of two count vectors over the same bins. An empty bin would make a log ratio infinite, so
    when any bin is empty in either window every count gets half a count added (additive smoothing)."""
    if min(ref + cur) == 0:
        ref, cur = [c + 0.5 for c in ref], [c + 0.5 for c in cur]
    r_total, c_total = sum(ref), sum(cur)
    return sum((c / c_total - r / r_total) * math.log((c / c_total) / (r / r_total)) for r, c in zip(ref, cur))


def psi(reference: Sequence, live: Sequence, bins: int = 10, categorical: bool = False) -> float:
    """Population stability index of ``live`` against ``reference`` (deciles of the reference for numbers)."""
    if categorical:
        keys = sorted(set(reference) | set(live), key=str)
        return psi_from_counts(_counts(reference, keys), _counts(live, keys))
    import bisect
    edges = _quantile_edges(reference, bins)
    keys = list(range(len(edges) + 1))
    return psi_from_counts(_counts([bisect.bisect_right(edges, x) for x in reference], keys),
                            _counts([bisect.bisect_right(edges, x) for x in live], keys))


@dataclass
class FeatureDrift:
    feature: str
    test: str               # "KS" or "chi-square"
    statistic: float
    p_value: float
    psi: float
    p_holm: float = float("nan")
    flagged: bool = False


def compare_feature(name: str, reference: Sequence, live: Sequence, categorical: bool) -> FeatureDrift:
    """One feature's test and PSI (p-values not yet adjusted)."""
    from scipy import stats
    if categorical:
        keys = sorted(set(reference) | set(live), key=str)
        table = [[sum(v == k for v in reference) for k in keys], [sum(v == k for v in live) for k in keys]]
        keep = [i for i in range(len(keys)) if table[0][i] + table[1][i] > 0]
        table = [[row[i] for i in keep] for row in table]
        if len(keep) < 2:
            return FeatureDrift(name, "chi-square", 0.0, 1.0, 0.0)
        chi2, p, _, _ = stats.chi2_contingency(table)
        return FeatureDrift(name, "chi-square", float(chi2), float(p), psi(reference, live, categorical=True))
    result = stats.ks_2samp(reference, live)
    return FeatureDrift(name, "KS", ks_statistic(reference, live), float(result.pvalue), psi(reference, live))


def compare_windows(reference: list[dict], live: list[dict], features: dict[str, bool], *,
                    alpha: float = 0.01, min_psi: float = 0.1) -> list[FeatureDrift]:
    """Compare each feature (``{name: categorical?}``) of two windows of logged requests."""
    rows = [compare_feature(f, [r[f] for r in reference], [r[f] for r in live], cat) for f, cat in features.items()]
    for row, p in zip(rows, holm([r.p_value for r in rows])):
        row.p_holm = p
        row.flagged = p < alpha and row.psi >= min_psi
    return rows


def false_alarm_rate(pool: list[dict], features: dict[str, bool], window: int, trials: int, *, seed: int = 0,
                     alpha: float = 0.01, min_psi: float = 0.1) -> tuple[int, int]:
    """``(flagged, trials)``: how often two disjoint windows of ``window`` requests, drawn from the
    same ``pool``, got any feature flagged (no drift there, so every flag is a false alarm). The
    trials re-use one pool, so read the rate as this pool's, not as independent traffic's."""
    if 2 * window > len(pool):
        raise ValueError(f"two disjoint windows of {window} need at least {2 * window} requests; the pool has {len(pool)}")
    rng = random.Random(seed)
    flagged = 0
    for _ in range(trials):
        drawn = rng.sample(pool, 2 * window)
        ref, live = drawn[:window], drawn[window:]
        flagged += any(r.flagged for r in compare_windows(ref, live, features, alpha=alpha, min_psi=min_psi))
    return flagged, trials
