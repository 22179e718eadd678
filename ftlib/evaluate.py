"""Evaluation shared by every chapter: greedy answers, exact match through the verifiers, and the
statistics that say how far to trust a number.

    result = exact_match(model, tokenizer, load_tasks("test", ["format_list"])[:100])
    print(result.accuracy)                      # e.g. 93% (93/100; 95% CI 86–97%)
    print(compare(before.correct, result.correct, "base", "LoRA"))

- :func:`greedy_answers`: batched greedy generation with left padding (every prompt ends in the
  last column, where generation starts); prompts are rendered with the tokenizer's chat template
  unless ``render`` says otherwise.
- :func:`answer_budget`: the token budget of a task family, from its longest gold answer, so no
  correct answer is cut short.
- :func:`wilson_interval` and :class:`Accuracy`: a proportion with n and its 95% interval.
- :func:`mcnemar` and :func:`paired_bootstrap`: two models on the *same* items, compared paired.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ftlib.sft import stop_ids  # noqa: F401  (re-exported: generation stops at <|im_end|>)

Z95 = 1.959963984540054  # two-sided 95% normal quantile


# ---------------------------------------------------------------------------------------------
# Statistics: pure functions of booleans
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
        lo, hi = self.ci
        return f"{self.value:.0%} ({self.k}/{self.n}; 95% CI {100 * lo:.0f}–{100 * hi:.0f}%)"

    def as_dict(self) -> dict:
        lo, hi = self.ci
        return {"accuracy": self.value, "k": self.k, "n": self.n, "ci_low": lo, "ci_high": hi}


def accuracy(correct: Sequence[bool]) -> Accuracy:
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
    m, low = only_a + only_b, min(only_a, only_b)
    tail = sum(math.comb(m, i) for i in range(low + 1)) / 2 ** m if m else 1.0
    return {"only_a": only_a, "only_b": only_b, "p_value": min(1.0, 2 * tail)}


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, n_boot: int = 10_000,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``b - a`` over the same items, with a 95% percentile interval from resampling items.

    >>> paired_bootstrap([0, 0, 0, 0], [1, 1, 1, 1])
    (1.0, 1.0, 1.0)
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"paired_bootstrap: {len(a)} vs {len(b)} items; need the same, non-empty items")
    diffs = [float(y) - float(x) for x, y in zip(a, b)]
    rng, n = random.Random(seed), len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(n_boot))
    return sum(diffs) / n, means[int(0.025 * n_boot)], means[int(0.975 * n_boot) - 1]


def compare(a: Sequence[bool], b: Sequence[bool], name_a: str = "A", name_b: str = "B",
            alpha: float = 0.05) -> str:
    """One sentence comparing two models on the same items: both accuracies, the paired
    difference with its bootstrap interval, McNemar's p, and whether the difference is real."""
    test = mcnemar(a, b)
    diff, lo, hi = paired_bootstrap([float(x) for x in a], [float(x) for x in b])
    if test["p_value"] < alpha:
        verdict = f"{name_b if diff > 0 else name_a} is better (p < {alpha:g})"
    else:
        verdict = "not distinguishable at this n"
    return (f"{name_a} {accuracy(a)} vs {name_b} {accuracy(b)}: difference {diff:+.0%} "
            f"(paired 95% CI {lo:+.0%} to {hi:+.0%}; {name_a} alone right on {test['only_a']}, "
            f"{name_b} alone on {test['only_b']}; McNemar p = {test['p_value']:.2g}): {verdict}")


# ---------------------------------------------------------------------------------------------
# Generation and exact match
# ---------------------------------------------------------------------------------------------
def chat_prompt(tokenizer, prompt: str, system: str | None = None) -> str:
    """The prompt as the model's chat template renders it, ending with the assistant's turn.

    With ``system=None`` the template's own default applies (SmolLM2 adds its system turn).
    """
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def greedy_answers(model, tokenizer, prompts: Sequence[str], max_new_tokens: int,
                   batch_size: int = 32) -> list[str]:
    """Greedy completions of already-rendered ``prompts`` (new text only, special tokens dropped).

    Left padding puts every prompt's last token in the last column, so one ``generate`` call
    continues all of them; the attention mask hides the padding.
    """
    import torch

    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    answers = []
    try:
        with torch.no_grad():
            for i in range(0, len(prompts), batch_size):
                enc = tokenizer(list(prompts[i:i + batch_size]), return_tensors="pt", padding=True,
                                add_special_tokens=False).to(model.device)
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=stop_ids(tokenizer))
                answers += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return answers


