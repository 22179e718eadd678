"""ftlib.metrics.policy: one measurement for every trained policy, per item, and back from JSON."""
import copy

import pytest

from ftlib.data import first_per_family, load_preferences
from ftlib.engine.rl_runs import rl_rows
from ftlib.metrics.exact_match import exact_match
from ftlib.metrics.policy import PolicyScores, score_policy


def test_a_policy_scored_against_itself_has_zero_kl_and_no_preference(tok, tiny_chat_lm):
    model, rows, pairs = tiny_chat_lm(), rl_rows("val", per_family=2), load_preferences("test")[:4]
    scores = score_policy(model, copy.deepcopy(model), tok, rows, pairs=pairs, max_new_tokens=6)
    assert len(scores.greedy) == len(scores.sampled) == len(scores.kl) == len(rows) and len(scores.preference) == 4
    assert scores.greedy == exact_match(model, tok, rows).correct        # the same greedy answers as the board's
    assert max(abs(k) for k in scores.kl + scores.kl_k3) < 1e-4           # a model is at KL 0 from itself
    assert not any(scores.preference)                                     # implicit rewards all 0: no pair ranked
    assert PolicyScores.from_json(scores.to_json()) == scores


def test_another_policy_moved_and_the_same_seed_samples_alike(tok, tiny_chat_lm):
    model, other, rows = tiny_chat_lm(), tiny_chat_lm(seed=1), first_per_family("val", 2, ["arithmetic", "sort_words"])
    a = score_policy(model, other, tok, rows, max_new_tokens=6, seed=3)
    b = score_policy(model, other, tok, rows, max_new_tokens=6, seed=3)
    assert a.mean_kl == pytest.approx(b.mean_kl) and sum(a.kl_k3) > 0.01 and a.sampled == b.sampled
    assert a.preference is None and a.chosen_logp is None
