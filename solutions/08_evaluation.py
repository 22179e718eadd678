"""Chapter 08 · solutions (instructors). Learners see these cells with the solution stubbed out;
`python -m ftlib.course solutions` writes the notebooks with them filled in.

The checker cell after each exercise (tagged `checker`; import check once, in the first one):
    from ftlib.course.exercises import check

    check("08.corpus_perplexity", my_corpus_perplexity);
    check("08.kappa", my_kappa);
"""

# %% 08.corpus_perplexity
import math


def my_corpus_perplexity(nlls_per_text):
    """Perplexity of a corpus from per-token NLLs (nats), one list per text -> a float.

    Every token must weigh the same, whichever text it is in.
    """
    ### BEGIN SOLUTION
    total = sum(sum(text) for text in nlls_per_text)
    tokens = sum(len(text) for text in nlls_per_text)
    return math.exp(total / tokens)
    ### END SOLUTION

# %% 08.kappa
from collections import Counter


def my_kappa(a, b):
    """Cohen's κ of two raters' labels on the same items (lists of equal length) -> a float."""
    ### BEGIN SOLUTION
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    return (observed - expected) / (1 - expected)
    ### END SOLUTION
