"""Drift detection: KS from scratch equals scipy's, PSI behaves as its definition says, a planted shift
is flagged and same-distribution windows rarely are."""
import math
import random

import pytest
from scipy import stats

from ftlib.metrics.drift import compare_windows, false_alarm_rate, ks_statistic, psi

FEATURES = {"prompt_chars": False, "language": True}


def _requests(n, seed, long=1.0, zh=0.1):
    rng = random.Random(seed)
    return [{"prompt_chars": int(rng.lognormvariate(4, 0.5) * long), "language": "zh" if rng.random() < zh else "en"}
            for _ in range(n)]


@pytest.mark.parametrize("seed", range(5))
def test_ks_statistic_from_scratch_equals_scipy(seed):
    rng = random.Random(seed)
    a = [rng.randint(0, 20) for _ in range(50)]               # ties on purpose
    b = [rng.gauss(10, 4) for _ in range(37)]
    assert ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)


def test_psi_is_zero_for_the_same_shares_and_matches_the_formula():
    assert psi(["en"] * 8 + ["zh"] * 2, ["en"] * 4 + ["zh"] * 1, categorical=True) == pytest.approx(0.0)
    by_hand = (0.5 - 0.8) * math.log(0.5 / 0.8) + (0.5 - 0.2) * math.log(0.5 / 0.2)
    assert psi(["en"] * 8 + ["zh"] * 2, ["en"] * 5 + ["zh"] * 5, categorical=True) == pytest.approx(by_hand)
    assert psi(list(range(100)), list(range(100))) == pytest.approx(0.0)


def test_a_planted_shift_is_flagged_and_only_where_it_is():
    ref = _requests(400, 0)
    longer = compare_windows(ref, _requests(400, 1, long=1.6), FEATURES)
    assert [r.flagged for r in longer] == [True, False]
    chinese = compare_windows(ref, _requests(400, 2, zh=0.4), FEATURES)
    assert [r.flagged for r in chinese] == [False, True]
    assert all(r.p_holm >= r.p_value for r in chinese)


def test_same_distribution_windows_are_rarely_flagged():
    flagged, trials = false_alarm_rate(_requests(4000, 3), FEATURES, window=200, trials=40)
    assert flagged <= 4                                     # alpha 0.01 over two features, and a PSI floor


def test_an_empty_bin_is_smoothed_with_half_counts_not_infinite():
    r, live = [10.5 / 11, 0.5 / 11], [5.5 / 11, 5.5 / 11]            # counts + 0.5: (10, 0) and (5, 5)
    expected = sum((b - a) * math.log(b / a) for a, b in zip(r, live))
    assert psi(["en"] * 10, ["en"] * 5 + ["zh"] * 5, categorical=True) == pytest.approx(expected)
