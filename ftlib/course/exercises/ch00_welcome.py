"""Chapter 00 (welcome): the exercises' checkers. Each returns ``(ok, hint)``; :func:`ftlib.course.exercises.check`
prints the verdict."""
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
