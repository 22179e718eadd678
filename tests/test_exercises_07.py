"""Chapter 07's exercise checkers: they accept the right answer and give a useful hint otherwise."""
import math

import pytest
import torch
import torch.nn.functional as F

from ftlib.course.exercises import CHECKS, check
from ftlib.course.exercises.ch07_dpo import label_sample


def dpo_by_hand(pc, pr, rc, rr, beta, reduce=torch.mean):
    """The DPO loss written out, with the reduction as a switch."""
    return reduce(-F.logsigmoid(beta * ((pc - rc) - (pr - rr))))


def test_dpo_loss_checker(capsys):
    assert check("07.dpo_loss", dpo_by_hand)
    assert check("07.dpo_loss", lambda pc, pr, rc, rr, beta: dpo_by_hand(pc, pr, rc, rr, beta).item())  # a float
    mistakes = {
        "you left out β": lambda pc, pr, rc, rr, beta: dpo_by_hand(pc, pr, rc, rr, 1.0),
        "sign is flipped": lambda pc, pr, rc, rr, beta: dpo_by_hand(pr, pc, rr, rc, beta),
        "sign is flipped (chosen": lambda pc, pr, rc, rr, beta: dpo_by_hand(rc, rr, pc, pr, beta),  # π_ref - π
        "reference enters the wrong way": lambda pc, pr, rc, rr, beta: dpo_by_hand(pc, pr, rr, rc, beta),
        "left out the reference": lambda pc, pr, rc, rr, beta: dpo_by_hand(pc, pr, 0 * rc, 0 * rr, beta),
        "your loss is negative": lambda pc, pr, rc, rr, beta: -dpo_by_hand(pc, pr, rc, rr, beta),
        "you summed over the pairs": lambda pc, pr, rc, rr, beta: dpo_by_hand(pc, pr, rc, rr, beta, torch.sum),
        "mean over the pairs (.mean()); yours has shape (4,)":
            lambda pc, pr, rc, rr, beta: dpo_by_hand(pc, pr, rc, rr, beta, lambda x: x),
        "returns None": lambda pc, pr, rc, rr, beta: None,
        "your function raised TypeError": lambda pc, pr, rc, rr: pc,
        "beta=0.1, 4 pairs: you give": lambda pc, pr, rc, rr, beta: dpo_by_hand(pc, pr, rc, rr, 2 * beta),
        "shape (2, 4): the loss is one number":
            lambda pc, pr, rc, rr, beta: torch.stack([dpo_by_hand(pc, pr, rc, rr, beta, lambda x: x)] * 2),
    }
    for hint, answer in mistakes.items():
        assert not check("07.dpo_loss", answer), hint
        assert hint in capsys.readouterr().out
    assert not check("07.dpo_loss", 0.6931)
    assert "expected a function my_dpo_loss" in capsys.readouterr().out


def test_dpo_loss_checker_asks_for_ln2_where_policy_is_reference(capsys):
    def ln2_only_when_equal(pc, pr, rc, rr, beta):
        right = dpo_by_hand(pc, pr, rc, rr, beta)
        return right if not torch.equal(pc, rc) else right + 1
    assert not check("07.dpo_loss", ln2_only_when_equal)
    out = capsys.readouterr().out
    assert "policy == reference" in out and "ln 2" in out


def test_dpo_loss_checker_matches_the_library_on_its_ln2_case():
    from ftlib.course.exercises.ch07_dpo import dpo_cases
    from ftlib.cores.losses import dpo_loss
    cases = list(dpo_cases())
    assert len({beta for *_, beta in cases}) >= 3
    same = [c for c in cases if torch.equal(c[0], c[2]) and torch.equal(c[1], c[3])]
    assert same and all(math.isclose(dpo_loss(*c[:4], beta=c[4])["loss"].item(), math.log(2), abs_tol=1e-6)
                        for c in same)


