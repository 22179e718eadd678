"""One measurement for every trained policy (chapters 07-08): what it answers, how far it moved.

PPO, GRPO, DPO and its variants all start from the same assistant and are compared with it on the
same items. :func:`score_policy` measures any of them the same way, per item, so a chapter can
print an accuracy with its interval, a paired test against the start, and a KL on one scale:

- ``greedy``: exact match of the greedy answer to each task row (what chapter 08's board reports);
- ``sampled``: the verifier on one answer sampled at temperature 1 (the expected reward that RL
  maximises), and ``kl`` / ``kl_k3``: KL(π || π_ref) of that same answer, summed over its tokens,
  in nats (:func:`ftlib.engine.ppo.sampled_kl`). A policy and its reference give KL 0;
- ``preference`` (with ``pairs``): for each held-out pair, whether DPO's implicit reward
  β·(log π − log π_ref) ranks the chosen answer above the rejected one, and both log-probs.

:class:`PolicyScores` goes to and from JSON, so a product can store it and a chapter read it back.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

from ftlib.cores.stats import Accuracy, accuracy_of


@dataclass
class PolicyScores:
    """Per-item results of :func:`score_policy`, in the order of its rows (and pairs)."""
    greedy: list[bool]
    sampled: list[bool]
    kl: list[float]
    kl_k3: list[float]
    preference: list[bool] | None = None
    chosen_logp: list[float] | None = None
    rejected_logp: list[float] | None = None

    @property
    def accuracy(self) -> Accuracy:
        """Greedy exact match with its Wilson interval."""
        return accuracy_of(self.greedy)

    @property
    def sampled_accuracy(self) -> Accuracy:
        return accuracy_of(self.sampled)

    @property
    def mean_kl(self) -> float:
        return sum(self.kl) / len(self.kl)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, record: dict) -> "PolicyScores":
        return cls(**record)


def sample_budget(tokenizer, rows: Sequence[dict]) -> int:
    """New tokens for one sampled answer: the largest answer budget of the rows' families."""
    from ftlib.metrics.exact_match import answer_budget
    return max(answer_budget(tokenizer, f) for f in {r["family"] for r in rows})


def score_policy(model, ref_model, tokenizer, rows: Sequence[dict], *, pairs: Sequence[dict] | None = None,
                 beta: float = 0.1, max_new_tokens: int | None = None, seed: int = 0) -> PolicyScores:
    """``model`` on task ``rows`` (greedy and one sample each, with the sample's KL to ``ref_model``),
    and on preference ``pairs`` if given. ``max_new_tokens`` for the sample defaults to
    :func:`sample_budget`; the seed fixes the samples, so two policies are sampled alike."""
    from ftlib.data import verify
    from ftlib.engine.dpo import preference_scores
    from ftlib.engine.ppo import sampled_kl
    from ftlib.engine.sft_data import chat_prompt
    from ftlib.metrics.exact_match import exact_match

    rows = list(rows)
    greedy = exact_match(model, tokenizer, rows).correct
    texts = [chat_prompt(tokenizer, r["prompt"]) for r in rows]
    answers, kl = sampled_kl(model, ref_model, tokenizer, texts, seed=seed,
                             max_new_tokens=max_new_tokens or sample_budget(tokenizer, rows))
    scores = PolicyScores(greedy=greedy, sampled=[bool(verify(r, a)) for r, a in zip(rows, answers)],
                          kl=kl["k1"], kl_k3=kl["k3"])
    if pairs:
        pref = preference_scores(model, ref_model, tokenizer, list(pairs), beta=beta)
        scores.preference, scores.chosen_logp, scores.rejected_logp = (pref["correct"], pref["chosen_logp"],
                                                                       pref["rejected_logp"])
    return scores
