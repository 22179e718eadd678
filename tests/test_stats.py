import doctest
import random

import pytest
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from ftlib.cores import stats
from ftlib.cores.stats import (Accuracy, bootstrap_ci, clopper_pearson, cohen_kappa, compare, mcnemar, mcnemar_sample_size,
                              paired_bootstrap, paired_difference, sign_test, signed_percent, win_rate)


def test_doctests():
    assert doctest.testmod(stats).failed == 0


@pytest.mark.parametrize("better, worse, ties", [(5, 0, 1), (12, 7, 30), (0, 0, 4), (40, 55, 3)])
def test_sign_test_is_scipys_exact_binomial_test_without_the_ties(better, worse, ties):
    a = [0] * better + [1] * worse + [0.5] * ties
    b = [1] * better + [0] * worse + [0.5] * ties
    result = sign_test(a, b)
    assert (result["b_better"], result["a_better"], result["ties"]) == (better, worse, ties)
    expected = binomtest(better, better + worse).pvalue if better + worse else 1.0
    assert result["p_value"] == pytest.approx(expected, rel=1e-9)


def test_sign_test_on_right_wrong_is_mcnemar():
    rng = random.Random(3)
    a = [rng.random() < 0.6 for _ in range(80)]
    b = [rng.random() < 0.7 for _ in range(80)]
    assert sign_test(a, b)["p_value"] == pytest.approx(mcnemar(a, b)["p_value"])
    with pytest.raises(ValueError, match="same items"):
        sign_test([1, 2], [1])


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time_and_shrinks():
    rng = random.Random(0)
    hits = 0
    for trial in range(200):
        values = [float(rng.random() < 0.3) for _ in range(60)]
        _, lo, hi = bootstrap_ci(values, n_boot=1000, seed=trial)
        hits += lo <= 0.3 <= hi
    assert 0.88 <= hits / 200 <= 0.99
    small = bootstrap_ci([float(i % 3 == 0) for i in range(30)])
    large = bootstrap_ci([float(i % 3 == 0) for i in range(3000)], n_boot=2000)
    assert large[2] - large[1] < (small[2] - small[1]) / 5
    assert bootstrap_ci([1.0, 2.0, 9.0], max)[0] == 9.0      # any statistic, not only the mean
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_win_rate_counts_ties_as_half_and_refuses_unknown_verdicts():
    result = win_rate(["B", "tie", "A", "tie"])
    assert (result.wins, result.losses, result.ties, result.rate) == (1, 1, 2, 0.5)
    assert result.p_value == 1.0
    strong = win_rate(["B"] * 30 + ["A"] * 5)
    assert strong.p_value < 0.001 and strong.ci[0] > 0.5
    with pytest.raises(ValueError, match="'A', 'B' or 'tie'"):
        win_rate(["B", "b"])


def test_mcnemar_sample_size_gives_about_the_promised_power():
    # p(A right only) = 0.05, p(B right only) = 0.15: difference 0.10, discordant 0.20
    n = mcnemar_sample_size(0.10, 0.20)
    rng = random.Random(1)
    rejected = 0
    for _ in range(300):
        a, b = [], []
        for _ in range(n):
            u = rng.random()
            a.append(u < 0.05 or u >= 0.20)     # both right 80%, A alone 5%, B alone 15%
            b.append(u >= 0.05)
        rejected += mcnemar(a, b)["p_value"] < 0.05
    assert 0.70 <= rejected / 300 <= 0.90
    assert mcnemar_sample_size(0.05, 0.20) > 3.5 * n           # half the difference: ~4x the items
    with pytest.raises(ValueError):
        mcnemar_sample_size(0.3, 0.2)


def test_cohen_kappa_equals_sklearn_and_is_zero_for_a_rater_who_always_says_yes():
    rng = random.Random(2)
    a = [rng.choice("yyn") for _ in range(200)]
    b = [x if rng.random() < 0.7 else rng.choice("yn") for x in a]
    kappa, lo, hi = cohen_kappa(a, b)
    assert kappa == pytest.approx(cohen_kappa_score(a, b))
    assert lo < kappa < hi
    always_yes = ["y"] * 200
    assert cohen_kappa(a, always_yes)[0] == pytest.approx(0.0)
    labels = [1, 2, 3, 1, 2, 3, 3, 3]
    assert cohen_kappa(labels, [1, 2, 3, 1, 2, 3, 2, 1])[0] == pytest.approx(cohen_kappa_score(labels, [1, 2, 3, 1, 2, 3, 2, 1]))
    with pytest.raises(ValueError, match="same"):
        cohen_kappa(["y"], ["y", "n"])


