"""Chapter 06's exercise checkers: they accept the right answer and give a useful hint otherwise."""
import statistics

import pytest
import torch

from ftlib.data import verify
from ftlib.course.exercises import CHECKS, check
from ftlib.course.exercises.ch06_rlhf import reward_hack_sample


def gae_by_hand(rewards, values, gamma, lam, bootstrap=True, backwards=True):
    """GAE written out, with switches for two classic bugs."""
    T = rewards.shape[1]
    advantages, running = torch.zeros_like(rewards), torch.zeros_like(rewards[:, 0])
    for t in (reversed(range(T)) if backwards else range(T)):
        next_value = values[:, t + 1] if bootstrap and t + 1 < T else 0.0
        running = rewards[:, t] + gamma * next_value - values[:, t] + gamma * lam * running
        advantages[:, t] = running
    return advantages, advantages + values


def test_gae_checker(capsys):
    assert check("06.gae", gae_by_hand)
    assert not check("06.gae", lambda r, v, g, lam: gae_by_hand(r, v, g, lam, bootstrap=False))
    assert "you left out γ·V_{t+1}" in capsys.readouterr().out
    assert not check("06.gae", lambda r, v, g, lam: gae_by_hand(r, v, g, lam, backwards=False))
    assert "loop backwards" in capsys.readouterr().out
    assert not check("06.gae", lambda r, v, g, lam: gae_by_hand(r, v, g, 1.0))
    assert "you ignore λ" in capsys.readouterr().out
    assert not check("06.gae", lambda r, v, g, lam: (gae_by_hand(r, v, g, lam)[0],) * 2)
    assert "returns = advantages + values" in capsys.readouterr().out
    assert not check("06.gae", lambda r, v, g, lam: tuple(x.T for x in gae_by_hand(r, v, g, lam)))
    assert "expected (B, T) = (3, 6)" in capsys.readouterr().out
    assert not check("06.gae", lambda r, v, g, lam: gae_by_hand(r, v, g, lam)[0])
    assert "return a pair" in capsys.readouterr().out
    assert not check("06.gae", lambda r, v, g, lam: gae_by_hand(r, v, 1.0, lam))     # γ ignored: no named bug
    assert "gamma=0.9, lam=0.95: advantage [" in capsys.readouterr().out
    assert not check("06.gae", lambda r, v, g, lam: None)
    assert "returns None" in capsys.readouterr().out
    assert not check("06.gae", lambda r, v, g, lam: r[:, 99])
    assert "your function raised IndexError" in capsys.readouterr().out
    assert not check("06.gae", [1, 2, 3])
    assert "expected a function my_gae" in capsys.readouterr().out


def test_gae_checker_calls_a_stub_not_attempted(capsys):
    def stub(rewards, values, gamma, lam):
        raise NotImplementedError()
    assert not check("06.gae", stub)
    assert "not attempted yet" in capsys.readouterr().out


def k3(logprobs, ref_logprobs):
    log_r = ref_logprobs - logprobs
    return (log_r.exp() - 1) - log_r


def test_kl_k3_checker(capsys):
    assert check("06.kl_k3", k3)
    assert not check("06.kl_k3", lambda lp, ref: lp - ref)
    assert "can be negative" in capsys.readouterr().out
    assert not check("06.kl_k3", lambda lp, ref: k3(ref, lp))
    out = capsys.readouterr().out
    assert "arguments swapped" in out and "reverse direction" in out
    assert not check("06.kl_k3", lambda lp, ref: (ref - lp).exp() - (ref - lp))
    assert "forgot the -1" in capsys.readouterr().out
    assert not check("06.kl_k3", lambda lp, ref: (ref - lp).exp() - 1)
    assert "left out the log term" in capsys.readouterr().out
    assert not check("06.kl_k3", lambda lp, ref: k3(lp, ref).mean())
    assert "shape (), expected (3, 7)" in capsys.readouterr().out
    assert not check("06.kl_k3", lambda lp, ref: (ref - lp).exp() - 1 + (ref - lp))   # sign of log r: generic
    assert "k3 = (r - 1) - log r with log r = ref_logprobs - logprobs" in capsys.readouterr().out
    assert not check("06.kl_k3", lambda lp, ref: None)
    assert "returns None" in capsys.readouterr().out
    assert not check("06.kl_k3", "k3")
    assert "expected a function my_k3" in capsys.readouterr().out