def test_dpo_loss_checker_calls_a_stub_not_attempted(capsys):
    def stub(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
        raise NotImplementedError()
    assert not check("07.dpo_loss", stub)
    assert "not attempted yet" in capsys.readouterr().out


def labelled(row):
    return [i for i, label in enumerate(row["labels"]) if label != -100]


def answer_positions(row):
    return list(range(len(row["prompt"].split()), len(row["tokens"])))


def bad_rows(sample):
    return {r["id"] for r in sample if labelled(r) != answer_positions(r)}


def test_label_sample_is_deterministic_and_plants_each_bug():
    sample = label_sample(0)
    assert sample == label_sample(0) and sample != label_sample(1)
    assert len({r["id"] for r in sample}) == len(sample) >= 10
    assert all(set(r) == {"id", "prompt", "answer", "tokens", "labels"} for r in sample)
    for r in sample:
        assert r["tokens"] == r["prompt"].split() + r["answer"].split() and len(r["labels"]) == len(r["tokens"])
        assert all(label in (-100, token) for label, token in zip(r["labels"], r["tokens"]))
    correct = [r for r in sample if labelled(r) == answer_positions(r)]
    assert len(correct) >= 3
    bugs = [(labelled(r), answer_positions(r)) for r in sample if r not in correct]
    assert any(got == [] for got, _ in bugs)                                         # nothing labelled
    assert any(got and got[0] == 0 for got, _ in bugs)                               # the whole prompt
    assert any(got and got[0] == answer[0] - 1 > 0 for got, answer in bugs)          # off by one


def test_unmasked_prompt_checker(capsys):
    sample = label_sample(0)
    right = bad_rows(sample)
    assert check("07.unmasked_prompt", right, sample=sample)
    assert check("07.unmasked_prompt", sorted(right), sample=sample)           # a list of ids is fine too
    good = {r["id"] for r in sample} - right
    ok, hint = CHECKS["07.unmasked_prompt"](right | {sorted(good)[0]}, sample=sample)
    assert not ok and "1 of your rows is labelled right" in hint
    ok, hint = CHECKS["07.unmasked_prompt"](set(), sample=sample)
    assert not ok and f"{len(right)} rows are labelled wrong" in hint
    whole_prompt = {r["id"] for r in sample if r["labels"][0] != -100}
    ok, hint = CHECKS["07.unmasked_prompt"](whole_prompt, sample=sample)
    assert not ok and "look at the boundary" in hint and not any(i in hint for i in right - whole_prompt)
    assert f"missed {len(right - whole_prompt)} rows" in hint
    some_labels = {r["id"] for r in sample if labelled(r) != answer_positions(r) and labelled(r)}
    ok, hint = CHECKS["07.unmasked_prompt"](some_labels, sample=sample)
    assert not ok and "no label at all" in hint
    assert not check("07.unmasked_prompt", [r for r in sample if r["id"] in right], sample=sample)
    assert "ids, not the rows" in capsys.readouterr().out
    assert not check("07.unmasked_prompt", len(right), sample=sample)
    assert "set of row ids" in capsys.readouterr().out
    assert not check("07.unmasked_prompt", {0, 1}, sample=sample)
    assert "not the id of a row" in capsys.readouterr().out
    assert not check("07.unmasked_prompt", None, sample=sample)
    assert "not attempted yet" in capsys.readouterr().out


@pytest.mark.parametrize("seed", range(3))
def test_unmasked_prompt_checker_recomputes_the_truth_from_the_sample(seed):
    sample = label_sample(seed)
    right = bad_rows(sample)
    fixed = sorted(right)[0]
    repaired = [dict(r, labels=[-100] * len(r["prompt"].split()) + r["answer"].split()) if r["id"] == fixed else r
                for r in sample]
    assert not CHECKS["07.unmasked_prompt"](right, sample=repaired)[0]
    assert CHECKS["07.unmasked_prompt"](right - {fixed}, sample=repaired)[0]
    broken = sorted({r["id"] for r in sample} - right)[0]
    shifted = [dict(r, labels=r["labels"][1:] + [-100]) if r["id"] == broken else r for r in sample]
    assert CHECKS["07.unmasked_prompt"](right | {broken}, sample=shifted)[0]
