"""Checkers for chapter 07's exercises (DPO), registered into :data:`ftlib.course.exercises.CHECKS`.

Like every checker they return ``(ok, hint)``; :func:`ftlib.course.exercises.check` prints the verdict.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable

from ftlib.course.exercises.core import call_answer, id_set_problem, off

IGNORE = -100  # the label of a position that does not count, as ftlib.cores.losses.IGNORE


def dpo_cases():
    """(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta), sequence log-probs each (B,).

    β = 0.1 on a random batch first: every mistake shows there. Then policy == reference (loss ln 2).
    """
    import torch
    g = torch.Generator().manual_seed(0)
    for beta, batch, same in [(0.1, 4, False), (0.1, 4, True), (0.5, 6, False), (2.0, 3, False)]:
        policy_chosen, policy_rejected = (-5 - 30 * torch.rand(batch, generator=g) for _ in range(2))
        if same:
            yield policy_chosen, policy_rejected, policy_chosen.clone(), policy_rejected.clone(), beta
        else:
            yield (policy_chosen, policy_rejected, policy_chosen + 3 * torch.randn(batch, generator=g),
                   policy_rejected + 3 * torch.randn(batch, generator=g), beta)


_DPO_HINTS = {
    "no_beta": "you left out β: margin = β·[(log π_c - log π_ref,c) - (log π_r - log π_ref,r)]",
    "flipped": ("the margin's sign is flipped (chosen and rejected swapped, or log π_ref - log π): "
                "the chosen answer's implicit reward β·(log π_c - log π_ref,c) must be the one that wins"),
    "ref_crossed": ("the reference enters the wrong way: subtract each answer's own reference log-prob, "
                    "(log π_c - log π_ref,c) - (log π_r - log π_ref,r); yours adds the reference's margin"),
    "no_ref": "you left out the reference: DPO compares log-ratios log π - log π_ref, not log π alone",
    "no_minus": ("your loss is negative: log σ(x) < 0, so the loss is -log σ(margin), "
                 "ln 2 ≈ 0.6931 while the policy equals the reference"),
    "summed": "you summed over the pairs: take the mean, so that the loss does not grow with the batch size",
}


def _dpo_mistakes(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta) -> dict:
    """The loss each mistake of :data:`_DPO_HINTS` gives, built from the right dpo_loss on altered inputs."""
    from ftlib.cores.losses import dpo_loss
    loss = lambda pc, pr, rc, rr, b=beta: dpo_loss(pc, pr, rc, rr, beta=b)["loss"]  # noqa: E731
    right = loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    zero = policy_chosen * 0
    return {"no_beta": loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, 1.0),
            "flipped": loss(policy_rejected, policy_chosen, ref_rejected, ref_chosen),
            "ref_crossed": loss(policy_chosen, policy_rejected, ref_rejected, ref_chosen),
            "no_ref": loss(policy_chosen, policy_rejected, zero, zero),
            "no_minus": -right,
            "summed": right * len(policy_chosen)}


def _dpo_loss(answer, **context) -> tuple[bool, str]:
    """07.dpo_loss: ``answer(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)`` is
    ``ftlib.cores.losses.dpo_loss(...)["loss"]``: the mean of -log σ(margin) over the pairs, a scalar."""
    import torch
    import torch.nn.functional as F
    from ftlib.cores.losses import dpo_loss
    for pc, pr, rc, rr, beta in dpo_cases():
        got, hint = call_answer(answer, "my_dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)",
                          pc.clone(), pr.clone(), rc.clone(), rr.clone(), beta)
        if hint:
            return False, hint
        got = torch.as_tensor(got).detach().float()
        per_pair = -F.logsigmoid(beta * ((pc - rc) - (pr - rr)))
        if got.shape == per_pair.shape and torch.allclose(got, per_pair, atol=1e-5):
            return False, f"return one number, the mean over the pairs (.mean()); yours has shape {tuple(got.shape)}"
        if got.numel() != 1:
            return False, f"shape {tuple(got.shape)}: the loss is one number, the mean over the batch's pairs"
        want = dpo_loss(pc, pr, rc, rr, beta=beta)["loss"]
        close = lambda value: abs(got.item() - value.item()) <= 1e-5  # noqa: E731
        if close(want):
            continue
        case = f"beta={beta}, {len(pc)} pairs"
        if torch.equal(pc, rc) and torch.equal(pr, rr):
            return False, (f"{case}, policy == reference: the margin is 0, so the loss is -log σ(0) = ln 2 "
                           f"≈ 0.6931; you give {got.item():.4f}")
        for mistake, wrong in _dpo_mistakes(pc, pr, rc, rr, beta).items():
            if close(wrong):
                return False, f"{case}: {_DPO_HINTS[mistake]}"
        return False, (f"{case}: you give {got.item():.4f}, {off(got.item(), want.item())}: the mean over pairs of "
                       "-log σ(β·((π_c - ref_c) - (π_r - ref_r)))")
    return True, "matches ftlib.cores.losses.dpo_loss for β = 0.1, 0.5 and 2, and gives ln 2 where the policy is the reference"


def label_sample(seed: int = 0) -> list[dict]:
    """12 rows with the labels a data collator made, for exercise 07.unmasked_prompt. Deterministic in ``seed``.

    Each row ``{"id", "prompt", "answer", "tokens", "labels"}`` comes from a training preference pair
    (its chosen answer). ``tokens`` are the prompt's words, then the answer's (a whitespace split: no
    tokenizer needed), so the answer starts at index ``len(row["prompt"].split())``. ``labels[i]`` is
    ``tokens[i]`` where the token counts and -100 where it does not. 6 rows label exactly the answer;
    2 label the whole prompt too, 2 the prompt's last word too (off by one), 2 nothing at all.
    """
    import random
    from ftlib.data import load_preferences
    rng = random.Random(seed)
    pairs = rng.sample(load_preferences("train"), 12)
    kinds = ["correct"] * 6 + ["prompt"] * 2 + ["boundary"] * 2 + ["masked"] * 2
    rng.shuffle(kinds)
    rows = []
    for i, (pair, kind) in enumerate(zip(pairs, kinds)):
        prompt, answer = pair["prompt"].split(), pair["chosen"].split()
        tokens = prompt + answer
        first = {"correct": len(prompt), "prompt": 0, "boundary": len(prompt) - 1, "masked": len(tokens)}[kind]
        rows.append({"id": f"row-{i:02d}", "prompt": pair["prompt"], "answer": pair["chosen"],
                     "tokens": tokens, "labels": [IGNORE] * first + tokens[first:]})
    return rows


def _label_bug(row: dict) -> str | None:
    """None when exactly the answer's positions are labelled, else which bug: prompt, boundary, masked, other."""
    start, end = len(row["prompt"].split()), len(row["tokens"])
    labelled = [i for i, label in enumerate(row["labels"]) if label != IGNORE]
    if labelled == list(range(start, end)):
        return None
    if not labelled:
        return "masked"
    if labelled == list(range(start - 1, end)):
        return "boundary"
    return "prompt" if labelled == list(range(end)) else "other"


