"""Checkers for chapter 06's exercises (RLHF), registered into :data:`ftlib.course.exercises.CHECKS`.

Like every checker they return ``(ok, hint)``; :func:`ftlib.course.exercises.check` prints the verdict.
"""
from __future__ import annotations

from typing import Callable

from ftlib.course.exercises.core import call_answer, id_set_problem, off


def _gae_cases():
    """(rewards, values, gamma, lam) cases, (B, T) = (3, 6); λ = 0.95 first: every mistake shows there."""
    import torch
    g = torch.Generator().manual_seed(0)
    for gamma, lam in [(0.9, 0.95), (0.99, 0.0), (0.95, 1.0)]:
        yield torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g), gamma, lam


_GAE_HINTS = {
    "no_bootstrap": "δ_t = r_t + γ·V_{t+1} - V_t (V = 0 after the last token); you left out γ·V_{t+1}",
    "forwards": "A_t depends on A_{t+1}, which you have not computed yet: loop backwards, reversed(range(T))",
    "no_lambda": "you ignore λ (your advantages are those of λ = 1): A_t = δ_t + γ·λ·A_{t+1}",
}


def _gae_mistakes(rewards, values, gamma, lam) -> dict:
    """The advantages each mistake of :data:`_GAE_HINTS` gives, built from the right gae on altered inputs."""
    from ftlib.cores.losses import gae
    zero = values * 0
    deltas = gae(rewards, values, gamma, 0.0)[0]                             # with λ = 0, A_t is just δ_t
    return {"no_bootstrap": gae(rewards - values, zero, gamma, lam)[0],     # δ_t = r_t - V_t
            "forwards": gae(deltas.flip(1), zero, gamma, lam)[0].flip(1),  # A_t = δ_t + γλ·A_{t-1}
            "no_lambda": gae(rewards, values, gamma, 1.0)[0]}


def _gae(answer, **context) -> tuple[bool, str]:
    """06.gae: ``answer(rewards, values, gamma, lam)`` -> ``(advantages, returns)``, as :func:`ftlib.cores.losses.gae`."""
    import torch
    from ftlib.cores.losses import gae
    for rewards, values, gamma, lam in _gae_cases():
        got, hint = call_answer(answer, "my_gae(rewards, values, gamma, lam)", rewards.clone(), values.clone(), gamma, lam)
        if hint:
            return False, hint
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return False, "return a pair: advantages, returns = my_gae(...)"
        adv, ret = (torch.as_tensor(x).float() for x in got)
        want_adv, want_ret = gae(rewards, values, gamma, lam)
        if adv.shape != want_adv.shape or ret.shape != want_ret.shape:
            return False, (f"shapes {tuple(adv.shape)} and {tuple(ret.shape)}, expected (B, T) = "
                           f"{tuple(want_adv.shape)} for both: one advantage and one return per token")
        close = lambda a, b: torch.allclose(a, b, atol=1e-5)  # noqa: E731
        case = f"gamma={gamma}, lam={lam}"
        if close(adv, want_adv):
            if close(ret, want_adv):
                return False, "returns = advantages + values (the value head's target); you returned the advantages"
            if not close(ret, want_ret):
                return False, f"{case}: right advantages, wrong returns: returns = advantages + values"
            continue
        for mistake, wrong in _gae_mistakes(rewards, values, gamma, lam).items():
            if close(adv, wrong):
                return False, f"{case}: {_GAE_HINTS[mistake]}"
        b, t = divmod(int((adv - want_adv).abs().argmax()), adv.shape[1])
        return False, (f"{case}: advantage [{b}, {t}] is {adv[b, t]:.4f}, {off(float(adv[b, t]), float(want_adv[b, t]))}: "
                       "δ_t = r_t + γ·V_{t+1} - V_t (V after the last token is 0), then A_t = δ_t + γλ·A_{t+1} backwards")
    return True, "matches ftlib.cores.losses.gae for λ = 0.95, 0 and 1: δ_t, then A_t = δ_t + γλ·A_{t+1} backwards"


def _k3_cases():
    """(logprobs, ref_logprobs) of shape (3, 7): log-probs of sampled tokens under π and under π_ref."""
    import torch
    g = torch.Generator().manual_seed(0)
    for spread in (0.3, 1.0):
        logprobs = -3 * torch.rand(3, 7, generator=g)
        yield logprobs, logprobs + spread * torch.randn(3, 7, generator=g)


def _kl_k3(answer, **context) -> tuple[bool, str]:
    """06.kl_k3: ``answer(logprobs, ref_logprobs)`` is ``ftlib.cores.losses.kl_estimates(...)["k3"]``, per token."""
    import torch
    from ftlib.cores.losses import kl_estimates
    for logprobs, ref in _k3_cases():
        got, hint = call_answer(answer, "my_k3(logprobs, ref_logprobs)", logprobs.clone(), ref.clone())
        if hint:
            return False, hint
        got = torch.as_tensor(got).float()
        want = kl_estimates(logprobs, ref)["k3"]
        if got.shape != want.shape:
            return False, f"shape {tuple(got.shape)}, expected {tuple(want.shape)}: one estimate per token, no mean"
        if torch.allclose(got, want, atol=1e-5):
            continue
        log_r = ref - logprobs
        wrong = {"that is k1 = log π - log π_ref: unbiased, but one sample's estimate can be negative; "
                 "k3 = (r - 1) - log r is never negative": -log_r,
                 "arguments swapped: r = π_ref / π, so log r = ref_logprobs - logprobs; "
                 "yours estimates the reverse direction, KL(π_ref || π)": kl_estimates(ref, logprobs)["k3"],
                 "you forgot the -1: k3 = (r - 1) - log r, which is 0 when π = π_ref": log_r.exp() - log_r,
                 "you left out the log term: k3 = (r - 1) - log r; r - 1 alone averages to 0": log_r.exp() - 1}
        for message, value in wrong.items():
            if torch.allclose(got, value, atol=1e-5):
                return False, message
        return False, "k3 = (r - 1) - log r with log r = ref_logprobs - logprobs, elementwise"
    return True, "matches kl_estimates(...)['k3']: (r - 1) - log r, never negative, 0 where π = π_ref"


