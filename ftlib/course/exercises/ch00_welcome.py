"""Chapter 00 (welcome): the exercises' checkers. Each returns ``(ok, hint)``; :func:`ftlib.course.exercises.check`
prints the verdict."""
from __future__ import annotations

from typing import Callable


def _chat_prompt(answer, *, tokenizer, messages) -> tuple[bool, str]:
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if answer == expected:
        return True, "your string is exactly what the tokenizer's chat template renders"
    if not isinstance(answer, str):
        return False, f"expected the rendered prompt as one string; you gave a {type(answer).__name__}"
    if expected.startswith(answer):
        return False, ("your string is the start of the prompt, but it stops early: did you add the assistant's "
                       "header at the end (add_generation_prompt=True)?")
    if answer.startswith(expected):
        return False, "your string goes on after the prompt ends: it should stop right after the assistant's header"
    i = next((i for i, (a, b) in enumerate(zip(answer, expected)) if a != b), min(len(answer), len(expected)))
    line = answer[:i].count("\n") + 1
    return False, (f"first difference at character {i} (line {line}), where you wrote {answer[i:i+20]!r}: "
                   "compare special tokens, roles and newlines with the template")


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "00.chat_prompt": _chat_prompt,
}
