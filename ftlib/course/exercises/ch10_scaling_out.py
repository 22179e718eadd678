"""Chapter 10 (scaling out): the exercises' checkers. Each returns ``(ok, hint)``; :func:`ftlib.course.exercises.check`
prints the verdict."""
from __future__ import annotations

from typing import Callable

from ftlib.course.exercises.core import call_answer, off

# (parameters, ranks, stage): a 7B model on 8 GPUs at every stage, a 70B on 64 at stage 3, one GPU at stage 2
_ZERO_CASES = [(7e9, 8, 0), (7e9, 8, 1), (7e9, 8, 2), (7e9, 8, 3), (70e9, 64, 3), (1.5e9, 1, 2)]
_KINDS = ("params", "grads", "optimizer")


def _zero_bytes(answer, **context) -> tuple[bool, str]:
    """10.zero_bytes: ``answer(n_params, n_ranks, stage)`` is ``{"params", "grads", "optimizer"}`` in bytes per
    rank for mixed-precision Adam (2 + 2 + 12 bytes per parameter) under ZeRO ``stage``
    (:func:`ftlib.cores.memory.zero_state_bytes`)."""
    from ftlib.cores.memory import zero_state_bytes
    for psi, n, stage in _ZERO_CASES:
        got, problem = call_answer(answer, "my_zero_bytes(n_params, n_ranks, stage)", psi, n, stage)
        if problem:
            return False, problem
        if not isinstance(got, dict) or set(got) != set(_KINDS):
            return False, f"return a dict with exactly the keys {', '.join(_KINDS)}; you return {type(got).__name__} " + (
                f"with keys {sorted(got)}" if isinstance(got, dict) else "")
        want = zero_state_bytes(psi, n, stage)
        for kind in _KINDS:
            value = got[kind]
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return False, f"{kind}: return a number of bytes; you return a {type(value).__name__}"
            if abs(value - want[kind]) <= 1e-6 * want[kind]:
                continue
            where = f"{psi / 1e9:g}B parameters on {n} rank{'s' if n > 1 else ''}, stage {stage}, {kind}"
            sharded = want[kind] < zero_state_bytes(psi, 1, stage)[kind]
            if abs(value * 1e9 - want[kind]) <= 1e-6 * want[kind] or abs(value * 2**30 - want[kind]) <= 1e-6 * want[kind]:
                return False, f"{where}: the answer is in bytes, not GB"
            if sharded and abs(value / n - want[kind]) <= 1e-6 * want[kind]:
                return False, f"{where}: at stage {stage} this state is sharded: each rank keeps 1/{n} of it"
            if not sharded and n > 1 and abs(value * n - want[kind]) <= 1e-6 * want[kind]:
                return False, (f"{where}: stage {stage} does not shard this state yet (stage 1 shards the optimizer, "
                               "2 adds the gradients, 3 the weights)")
            return False, f"{where}: your value is {off(value, want[kind])}"
    return True, "bytes per rank at every stage: ZeRO-3 divides all 16 bytes per parameter by the number of ranks"


# What each step moves between ranks, and the collective that moves it.
COLLECTIVE_STEPS = ("ddp gradients", "zero2 gradients", "zero3 weights before a layer runs", "zero3 gradients",
                    "zero1 updated weights")
COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "broadcast")
_WANT = {"ddp gradients": "all-reduce", "zero2 gradients": "reduce-scatter",
         "zero3 weights before a layer runs": "all-gather", "zero3 gradients": "reduce-scatter",
         "zero1 updated weights": "all-gather"}


def _collectives(answer, **context) -> tuple[bool, str]:
    """10.collectives: ``answer`` maps each of :data:`COLLECTIVE_STEPS` to one of :data:`COLLECTIVES`."""
    if not isinstance(answer, dict):
        return False, f"make a dict from each step to a collective's name; you have a {type(answer).__name__}"
    missing = [s for s in COLLECTIVE_STEPS if s not in answer]
    if missing:
        return False, f"name a collective for every step; missing: {', '.join(missing)}"
    for step in COLLECTIVE_STEPS:
        got = answer[step]
        if got not in COLLECTIVES:
            return False, f"{step!r}: {got!r} is not one of {', '.join(COLLECTIVES)}"
    wrong = [s for s in COLLECTIVE_STEPS if answer[s] != _WANT[s]]
    if not wrong:
        return True, ("all-reduce = reduce-scatter + all-gather: ZeRO splits it, each rank keeping only the "
                      "reduced shard it updates, then gathering the weights it needs")
    step = wrong[0]
    hints = {"ddp gradients": "every DDP rank needs the whole averaged gradient, on every rank",
             "zero2 gradients": "a ZeRO-2 rank needs the summed gradient only for the shard it updates",
             "zero3 weights before a layer runs": "a layer's weights are spread over the ranks; each rank needs all of them for a moment",
             "zero3 gradients": "after the backward pass each rank keeps the summed gradient of its own shard only",
             "zero1 updated weights": "each rank updated only its shard of the weights; every rank needs all of them for the next step"}
    return False, f"{len(wrong)} of {len(COLLECTIVE_STEPS)} wrong; look again at {step!r}: {hints[step]}"


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "10.zero_bytes": _zero_bytes,
    "10.collectives": _collectives,
}
