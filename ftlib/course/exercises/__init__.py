"""Checkers for the notebooks' exercises.

``check(name, answer, **context)`` prints ✓ or ✗ with a hint and returns True/False. A wrong or
missing answer never raises, so a learner's half-done notebook still runs top to bottom; under the
autograder (:data:`GRADING_ENV` set to ``1`` in the kernel's environment, as
:mod:`ftlib.course.cohort` does) it raises :class:`NotPassed` instead, because nbgrader withholds a
checker cell's points only when the cell raises.
Each chapter's checkers live in their own module (``ch05_instruction_tuning``, ...), the helpers
they share in :mod:`.core`; :data:`CHECKS` gathers them all by exercise name (``"05.find_leak"``).
"""
from __future__ import annotations

import os
from typing import Callable

from ftlib.course.exercises import (ch00_welcome, ch01_pretraining, ch02_tokenization, ch03_lora, ch04_qlora,
                                    ch05_instruction_tuning, ch06_rlhf, ch07_dpo, ch08_evaluation,
                                    ch09_deployment, ch10_scaling_out, ch11_capstone)

CHAPTERS = (ch00_welcome, ch01_pretraining, ch02_tokenization, ch03_lora, ch04_qlora, ch05_instruction_tuning,
            ch06_rlhf, ch07_dpo, ch08_evaluation, ch09_deployment, ch10_scaling_out, ch11_capstone)
CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {name: fn for ch in CHAPTERS for name, fn in ch.CHECKS.items()}
GRADING_ENV = "FTLIB_GRADING"


class NotPassed(AssertionError):
    """Raised by :func:`check` under the autograder when an answer is wrong or missing."""


def grading() -> bool:
    """Whether this kernel runs under the autograder (checkers raise instead of returning False)."""
    return os.environ.get(GRADING_ENV) == "1"


def check(name: str, answer, **context) -> bool:
    """Run the checker ``name`` on ``answer``; print the verdict and return it (raise
    :class:`NotPassed` instead of returning False under the autograder)."""
    if name not in CHECKS:
        raise KeyError(f"no exercise named {name!r}; known: {', '.join(sorted(CHECKS))}")
    ok, message = _verdict(name, answer, context)
    print(f"{'✓' if ok else '✗'} {name}: {message}")
    if os.environ.get("FTLIB_RECORDS"):            # under the course runner: its report lists the outcome
        from ftlib.metrics.record import record
        record(f"exercises/{name}", bool(ok), quiet=True)
    if not ok and grading():
        raise NotPassed(f"{name}: {message}")
    return ok


def _verdict(name: str, answer, context: dict) -> tuple[bool, str]:
    if answer is None or answer is ...:
        return False, "not attempted yet. Replace the placeholder and run the cell again."
    try:
        return CHECKS[name](answer, **context)
    except NotImplementedError:  # the stub of a function the learner has not written yet
        return False, "not attempted yet. Write the code where it says YOUR CODE HERE and run the cell again."
    except Exception as e:  # a learner's answer of the wrong type should get a hint, not a traceback
        return False, f"could not check your answer: {type(e).__name__}: {e}"