_BUDGETS: dict[tuple, int] = {}   # (tokenizer, family) -> longest gold answer in tokens


def answer_budget(tokenizer, family: str, spare: int = 2) -> int:
    """New-token budget for ``family``: its longest gold answer (over all splits) plus ``spare``
    (the end-of-turn token and one more), so a budget never cuts a correct answer short."""
    from ftlib.data import SPLITS, load_tasks

    key = (tokenizer.name_or_path, len(tokenizer), family)
    if key not in _BUDGETS:
        answers = [r["answer"] for split in SPLITS for r in load_tasks(split, [family])]
        _BUDGETS[key] = max(len(ids) for ids in tokenizer(answers, add_special_tokens=False)["input_ids"])
    return _BUDGETS[key] + spare


@dataclass
class TaskEval:
    """Per-item results of :func:`exact_match`, in the order of ``rows``."""
    rows: list[dict]
    answers: list[str]
    correct: list[bool]
    budgets: dict[str, int] = field(default_factory=dict)   # family -> max_new_tokens used

    @property
    def accuracy(self) -> Accuracy:
        return accuracy(self.correct)

    def by_family(self) -> dict[str, Accuracy]:
        families = sorted({r["family"] for r in self.rows})
        return {f: accuracy([c for r, c in zip(self.rows, self.correct) if r["family"] == f]) for f in families}


def exact_match(model, tokenizer, rows: Sequence[dict], *, render: Callable[[str], str] | None = None,
                max_new_tokens: int | None = None, batch_size: int = 32) -> TaskEval:
    """Greedy answers to task ``rows``, each checked by its family's verifier.

    Rows are generated family by family, each with :func:`answer_budget` new tokens unless
    ``max_new_tokens`` fixes one budget for all. ``render`` turns a task prompt into the model's
    input text (default: the tokenizer's chat template via :func:`chat_prompt`).
    """
    from ftlib.data import verify

    rows = list(rows)
    render = render or (lambda prompt: chat_prompt(tokenizer, prompt))
    answers: list[str | None] = [None] * len(rows)
    budgets = {}
    for family in sorted({r["family"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["family"] == family]
        budgets[family] = max_new_tokens or answer_budget(tokenizer, family)
        outs = greedy_answers(model, tokenizer, [render(rows[i]["prompt"]) for i in idx], budgets[family], batch_size)
        for i, out in zip(idx, outs):
            answers[i] = out
    correct = [bool(verify(r, a)) for r, a in zip(rows, answers)]
    return TaskEval(rows, answers, correct, budgets)


def teacher_forced_correct(logits, labels) -> list[bool]:
    """Greedy exact match without generating: with the reference fed in, is the argmax at every
    labelled position the reference token? (Then greedy decoding would write exactly it.)

    ``logits`` (B, T, V) from the model on (prompt + reference); ``labels`` (B, T) with -100 on
    every position that is not part of the reference. Returns one bool per row.
    """
    pred, target = logits[:, :-1].argmax(-1), labels[:, 1:]          # position t predicts t+1
    return ((pred == target) | (target == -100)).all(dim=1).tolist()


def copy_accuracy(model, tokenizer, words: Sequence[str], *, n: int = 50, length: int = 8, seed: int = 0) -> float:
    """In-context copying: a random list ``w1, w2, …, wk`` is written twice (the second time after
    a newline); the score is how often the model predicts the next token of the second copy
    (teacher-forced; its first token cannot be known, so it is not scored). A model with induction
    heads scores high; one that cannot copy from its context scores near zero. Tasks that copy
    from the prompt (lists, JSON fields, sorting) need this skill.
    """
    import torch

    rng = random.Random(seed)
    hits = total = 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for _ in range(n):
            text = ", ".join(rng.sample(list(words), length))
            first = tokenizer(text + "\n", add_special_tokens=False)["input_ids"]
            second = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([first + second], device=model.device)
            pred = model(input_ids=ids).logits[0, len(first):-1].argmax(-1)   # predicts tokens 2.. of the copy
            hits += int((pred == ids[0, len(first) + 1:]).sum())
            total += len(second) - 1
    model.train(was_training)
    return hits / total
