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
- :func:`perplexity`: token-weighted over a corpus, with a sliding window for long texts.

The statistics (:class:`Accuracy`, Wilson intervals, McNemar, bootstrap, κ) live in
:mod:`ftlib.stats` and are re-exported here, so ``from ftlib.evaluate import compare`` works.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ftlib.sft import stop_ids  # noqa: F401  (re-exported: generation stops at <|im_end|>)
from ftlib.stats import (Accuracy, Z95, accuracy, compare, mcnemar, paired_bootstrap,  # noqa: F401
                         wilson_interval)


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
                   batch_size: int = 32, *, temperature: float = 0.0, top_p: float = 1.0,
                   seed: int = 0) -> list[str]:
    """Completions of already-rendered ``prompts`` (new text only, special tokens dropped): greedy,
    or sampled with ``temperature`` > 0 and nucleus ``top_p`` (seeded, so a run can be repeated).

    Left padding puts every prompt's last token in the last column, so one ``generate`` call
    continues all of them; the attention mask hides the padding. A prompt that would not leave
    ``max_new_tokens`` of room in the model's context (``max_position_embeddings``) loses its
    first tokens, as lm-evaluation-harness does: a model cannot attend beyond its context.
    """
    import torch

    context = getattr(model.config, "max_position_embeddings", None)
    fit = {"truncation": True, "max_length": context - max_new_tokens} if context and context > max_new_tokens else {}
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    cut, tokenizer.truncation_side = tokenizer.truncation_side, "left"
    was_training = model.training
    model.eval()
    answers = []
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
    if temperature > 0:
        torch.manual_seed(seed)
    try:
        with torch.no_grad():
            for i in range(0, len(prompts), batch_size):
                enc = tokenizer(list(prompts[i:i + batch_size]), return_tensors="pt", padding=True,
                                add_special_tokens=False, **fit).to(model.device)
                out = model.generate(**enc, max_new_tokens=max_new_tokens, **sampling,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=stop_ids(tokenizer))
                answers += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side, tokenizer.truncation_side = side, cut
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


def held_out_rows(per_family: int, families: Sequence[str] | None = None, *, split: str = "test",
                  seed: int = 0) -> list[dict]:
    """A seeded random sample of ``per_family`` rows of each family from ``split`` (file order
    kept). A random sample, not the first rows: the files keep rewordings of one item together,
    so the first rows would be a few items asked several times."""
    from ftlib.data import FAMILIES, load_tasks

    rows = []
    for family in families or FAMILIES:
        pool = load_tasks(split, [family])
        keep = set(random.Random(f"{seed}/{family}").sample(range(len(pool)), min(per_family, len(pool))))
        rows += [r for i, r in enumerate(pool) if i in keep]
    return rows


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
                max_new_tokens: int | None = None, batch_size: int = 32, temperature: float = 0.0,
                top_p: float = 1.0, seed: int = 0) -> TaskEval:
    """Greedy answers to task ``rows``, each checked by its family's verifier.

    Rows are generated family by family, each with :func:`answer_budget` new tokens unless
    ``max_new_tokens`` fixes one budget for all. ``render`` turns a task prompt into the model's
    input text (default: the tokenizer's chat template via :func:`chat_prompt`). Decoding is
    greedy unless ``temperature`` > 0 (see :func:`greedy_answers`).
    """
    from ftlib.data import verify

    rows = list(rows)
    render = render or (lambda prompt: chat_prompt(tokenizer, prompt))
    answers: list[str | None] = [None] * len(rows)
    budgets = {}
    for family in sorted({r["family"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["family"] == family]
        budgets[family] = max_new_tokens or answer_budget(tokenizer, family)
        outs = greedy_answers(model, tokenizer, [render(rows[i]["prompt"]) for i in idx], budgets[family], batch_size,
                              temperature=temperature, top_p=top_p, seed=seed)
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


# ---------------------------------------------------------------------------------------------
# Perplexity
# ---------------------------------------------------------------------------------------------
def token_nlls(model, ids: Sequence[int], *, window: int, stride: int) -> list[float]:
    """Negative log-likelihood (nats) of tokens 1..L-1 of one text ``ids``, each predicted from at
    most ``window - 1`` tokens before it (token 0 has no context and is not scored).

    Texts longer than the window are read with a sliding window: the first window scores its
    tokens; each next window moves ``stride`` tokens further and scores only those ``stride`` new
    tokens, which keep at least ``window - stride`` tokens of context. Every token is scored
    exactly once. ``stride = window - 1`` is the cheap, pessimistic way (chunks that restart from
    one token of context); a smaller stride costs more forward passes and gives each token more
    context.
    """
    import torch

    if not 0 < stride < window:
        raise ValueError(f"token_nlls: need 0 < stride ({stride}) < window ({window})")
    nlls: list[float] = []
    scored = 1                                            # tokens before this index are scored
    with torch.no_grad():
        while scored < len(ids):
            end = min(len(ids), window if scored == 1 else scored + stride)
            start = max(0, end - window)
            chunk = torch.tensor([list(ids[start:end])], device=model.device)
            logp = torch.log_softmax(model(input_ids=chunk).logits[0, :-1].float(), dim=-1)
            nll = -logp.gather(1, chunk[0, 1:, None])[:, 0]               # nll[j]: token start + j + 1
            nlls += nll[scored - start - 1:].tolist()
            scored = end
    return nlls


@dataclass
class Perplexity:
    """Summed NLL and token counts per text; the corpus perplexity weights every token equally."""
    nll: list[float]          # per text, nats, summed over its scored tokens
    tokens: list[int]         # per text, scored tokens

    @property
    def value(self) -> float:
        """exp(total NLL / total tokens): the corpus perplexity, each token weighing the same."""
        return math.exp(sum(self.nll) / sum(self.tokens))

    @property
    def mean_of_texts(self) -> float:
        """The naive number: the mean of per-text perplexities (short texts weigh as much as long
        ones, and one hard short text can dominate). Shown only to say why it is wrong."""
        per_text = [math.exp(s / t) for s, t in zip(self.nll, self.tokens) if t]
        return sum(per_text) / len(per_text)

    def __str__(self) -> str:
        return f"perplexity {self.value:.3f} over {sum(self.tokens):,} tokens in {len(self.tokens)} texts"


def perplexity(model, tokenizer, texts: Sequence[str], *, window: int | None = None,
               stride: int | None = None) -> Perplexity:
    """Token-weighted perplexity of ``model`` on ``texts`` (a sliding window for long texts).

    ``window`` defaults to the model's context length (``max_position_embeddings``), ``stride``
    to half the window. Texts are tokenized without special tokens; see :func:`token_nlls`.
    """
    window = window or model.config.max_position_embeddings
    stride = stride or window // 2
    was_training = model.training
    model.eval()
    try:
        nll, tokens = [], []
        for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
            values = token_nlls(model, ids, window=window, stride=stride)
            nll.append(sum(values))
            tokens.append(len(values))
    finally:
        model.train(was_training)
    return Perplexity(nll, tokens)
