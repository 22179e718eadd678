"""What every exercise checker shares: turning a learner's answer into a result or a hint.

A checker takes the learner's answer (a value or a function) and returns ``(ok, hint)``; these
helpers give the hints that do not depend on the exercise.
"""
from __future__ import annotations


def id_set_problem(answer, rows, *, source: str, noun: str = "row") -> str | None:
    """Why ``answer`` is not a set of ids of ``rows`` (None if it is): the shape every "find the
    rows" exercise asks for. ``source`` is the learner's name for the rows, used in the hint."""
    if not isinstance(answer, (set, frozenset, list, tuple)):
        return f"expected a set of {noun} ids like {{{rows[0]['id']!r}, ...}}; you gave a {type(answer).__name__}"
    if any(isinstance(a, dict) for a in answer):
        return f"collect the rows' ids, not the rows: {{r['id'] for r in {source} if ...}}"
    ids = {r["id"] for r in rows}
    unknown = [a for a in answer if a not in ids]
    if unknown:
        return f"{unknown[0]!r} is not the id of a {noun} (they look like {rows[0]['id']!r})"
    return None


def off(got: float, want: float) -> str:
    """How a wrong number misses, without saying what the right one is: "too high" or "too low"."""
    return "too high" if got > want else "too low"


def call_answer(fn, what: str, *args):
    """``(result, None)``, or ``(None, hint)`` when ``fn`` is not a function or raises (a stub re-raises)."""
    if not callable(fn):
        return None, f"expected a function {what}; you gave a {type(fn).__name__}"
    try:
        result = fn(*args)
    except NotImplementedError:
        raise
    except Exception as e:
        return None, f"your function raised {type(e).__name__}: {e}"
    if result is None:
        return None, "your function returns None: replace the placeholder with your code"
    return result, None
