"""Chapter 01 (pretraining): the exercises' checkers. Each returns ``(ok, hint)``; :func:`ftlib.course.exercises.check`
prints the verdict."""
from __future__ import annotations

from typing import Callable

from ftlib.course.exercises.core import off


def _warmup_cosine(answer, **context) -> tuple[bool, str]:
    """``answer(step, steps, lr, warmup_steps, min_lr_ratio)`` must match :func:`ftlib.engine.train.lr_at`."""
    from ftlib.engine.train import TrainConfig, lr_at
    for steps, lr, warmup, floor in [(100, 1.0, 10, 0.1), (50, 3e-4, 5, 0.1), (30, 2e-3, 1, 0.0)]:
        cfg = TrainConfig(steps=steps, lr=lr, warmup_steps=warmup, min_lr_ratio=floor)
        for step in range(steps + 1):
            got, want = answer(step, steps, lr, warmup, floor), lr_at(step, cfg)
            if abs(got - want) > 1e-9 * max(1.0, lr):
                return False, _schedule_hint(step, steps, lr, warmup, floor, got, want)
    return True, "matches ftlib.engine.train.lr_at on three schedules, every step"


def _schedule_hint(step, steps, lr, warmup, floor, got, want) -> str:
    """What is wrong with a schedule at its first wrong step, without the right value."""
    case = f"steps={steps}, lr={lr}, warmup={warmup}, min_lr_ratio={floor}: at step {step}"
    if step < warmup:
        if abs(got - lr * step / warmup) < 1e-12 * max(1.0, lr):
            return f"{case} (warmup) you start from 0: step 0 should already get lr / warmup_steps, step warmup-1 the full lr"
        return f"{case} (warmup) your value {got:.6g} is {off(got, want)}: warmup rises in a straight line to lr"
    if step == steps and abs(got) < 1e-12 and floor > 0:
        return f"{case} (the last step) you decay to 0; the cosine ends at min_lr_ratio * lr"
    return f"{case} (cosine decay) your value {got:.6g} is {off(got, want)}: half a cosine from lr to min_lr_ratio * lr"


_LINE_CASES = ["", "one line", "a\na\na\nb", "a\n\n  a  \nb\n", "x\ny\nz", "buy now\n" * 5 + "ok",
               "click here\nclick here\nother\nother\nother"]


def _repeated_line_ratio(answer, **context) -> tuple[bool, str]:
    """``answer(text)`` must match :func:`ftlib.cores.cleaning.repeated_line_ratio` (blank lines ignored)."""
    from ftlib.cores.cleaning import repeated_line_ratio
    for text in _LINE_CASES:
        got, want = answer(text), repeated_line_ratio(text)
        if abs(got - want) > 1e-9:
            lines = text.splitlines()
            raw = (len(lines) - len(set(lines))) / max(1, len(lines))
            if abs(got - raw) < 1e-9:
                return False, f"for {text!r} you give {got:.4f}: strip each line and skip blank ones before counting"
            return False, f"for {text!r} you give {got:.4f}, which is {off(got, want)} (repeats of an earlier line / lines)"
    return True, f"matches ftlib.cores.cleaning.repeated_line_ratio on {len(_LINE_CASES)} texts"


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "01.warmup_cosine": _warmup_cosine,
    "01.repeated_line_ratio": _repeated_line_ratio,
}