_BUG_WORDS = {"prompt": "label the whole prompt too", "boundary": "the prompt's last word too (off by one)",
              "masked": "nothing at all", "other": "other positions"}


def _unmasked_prompt(answer, *, sample) -> tuple[bool, str]:
    """07.unmasked_prompt: ids of the rows whose labelled positions are not exactly the answer's."""
    problem = id_set_problem(answer, sample, source="label_sample_rows")
    if problem:
        return False, problem
    bugs = {r["id"]: _label_bug(r) for r in sample}
    expected = {i for i, bug in bugs.items() if bug}
    got = set(answer)
    if got == expected:
        counts = Counter(bugs[i] for i in expected)
        return True, f"{len(expected)} rows labelled wrong: " + ", ".join(
            f"{counts[k]} {words}" for k, words in _BUG_WORDS.items() if counts[k])
    if got - expected:
        n = len(got - expected)
        return False, (f"{n} of your rows {'is' if n == 1 else 'are'} labelled right, e.g. {sorted(got - expected)[0]}: "
                       "its labels cover exactly the answer, from index len(row['prompt'].split()) to the end")
    if not got:
        return False, (f"{len(expected)} rows are labelled wrong: compare each row's labelled positions "
                       "(label != -100) with the answer's, from index len(row['prompt'].split()) to the end")
    missed = [bugs[i] for i in expected - got]
    if "boundary" in missed:
        return False, (f"you missed {len(missed)} rows; look at the boundary: labels that start one token early, "
                       "on the prompt's last word, train on the prompt too")
    if "masked" in missed:
        return False, f"you missed {len(missed)} rows: a row with no label at all is wrong too, it teaches nothing"
    return False, (f"you found {len(got)} of the {len(expected)} rows whose labels are wrong: a row is right only "
                   "when its labelled positions (label != -100) are exactly the answer's")


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "07.dpo_loss": _dpo_loss,
    "07.unmasked_prompt": _unmasked_prompt,
}
