"""Chapter 08's exercise checkers: they accept the right answer and give a useful hint otherwise."""
import math
from collections import Counter

import pytest

from ftlib.course.exercises import check


def corpus_ppl(nlls):
    flat = [x for t in nlls for x in t]
    return math.exp(sum(flat) / len(flat))


def kappa(a, b):
    n, ca, cb = len(a), Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in ca) / n ** 2
    return (sum(x == y for x, y in zip(a, b)) / n - pe) / (1 - pe)


@pytest.mark.parametrize("wrong, hint", [
    (lambda nlls: sum(math.exp(sum(t) / len(t)) for t in nlls) / len(nlls), "mean of per-text perplexities"),
    (lambda nlls: math.exp(sum(sum(t) / len(t) for t in nlls) / len(nlls)), "each text's mean NLL"),
    (lambda nlls: sum(map(sum, nlls)) / sum(map(len, nlls)), "perplexity is exp of it"),
    (lambda nlls: math.exp(sum(map(sum, nlls))), "too high: exp(total NLL"),
    (lambda nlls: None, "returns None"),
    (3.0, "expected a function"),
])
def test_corpus_perplexity_checker(wrong, hint, capsys):
    assert check("08.corpus_perplexity", corpus_ppl)
    assert not check("08.corpus_perplexity", wrong)
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda a, b: sum(x == y for x, y in zip(a, b)) / len(a), "raw agreement"),
    (lambda a, b: 1 - kappa(a, b), "; p_e = Σ over labels"),
    (lambda a, b: 1 / 0, "raised ZeroDivisionError"),
])
def test_kappa_checker(wrong, hint, capsys):
    assert check("08.kappa", kappa)
    assert not check("08.kappa", wrong)
    assert hint in capsys.readouterr().out
