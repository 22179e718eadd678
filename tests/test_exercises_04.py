"""Chapter 04's checkers accept the right answer and reject the typical wrong ones with a hint."""
import torch

from ftlib.course.exercises import CHECKS, check
from ftlib.cores.memory import LLAMA2_7B
from ftlib.cores.nf4 import nf4_levels, quantize_blockwise

BLOCK = [0.02, -0.01, 0.005, 0.0, -0.04, 0.013, 0.031, -0.022]


def test_quantize_block():
    right = quantize_blockwise(torch.tensor(BLOCK), nf4_levels(), blocksize=8)[0].flatten().tolist()
    assert right[4] == 0                                      # -0.04 is the absmax: level -1.0
    assert CHECKS["04.quantize_block"](right, block=BLOCK)[0]
    ok, hint = CHECKS["04.quantize_block"]([15 - c for c in right], block=BLOCK)
    assert not ok and "upside down" in hint
    wrong = list(right)
    wrong[1] = (wrong[1] + 1) % 16
    ok, hint = CHECKS["04.quantize_block"](wrong, block=BLOCK)
    assert not ok and "weight 1" in hint
    assert not check("04.quantize_block", right[:3], block=BLOCK)
    assert not check("04.quantize_block", None, block=BLOCK)


def test_bits_per_param():
    assert CHECKS["04.bits_per_param"](4 + 8 / 64 + 32 / (64 * 256), blocksize=64, dq_blocksize=256)[0]
    ok, hint = CHECKS["04.bits_per_param"](4.5, blocksize=64, dq_blocksize=256)
    assert not ok and "without double quantization" in hint
    assert not CHECKS["04.bits_per_param"](4.125, blocksize=64, dq_blocksize=256)[0]


def test_qlora_weights_gb():
    assert CHECKS["04.qlora_weights_gb"](3.87, shape=LLAMA2_7B)[0]
    ok, hint = CHECKS["04.qlora_weights_gb"](LLAMA2_7B.n_params * 4.127 / 8 / 1e9, shape=LLAMA2_7B)
    assert not ok and "embeddings" in hint
    assert not check("04.qlora_weights_gb", "lots", shape=LLAMA2_7B)