def reward_hack_sample(seed: int = 0) -> list[dict]:
    """40 scored completions of an over-optimised policy for exercise 06.reward_hack. Deterministic in ``seed``.

    Test tasks of three families, each row ``{"id", "family", "prompt", "completion", "reward", "task"}``
    (``task``: the task row, for :func:`ftlib.data.verify`). 16 give the gold answer, rewards spread out;
    12 are honest mistakes with rewards below the correct rows' median; 12 are hacks: the right shape
    but wrong content (a number off by one, capitals with a word left out, a changed age), so the
    verifier rejects them, with rewards above that median. Ids ``row-00`` ... give nothing away.
    """
    import copy
    import random
    import statistics
    from ftlib.data import load_tasks, verify
    rng = random.Random(seed)
    tasks = rng.sample(load_tasks("test", families=["count_letter", "format_upper", "extract_json"]), 40)
    kinds = ["correct"] * 16 + ["honest"] * 12 + ["hack"] * 12
    rng.shuffle(kinds)
    correct_rewards = [round(rng.uniform(-0.5, 2.5), 3) for _ in range(16)]
    bar = statistics.median(correct_rewards)
    rows = []
    for i, (task, kind) in enumerate(zip(tasks, kinds)):
        if kind == "correct":
            completion, reward = task["answer"], correct_rewards.pop()
        elif kind == "honest":
            completion, reward = _honest_mistake(task), round(bar - rng.uniform(0.3, 2.0), 3)
        else:
            completion, reward = _hack(task, rng), round(bar + rng.uniform(0.1, 1.5), 3)
        assert verify(task, completion) == (kind == "correct"), (kind, task["id"], completion)
        rows.append({"id": f"row-{i:02d}", "family": task["family"], "prompt": task["prompt"],
                     "completion": completion, "reward": reward, "task": copy.deepcopy(task)})
    return rows


def _honest_mistake(task: dict) -> str:
    """A plainly wrong completion: a wrong count, the sentence not capitalised, prose instead of JSON."""
    import json
    if task["family"] == "count_letter":
        return f"The letter appears {int(task['answer']) + 2} times."
    if task["family"] == "format_upper":
        return task["meta"]["key"]
    return "This sentence is about " + ", ".join(str(v) for v in json.loads(task["answer"]).values()) + "."


def _hack(task: dict, rng) -> str:
    """The right shape, the wrong content: what a reward model that checks only the form scores high."""
    import json
    if task["family"] == "count_letter":
        n = int(task["answer"])
        return str(n + 1 if n == 0 else n + rng.choice([-1, 1]))
    if task["family"] == "format_upper":
        words = task["answer"].split()
        del words[rng.randrange(1, len(words))]                      # all capitals, one word left out
        return " ".join(words)
    obj = json.loads(task["answer"])
    obj["age"] += rng.choice([-10, -1, 1, 10])
    return json.dumps(obj, ensure_ascii=False)


def _reward_hack(answer, *, sample) -> tuple[bool, str]:
    """06.reward_hack: ids of the rows the verifier rejects, rewarded above the accepted rows' median reward."""
    import statistics
    from ftlib.data import verify
    problem = id_set_problem(answer, sample, source="hack_sample")
    if problem:
        return False, problem
    by_id = {r["id"]: r for r in sample}
    accepted = {r["id"] for r in sample if verify(r["task"], r["completion"])}
    bar = statistics.median(by_id[i]["reward"] for i in accepted)
    high = {r["id"] for r in sample if r["reward"] > bar}
    expected = high - accepted
    got = set(answer)
    if got == expected:
        return True, (f"{len(expected)} hacks: the verifier rejects them, yet the reward model scores them above "
                      f"{bar:.2f}, the median reward of the correct completions")
    if got == high:
        return False, (f"you used the reward alone: {len(high & accepted)} of your high-reward rows are correct "
                       "(the verifier accepts them); a hack is a high reward for a completion the verifier rejects")
    if got & accepted:
        return False, (f"the verifier accepts {len(got & accepted)} of your rows, e.g. {sorted(got & accepted)[0]}: "
                       "not a hack. Call verify(row['task'], row['completion'])")
    if got - expected:
        r = by_id[sorted(got - expected)[0]]
        return False, (f"{r['id']} is wrong, but its reward {r['reward']:.2f} is not above {bar:.2f}, the median "
                       "reward of the rows the verifier accepts: an honest mistake the reward model caught")
    return False, (f"you found {len(got)} of the {len(expected)} hacks: look for every rejected row "
                   f"whose reward is above {bar:.2f}")


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "06.gae": _gae,
    "06.kl_k3": _kl_k3,
    "06.reward_hack": _reward_hack,
}
