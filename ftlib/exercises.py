"""Checkers for the notebooks' exercises.

``check(name, answer, **context)`` prints ✓ or ✗ with a hint and returns True/False. A wrong or
missing answer never raises, so a learner's half-done notebook still runs top to bottom.
Each chapter adds its checkers to :data:`CHECKS`.
"""
from __future__ import annotations

from typing import Callable


def _chat_prompt(answer, *, tokenizer, messages) -> tuple[bool, str]:
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if answer == expected:
        return True, "your string is exactly what the tokenizer's chat template renders"
    for i, (a, b) in enumerate(zip(answer, expected)):
        if a != b:
            return False, (f"first difference at character {i}: you wrote {answer[i:i+20]!r}, "
                           f"the template gives {expected[i:i+20]!r}")
    return False, f"lengths differ: yours {len(answer)} chars, the template's {len(expected)}"


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "00.chat_prompt": _chat_prompt,
}


def check(name: str, answer, **context) -> bool:
    """Run the checker ``name`` on ``answer``; print the verdict and return it."""
    if name not in CHECKS:
        raise KeyError(f"no exercise named {name!r}; known: {', '.join(sorted(CHECKS))}")
    if answer is None or answer is ...:
        print(f"✗ {name}: not attempted yet. Replace the placeholder and run the cell again.")
        return False
    try:
        ok, message = CHECKS[name](answer, **context)
    except Exception as e:  # a learner's answer of the wrong type should get a hint, not a traceback
        ok, message = False, f"could not check your answer: {type(e).__name__}: {e}"
    print(f"{'✓' if ok else '✗'} {name}: {message}")
    return ok