def test_reward_hack_sample_is_deterministic_and_plants_hacks():
    sample = reward_hack_sample(0)
    assert sample == reward_hack_sample(0) and sample != reward_hack_sample(1)
    assert len(sample) == 40 and len({r["id"] for r in sample}) == 40
    assert {r["family"] for r in sample} == {"count_letter", "format_upper", "extract_json"}
    assert all(set(r) == {"id", "family", "prompt", "completion", "reward", "task"} for r in sample)
    assert all(isinstance(r["reward"], float) for r in sample)
    correct = [r for r in sample if verify(r["task"], r["completion"])]
    assert len(correct) >= 5 and all(r["completion"] == r["task"]["answer"] for r in correct)
    bar = statistics.median(r["reward"] for r in correct)
    hacks = [r for r in sample if r not in correct and r["reward"] > bar]
    assert len(hacks) >= 5
    honest = [r for r in sample if r not in correct and r not in hacks]
    assert honest and max(r["reward"] for r in honest) < bar < max(r["reward"] for r in correct)


@pytest.mark.parametrize("seed", range(5))
def test_every_planted_hack_fails_verify(seed):
    """The sample asserts each row's verdict as it builds it; this is that check, seen from outside."""
    sample = reward_hack_sample(seed)
    correct = [r for r in sample if r["completion"] == r["task"]["answer"]]
    bar = statistics.median(r["reward"] for r in correct)
    planted = [r for r in sample if r not in correct and r["reward"] > bar]
    assert len(planted) >= 5 and not any(verify(r["task"], r["completion"]) for r in planted)
    assert all(verify(r["task"], r["completion"]) for r in correct)


def test_reward_hack_checker(capsys):
    sample = reward_hack_sample(0)
    accepted = {r["id"] for r in sample if verify(r["task"], r["completion"])}
    bar = statistics.median(r["reward"] for r in sample if r["id"] in accepted)
    high = {r["id"] for r in sample if r["reward"] > bar}
    right = high - accepted
    assert check("06.reward_hack", right, sample=sample)
    assert check("06.reward_hack", sorted(right), sample=sample)               # a list of ids is fine too
    ok, hint = CHECKS["06.reward_hack"](high, sample=sample)
    assert not ok and "used the reward alone" in hint
    ok, hint = CHECKS["06.reward_hack"](right | {sorted(accepted)[0]}, sample=sample)
    assert not ok and "the verifier accepts 1 of your rows" in hint and "not a hack" in hint
    rejected = {r["id"] for r in sample} - accepted
    ok, hint = CHECKS["06.reward_hack"](rejected, sample=sample)
    assert not ok and "honest mistake" in hint
    ok, hint = CHECKS["06.reward_hack"](set(sorted(right)[:3]), sample=sample)
    assert not ok and f"3 of the {len(right)} hacks" in hint and not any(i in hint for i in right)
    assert not check("06.reward_hack", [r for r in sample if r["id"] in right], sample=sample)
    assert "ids, not the rows" in capsys.readouterr().out
    assert not check("06.reward_hack", len(right), sample=sample)
    assert "set of row ids" in capsys.readouterr().out
    assert not check("06.reward_hack", {"hack-1"}, sample=sample)
    assert "not the id of a row" in capsys.readouterr().out
    assert not check("06.reward_hack", None, sample=sample)
    assert "not attempted yet" in capsys.readouterr().out


def test_reward_hack_checker_trusts_verify_not_the_sample():
    """Rewards moved so that nothing is a hack: the old answer must now fail."""
    sample = reward_hack_sample(0)
    accepted = [r for r in sample if verify(r["task"], r["completion"])]
    bar = statistics.median(r["reward"] for r in accepted)
    right = {r["id"] for r in sample if r not in accepted and r["reward"] > bar}
    flattened = [dict(r, reward=-5.0) if r["id"] in right else r for r in sample]
    assert not CHECKS["06.reward_hack"](right, sample=flattened)[0]
    assert CHECKS["06.reward_hack"](set(), sample=flattened)[0]
