"""Chapter 04 (QLoRA): the exercises' checkers. Each returns ``(ok, hint)``; :func:`ftlib.course.exercises.check`
prints the verdict."""
from __future__ import annotations

from typing import Callable

from ftlib.course.exercises.core import off


def _quantize_block(answer, *, block) -> tuple[bool, str]:
    """04.quantize_block: ``answer`` is the list of NF4 codes (0..15) of one ``block`` of weights."""
    import torch
    from ftlib.cores.nf4 import nf4_levels, quantize_blockwise
    block = torch.as_tensor(block, dtype=torch.float32).flatten()
    expected, absmax = quantize_blockwise(block, nf4_levels(), blocksize=block.numel())
    expected = expected.flatten().tolist()
    answer = [int(a) for a in answer]
    if answer == expected:
        return True, f"absmax {absmax.item():.4f}; every weight coded to its nearest NF4 level"
    if len(answer) != len(expected):
        return False, f"one code per weight: the block has {len(expected)} weights, you gave {len(answer)} codes"
    if answer == [15 - c for c in expected]:
        return False, "upside down: code 0 is the most negative level (-1.0), code 15 is +1.0"
    wrong = [i for i, (a, b) in enumerate(zip(answer, expected)) if a != b]
    i = wrong[0]
    return False, (f"{len(wrong)} code(s) wrong; weight {i} = {block[i].item():.4f}, divided by the block's absmax, "
                   f"is {(block[i] / absmax).item():+.4f}: your code {answer[i]} is not the NF4 level nearest to it")


def _bits_per_param(answer, *, blocksize, dq_blocksize) -> tuple[bool, str]:
    """04.bits_per_param: storage per weight with double quantization (8-bit absmax, fp32 second level)."""
    expected = 4 + 8 / blocksize + 32 / (blocksize * dq_blocksize)
    if abs(float(answer) - expected) < 1e-3:
        return True, f"4 + 8/{blocksize} + 32/({blocksize}·{dq_blocksize}) = {expected:.4f} bits per weight"
    if abs(float(answer) - (4 + 32 / blocksize)) < 1e-3:
        return False, "that is without double quantization: the absmax constants are stored in 8 bits, not 32"
    if abs(float(answer) - (4 + 8 / blocksize)) < 1e-3:
        return False, "almost: each block of absmax values also needs one fp32 constant of its own"
    return False, (f"{float(answer):.4f} is {off(float(answer), expected)}: 4 bits + the 8-bit absmax per block "
                   "+ the fp32 constant per block of absmax values")


def _qlora_weights_gb(answer, *, shape) -> tuple[bool, str]:
    """04.qlora_weights_gb: GB (1e9 bytes) of a QLoRA base: linear layers at 4.127 bits, the rest bf16."""
    from ftlib.cores.memory import training_memory
    expected = training_memory(shape, "qlora", weight_bytes=2)["weights"] / 1e9
    if abs(float(answer) - expected) <= 0.02 * expected:
        return True, f"{expected:.2f} GB: linear layers in NF4, embeddings and norms in bf16"
    all4 = shape.n_params * 4.127 / 8 / 1e9
    if abs(float(answer) - all4) <= 0.02 * all4:
        return False, "you quantized every parameter: the embeddings (and an untied lm_head) stay in bf16"
    return False, (f"{float(answer):.2f} GB is {off(float(answer), expected)}: linear layers at 4.127 bits, the other "
                   "parameters in bf16 (use shape.linear_params and shape.n_params)")


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "04.quantize_block": _quantize_block,
    "04.bits_per_param": _bits_per_param,
    "04.qlora_weights_gb": _qlora_weights_gb,
}
