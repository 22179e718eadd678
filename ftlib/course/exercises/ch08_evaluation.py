"""Checkers for chapter 08's exercises (evaluation), registered into :data:`ftlib.course.exercises.CHECKS`.

Like every checker they return ``(ok, hint)``; :func:`ftlib.course.exercises.check` prints the verdict.
"""
from __future__ import annotations

import math
from typing import Callable

from ftlib.course.exercises.core import call_answer, off
from ftlib.cores.stats import kappa

_PPL_CASES = [
    [[2.0], [0.5, 0.5, 0.5, 0.5]],                      # one hard short text, one easy long text
    [[1.0, 1.2, 0.8], [0.3] * 10, [2.5, 2.5]],
    [[0.7] * 6],                                          # one text: every way agrees here
]


def _corpus_perplexity(fn) -> tuple[bool, str]:
    for nlls in _PPL_CASES:
        got, problem = call_answer(fn, "my_corpus_perplexity(nlls_per_text)", [list(t) for t in nlls])
        if problem:
            return False, problem
        flat = [x for t in nlls for x in t]
        want = math.exp(sum(flat) / len(flat))
        if math.isclose(float(got), want, rel_tol=1e-6):
            continue
        per_text = sum(math.exp(sum(t) / len(t)) for t in nlls) / len(nlls)
        text_mean = math.exp(sum(sum(t) / len(t) for t in nlls) / len(nlls))
        if math.isclose(float(got), per_text, rel_tol=1e-6):
            return False, "that is the mean of per-text perplexities: weight every token, not every text"
        if math.isclose(float(got), text_mean, rel_tol=1e-6):
            return False, ("you averaged each text's mean NLL, so a 1-token text weighs as much as a long one: "
                           "divide the total NLL by the total number of tokens")
        if math.isclose(float(got), sum(flat) / len(flat), rel_tol=1e-6):
            return False, "that is the mean NLL (nats per token); perplexity is exp of it"
        return False, f"on {nlls} yours is {float(got):.4f}, {off(float(got), want)}: exp(total NLL / total tokens)"
    return True, "token-weighted: exp(total NLL / total tokens)"


_KAPPA_CASES = [
    (["y", "y", "n", "n", "y", "n", "y", "y"], ["y", "n", "n", "n", "y", "y", "y", "y"]),
    (["y"] * 6 + ["n"] * 2, ["y"] * 8),                   # a rater who always says yes: κ = 0
    ([1, 2, 3, 1, 2, 3, 3, 1, 2], [1, 2, 3, 1, 3, 3, 2, 1, 1]),
]


def _kappa_check(fn) -> tuple[bool, str]:
    for a, b in _KAPPA_CASES:
        got, problem = call_answer(fn, "my_kappa(a, b)", list(a), list(b))
        if problem:
            return False, problem
        want = kappa(a, b)
        if math.isclose(float(got), want, abs_tol=1e-9):
            continue
        observed = sum(x == y for x, y in zip(a, b)) / len(a)
        if math.isclose(float(got), observed, abs_tol=1e-9):
            return False, ("that is the raw agreement; κ subtracts the agreement expected by chance: "
                           "(p_o - p_e) / (1 - p_e)")
        return False, (f"on a={a}, b={b} yours is {float(got):.4f}, {off(float(got), want)}; p_e = Σ over labels of "
                       "(share of a with that label) × (share of b with it)")
    return True, "κ = (p_o - p_e) / (1 - p_e), and the always-'yes' rater gets 0"


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "08.corpus_perplexity": _corpus_perplexity,
    "08.kappa": _kappa_check,
}
