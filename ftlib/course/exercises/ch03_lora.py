"""Chapter 03 (LoRA): the exercises' checkers. Each returns ``(ok, hint)``; :func:`ftlib.course.exercises.check`
prints the verdict."""
from __future__ import annotations

from typing import Callable

from ftlib.course.exercises.core import off


def _delta_weight(answer, **context) -> tuple[bool, str]:
    """03.delta_weight: ``answer(A, B, alpha, r)`` returns LoRA's update ``(alpha / r) * B @ A``, shape (out, in)."""
    import torch
    g = torch.Generator().manual_seed(0)
    for n_out, n_in, r, alpha in [(5, 7, 2, 4.0), (6, 3, 1, 1.0), (4, 9, 3, 12.0)]:
        A, B = torch.randn(r, n_in, generator=g), torch.randn(n_out, r, generator=g)
        want = (alpha / r) * B @ A
        got = answer(A.clone(), B.clone(), alpha, r)
        if got is None:
            return False, "your function returns None: replace the placeholder with the formula"
        got = torch.as_tensor(got)
        if got.shape != want.shape:
            hint = " (A @ B is r x r or fails; the update is B @ A)" if got.shape == (r, r) else ""
            return False, f"shape {tuple(got.shape)}, expected (out, in) = {tuple(want.shape)}{hint}"
        if torch.allclose(got, want, atol=1e-5):
            continue
        if torch.allclose(got, B @ A, atol=1e-5):
            return False, "right matrix product, but you forgot the scaling alpha / r"
        if torch.allclose(got, (r / alpha) * B @ A, atol=1e-5):
            return False, "the scaling is upside down: alpha / r, not r / alpha"
        return False, f"for out={n_out}, in={n_in}, r={r}, alpha={alpha} your values differ from (alpha / r) * B @ A"
    return True, "(alpha / r) * B @ A: a rank-r matrix the size of W0, which merge adds to it"


def _trainable_count(answer, *, shapes, r) -> tuple[bool, str]:
    """03.trainable_count: LoRA of rank ``r`` on linear layers of ``(out, in)`` ``shapes`` trains ``r*(in+out)`` each."""
    want = sum(r * (n_in + n_out) for n_out, n_in in shapes)
    answer = int(answer)
    if answer == want:
        return True, f"{len(shapes)} layers x r*(in + out) = {want:,} trainable numbers"
    if answer == sum(n_in * n_out for n_out, n_in in shapes):
        return False, "that is the full-fine-tuning count (in x out per layer); LoRA trains A (r x in) and B (out x r)"
    if answer in (sum(r * n_in for _, n_in in shapes), sum(r * n_out for n_out, _ in shapes)):
        return False, "you counted only one of A (r x in) and B (out x r); LoRA trains both"
    per_layer = {s: r * (s[0] + s[1]) for s in set(shapes)}
    if answer in per_layer.values() or answer == sum(per_layer.values()):
        return False, f"that is one layer's worth; there are {len(shapes)} wrapped layers in total"
    if all(o == i for o, i in shapes) is False and answer == sum(r * 2 * n_in for _, n_in in shapes):
        return False, "not every projection is square: v_proj maps 576 -> 192 (grouped-query attention)"
    return False, f"{answer:,} is {off(answer, want)}: sum r*(in + out) over every wrapped layer"


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "03.delta_weight": _delta_weight,
    "03.trainable_count": _trainable_count,
}
