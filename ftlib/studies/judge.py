"""LLM-as-judge, offline: a local model grades answers with a fixed rubric and replies in JSON.

A judge is only as good as its agreement with a trusted reference. The course has one for every
item, its verifiers, so chapter 08 can measure a judge instead of trusting it:

    verdicts = grade(judge_model, judge_tok, rows, answers)          # True / False / None per item
    report = judge_agreement(verdicts, correct)                           # accuracy, Cohen's κ, malformed
    first, swapped = compare_pairs(...), compare_pairs(..., swapped) # then position_bias(first, swapped)

- Replies are parsed robustly (:func:`parse_field`): the first JSON object in the reply with the
  expected key and an allowed value; anything else is ``None``, counted and reported as
  malformed, never a crash and never silently scored as a verdict.
- ``prefill`` starts the judge's reply with ``{"verdict": "`` so that even a small model only has
  to choose a word: a common trick to get parseable output from a weak judge.
- Position bias: ask twice with the answers swapped. A fair judge names the same answer both
  times; a biased one prefers a position (A or B) whatever it holds.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Sequence

from ftlib.engine.sft_data import chat_prompt
from ftlib.metrics.exact_match import greedy_answers
from ftlib.cores.stats import Accuracy, accuracy_of, cohen_kappa

GRADE_PROMPT = (
    "You are a strict grader. Decide whether the candidate answer to the task is correct.\n"
    "Task: {prompt}\nReference answer: {reference}\nCandidate answer: {answer}\n"
    'Reply with JSON only: {{"verdict": "correct"}} or {{"verdict": "incorrect"}}.')
PAIR_PROMPT = (
    "You are a strict grader. Which answer to the task is better?\n"
    "Task: {prompt}\nAnswer A: {a}\nAnswer B: {b}\n"
    'Reply with JSON only: {{"winner": "A"}}, {{"winner": "B"}} or {{"winner": "tie"}}.')
VERDICTS = {"correct": True, "incorrect": False}
WINNERS = {"a": "A", "b": "B", "tie": "tie"}


def parse_field(reply: str, key: str, allowed: dict) -> object | None:
    """The value of ``key`` in the first JSON object of ``reply`` that has it, mapped through
    ``allowed`` (lower-cased, stripped); ``None`` if there is no such object or the value is not
    allowed. Tolerates text around the object, code fences and Python-style single quotes.

    >>> parse_field('Sure! ```json\\n{"verdict": "Correct"}\\n```', "verdict", VERDICTS)
    True
    >>> parse_field('{"verdict": "maybe"}', "verdict", VERDICTS) is None
    True
    """
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", reply):
        candidate = None
        try:
            candidate, _ = decoder.raw_decode(reply, match.start())
        except json.JSONDecodeError:
            end = reply.find("}", match.start())
            if end != -1:
                try:                                   # {'verdict': 'correct'}: a Python literal
                    candidate = ast.literal_eval(reply[match.start():end + 1])
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    candidate = None
        if isinstance(candidate, dict) and key in candidate:
            value = candidate[key]
            return allowed.get(value.strip().lower()) if isinstance(value, str) else None
    return None


def _ask(model, tokenizer, texts: Sequence[str], prefill: str, max_new_tokens: int, batch_size: int) -> list[str]:
    prompts = [chat_prompt(tokenizer, text) + prefill for text in texts]
    return [prefill + reply for reply in greedy_answers(model, tokenizer, prompts, max_new_tokens, batch_size)]


@dataclass
class Judged:
    """The judge's raw replies and the parsed verdicts (``None`` = malformed reply)."""
    replies: list[str]
    verdicts: list

    @property
    def malformed(self) -> int:
        return sum(v is None for v in self.verdicts)


def grade(model, tokenizer, rows: Sequence[dict], answers: Sequence[str], *, prefill: bool = True,
          max_new_tokens: int = 16, batch_size: int = 16) -> Judged:
    """Ask the judge whether each answer to task ``rows`` is correct, given the reference answer."""
    texts = [GRADE_PROMPT.format(prompt=r["prompt"], reference=r["answer"], answer=a) for r, a in zip(rows, answers)]
    replies = _ask(model, tokenizer, texts, '{"verdict": "' if prefill else "", max_new_tokens, batch_size)
    return Judged(replies, [parse_field(r, "verdict", VERDICTS) for r in replies])


def compare_pairs(model, tokenizer, prompts: Sequence[str], a: Sequence[str], b: Sequence[str], *,
                  prefill: bool = True, max_new_tokens: int = 16, batch_size: int = 16) -> Judged:
    """Ask the judge which of two answers is better; verdicts ``"A"``, ``"B"``, ``"tie"`` or ``None``."""
    texts = [PAIR_PROMPT.format(prompt=p, a=x, b=y) for p, x, y in zip(prompts, a, b)]
    replies = _ask(model, tokenizer, texts, '{"winner": "' if prefill else "", max_new_tokens, batch_size)
    return Judged(replies, [parse_field(r, "winner", WINNERS) for r in replies])


@dataclass
class Agreement:
    """A judge's verdicts against the verifier, on the items where the judge's reply parsed."""
    n: int
    malformed: int
    accuracy: Accuracy
    kappa: tuple[float, float, float]          # Cohen's κ with its 95% bootstrap interval
    says_correct: float                        # how often the judge says "correct"

    def __str__(self) -> str:
        k, lo, hi = self.kappa
        return (f"agrees with the verifier on {self.accuracy}; Cohen's κ = {k:.2f} (95% CI {lo:.2f} to {hi:.2f}); "
                f"says 'correct' {self.says_correct:.0%} of the time; {self.malformed} of {self.n} replies malformed")


def judge_agreement(verdicts: Sequence[bool | None], correct: Sequence[bool]) -> Agreement:
    """How far a judge's verdicts agree with the verifier's ``correct``; malformed ones counted apart."""
    if len(verdicts) != len(correct):
        raise ValueError(f"judge_agreement: {len(verdicts)} verdicts vs {len(correct)} items")
    pairs = [(v, bool(c)) for v, c in zip(verdicts, correct) if v is not None]
    if not pairs:
        raise ValueError("judge_agreement: every reply was malformed; nothing to compare")
    judge, truth = [v for v, _ in pairs], [c for _, c in pairs]
    return Agreement(len(verdicts), len(verdicts) - len(pairs), accuracy_of([v == c for v, c in pairs]),
                     cohen_kappa(judge, truth), sum(judge) / len(judge))


def position_bias(first: Sequence[str | None], swapped: Sequence[str | None]) -> dict:
    """Compare verdicts on (A, B) with verdicts on the same pairs swapped (B shown as A).

    ``consistent``: the same answer wins both times (or a tie twice). ``flipped``: the same
    *position* wins both times, so the verdict followed the position, not the answer.
    ``first_position_rate``: how often the answer shown first wins, over parsed non-tie verdicts
    (0.5 for a judge without position bias). Pairs with a malformed reply are counted apart.
    """
    if len(first) != len(swapped):
        raise ValueError(f"position_bias: {len(first)} vs {len(swapped)} verdicts")
    both = [(x, y) for x, y in zip(first, swapped) if x is not None and y is not None]
    same_answer = {("A", "B"), ("B", "A"), ("tie", "tie")}
    consistent = sum(p in same_answer for p in both)
    flipped = sum(p in {("A", "A"), ("B", "B")} for p in both)
    decided = [v for pair in both for v in pair if v != "tie"]
    return {"pairs": len(first), "parsed": len(both), "consistent": consistent, "flipped": flipped,
            "first_position_rate": decided.count("A") / len(decided) if decided else float("nan")}
