"""Exact match: greedy (or sampled) answers to held-out task items, scored by the verifiers.

    result = exact_match(model, tokenizer, load_tasks("test", ["format_list"])[:100])
    print(result.accuracy)                      # e.g. 93% (93/100; 95% CI 86–97%)
    print(compare(before.correct, result.correct, "base", "LoRA"))   # ftlib.cores.stats

- :func:`greedy_answers`: batched greedy generation with left padding (every prompt ends in the
  last column, where generation starts); prompts are rendered with the tokenizer's chat template
  unless ``render`` says otherwise.
- :func:`answer_budget`: the token budget of a task family, from its longest gold answer, so no
  correct answer is cut short.
- :func:`held_out_rows`: a seeded sample of test items per family.
- :func:`copy_accuracy`: in-context copying, teacher-forced.

Perplexity lives in :mod:`ftlib.metrics.perplexity`; the statistics (:class:`Accuracy`, Wilson
intervals, McNemar, bootstrap) in :mod:`ftlib.cores.stats`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ftlib.cores.stats import Accuracy, accuracy_of
from ftlib.engine.sft_data import chat_prompt, stop_ids


# ---------------------------------------------------------------------------------------------
# Generation and exact match
# ---------------------------------------------------------------------------------------------
def greedy_answers(model, tokenizer, prompts: Sequence[str], max_new_tokens: int,
                   batch_size: int = 32, *, temperature: float = 0.0, top_p: float = 1.0,
                   seed: int = 0, on_batch: Callable[[int], object] | None = None) -> list[str]:
    """Completions of already-rendered ``prompts`` (new text only, special tokens dropped): greedy,
    or sampled with ``temperature`` > 0 and nucleus ``top_p`` (seeded, so a run can be repeated).

    Left padding puts every prompt's last token in the last column, so one ``generate`` call
    continues all of them; the attention mask hides the padding. A prompt that would not leave
    ``max_new_tokens`` of room in the model's context (``max_position_embeddings``) loses its
    first tokens, as lm-evaluation-harness does: a model cannot attend beyond its context.
    ``on_batch(n)`` is called after each batch of ``n`` prompts (a progress bar's ``update``).
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
                if on_batch is not None:
                    on_batch(len(enc["input_ids"]))
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
        return accuracy_of(self.correct)

    def by_family(self) -> dict[str, Accuracy]:
        families = sorted({r["family"] for r in self.rows})
        return {f: accuracy_of([c for r, c in zip(self.rows, self.correct) if r["family"] == f]) for f in families}


def exact_match(model, tokenizer, rows: Sequence[dict], *, render: Callable[[str], str] | None = None,
                max_new_tokens: int | None = None, batch_size: int = 32, temperature: float = 0.0,
                top_p: float = 1.0, seed: int = 0, progress: str | None = None) -> TaskEval:
    """Greedy answers to task ``rows``, each checked by its family's verifier.

    Rows are generated family by family, each with :func:`answer_budget` new tokens unless
    ``max_new_tokens`` fixes one budget for all. ``render`` turns a task prompt into the model's
    input text (default: the tokenizer's chat template via :func:`chat_prompt`). Decoding is
    greedy unless ``temperature`` > 0 (see :func:`greedy_answers`). ``progress``: a label for a
    progress bar over the rows (none by default).
    """
    from tqdm.auto import tqdm

    from ftlib.data import verify

    rows = list(rows)
    render = render or (lambda prompt: chat_prompt(tokenizer, prompt))
    answers: list[str | None] = [None] * len(rows)
    budgets = {}
    bar = tqdm(total=len(rows), desc=progress, disable=progress is None, leave=False)
    for family in sorted({r["family"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["family"] == family]
        budgets[family] = max_new_tokens or answer_budget(tokenizer, family)
        outs = greedy_answers(model, tokenizer, [render(rows[i]["prompt"]) for i in idx], budgets[family], batch_size,
                              temperature=temperature, top_p=top_p, seed=seed, on_batch=bar.update)
        for i, out in zip(idx, outs):
            answers[i] = out
    bar.close()
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