def test_paired_interval_agrees_with_mcnemar_where_a_bootstrap_does_not():
    # 4 items only B gets right, none only A gets right, of 30: McNemar p = 0.125
    a = [False] * 4 + [True] * 10 + [False] * 16
    b = [True] * 4 + [True] * 10 + [False] * 16
    d = paired_difference(a, b)
    assert (d.only_a, d.only_b, d.p_value) == (0, 4, 0.125)
    assert d.low < 0 < d.high and d.value == pytest.approx(4 / 30)
    assert paired_bootstrap(a, b)[1] > 0                  # the bootstrap interval excludes 0: it disagrees
    sentence = compare(a, b, "base", "tuned")
    assert "not distinguishable at this n" in sentence and "CI -3% to +13%" in sentence


def test_paired_interval_excludes_zero_exactly_when_p_is_below_005():
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(5, 80)
        a = [rng.random() < 0.5 for _ in range(n)]
        b = [x if rng.random() < 0.6 else rng.random() < rng.random() for x in a]
        d = paired_difference(a, b)
        assert (d.low > 0 or d.high < 0) == (d.p_value < 0.05), (d, n)
        assert d.low <= d.value <= d.high


def test_clopper_pearson_matches_the_beta_quantiles():
    from scipy.stats import beta
    for k, m in [(0, 10), (3, 10), (10, 10), (17, 40), (1, 1)]:
        lo, hi = clopper_pearson(k, m)
        want_lo = beta.ppf(0.025, k, m - k + 1) if k else 0.0
        want_hi = beta.ppf(0.975, k + 1, m - k) if k < m else 1.0
        assert (lo, hi) == (pytest.approx(want_lo, abs=1e-9), pytest.approx(want_hi, abs=1e-9))


def test_a_difference_that_rounds_to_zero_is_never_printed_negative():
    a = [True] * 150 + [False] * 850 + [True]
    b = [True] * 150 + [False] * 850 + [False]            # -0.1%: rounds to zero
    sentence = compare(a, b)
    assert "-0%" not in sentence and "-0.0%" not in sentence and "difference -0.1%" in sentence
    assert signed_percent(-0.004) == "0%" and signed_percent(-0.006) == "-1%" and signed_percent(-0.0004, 1) == "0%"
    tiny = compare([True] * 4 + [False] * 1196, [False] * 1200)       # 4 vs 0 of 1,200: a tenth of a point
    assert "difference -0.3% (paired exact 95% CI -0.3% to +0.1%" in tiny


def test_an_interval_that_excludes_zero_never_prints_a_bound_of_zero():
    # 6 vs 0 discordant of 100: p = 0.031, the exact interval starts at +0.49 points; at whole
    # percents it would read "0% to +6%" beside "better (p < 0.05)"
    a, b = [False] * 100, [True] * 6 + [False] * 94
    sentence = compare(a, b)
    assert "CI +0.5% to +6.0%" in sentence and "B is better" in sentence
    big = compare([False] * 100, [True] * 30 + [False] * 70)          # far from zero: whole percents
    assert "CI +23% to +30%" in big


def test_an_accuracy_interval_never_prints_as_a_single_point():
    assert str(Accuracy(0, 900)) == "0.0% (0/900; 95% CI 0.0–0.4%)"          # not "0% (...; 95% CI 0–0%)"
    assert str(Accuracy(1, 1200)) == "0.1% (1/1200; 95% CI 0.0–0.5%)"
    assert str(Accuracy(45, 100)) == "45% (45/100; 95% CI 36–55%)"            # whole percents where they suffice


def test_no_discordant_item_still_gives_an_interval_of_some_width():
    d = paired_difference([True] * 10 + [False] * 290, [True] * 10 + [False] * 290)
    assert (d.only_a, d.only_b, d.p_value, d.value) == (0, 0, 1.0, 0.0)
    assert d.low == -d.high and d.high == pytest.approx(clopper_pearson(0, 300)[1]) and 0.01 < d.high < 0.013


def test_holm_steps_down_keeps_order_and_lies_between_raw_and_bonferroni():
    raw = [0.01, 0.04, 0.03, 0.005]
    adjusted = stats.holm(raw)
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])     # 3·0.01, max(2·0.03, 0.04·1), 2·0.03, 4·0.005
    assert all(p <= a <= min(1.0, len(raw) * p) for p, a in zip(raw, adjusted))
    order = sorted(range(4), key=raw.__getitem__)
    assert [adjusted[i] for i in order] == sorted(adjusted)           # the order of the p-values is kept
    assert stats.holm([0.5, 0.9]) == [1.0, 1.0] and stats.holm([]) == []
