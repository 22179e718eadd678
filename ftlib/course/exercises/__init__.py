"""Checkers for the notebooks' exercises.

``check(name, answer, **context)`` prints ✓ or ✗ with a hint and returns True/False. A wrong or
missing answer never raises, so a learner's half-done notebook still runs top to bottom.
Each chapter's checkers live in their own module (``ch05_instruction_tuning``, ...), the helpers
they share in :mod:`.core`; :data:`CHECKS` gathers them all by exercise name (``"05.find_leak"``).
"""
from __future__ import annotations

from typing import Callable

from ftlib.course.exercises import (ch00_welcome, ch01_pretraining, ch02_tokenization, ch03_lora, ch04_qlora,
                                    ch05_instruction_tuning, ch06_rlhf, ch07_dpo, ch08_evaluation)

CHAPTERS = (ch00_welcome, ch01_pretraining, ch02_tokenization, ch03_lora, ch04_qlora, ch05_instruction_tuning,
            ch06_rlhf, ch07_dpo, ch08_evaluation)
CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {name: fn for ch in CHAPTERS for name, fn in ch.CHECKS.items()}


def check(name: str, answer, **context) -> bool:
    """Run the checker ``name`` on ``answer``; print the verdict and return it."""
    if name not in CHECKS:
        raise KeyError(f"no exercise named {name!r}; known: {', '.join(sorted(CHECKS))}")
    if answer is None or answer is ...:
        print(f"✗ {name}: not attempted yet. Replace the placeholder and run the cell again.")
        return False
    try:
        ok, message = CHECKS[name](answer, **context)
    except NotImplementedError:  # the stub of a function the learner has not written yet
        print(f"✗ {name}: not attempted yet. Write the code where it says YOUR CODE HERE and run the cell again.")
        return False
    except Exception as e:  # a learner's answer of the wrong type should get a hint, not a traceback
        ok, message = False, f"could not check your answer: {type(e).__name__}: {e}"
    print(f"{'✓' if ok else '✗'} {name}: {message}")
    return ok
