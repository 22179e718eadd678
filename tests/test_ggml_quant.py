"""Q8_0 and Q4_0 from scratch give the very bytes gguf (llama.cpp's reference in Python) writes."""
import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

from ftlib.cores.ggml_quant import (BITS, dequantize_q4_0, dequantize_q8_0, quantize_q4_0, quantize_q8_0,
                                    roundtrip_error)

FORMATS = {"Q8_0": (quantize_q8_0, dequantize_q8_0, GGMLQuantizationType.Q8_0),
           "Q4_0": (quantize_q4_0, dequantize_q4_0, GGMLQuantizationType.Q4_0)}


def _weights(rows=8, cols=96, seed=0):
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) * 0.05
    w[0, :32] = 0.0                                   # an all-zero block: scale 0, no division by zero
    w[1, 5] = 1.0                                      # an outlier block
    w[2, 40] = -1.0                                    # its largest magnitude negative (Q4_0 keeps the sign)
    w[3, :32] = torch.arange(32) / 64 - 0.25           # values on exact half steps, for the rounding rule
    return w


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_same_bytes_as_gguf_and_same_values_back(fmt):
    ours_q, ours_dq, qtype = FORMATS[fmt]
    w = _weights()
    theirs = quantize(w.numpy(), qtype)                       # (rows, bytes per row)
    mine = ours_q(w)
    assert np.array_equal(mine.numpy().reshape(theirs.shape), theirs)
    back = dequantize(theirs, qtype).reshape(-1)
    assert np.array_equal(ours_dq(mine).numpy(), back)
    assert mine.shape[1] * 8 / 32 == BITS[fmt]                # 8.5 and 4.5 bits per weight


def test_errors_shrink_with_bits_and_torch_rounding_would_differ():
    w = _weights(rows=64, cols=256, seed=1)
    assert 0 < roundtrip_error(w, "Q8_0") < roundtrip_error(w, "Q4_0")
    halves = torch.tensor([0.5, 1.5, 2.5, -0.5, -2.5] + [0.0] * 26 + [127.0])   # scale 1: q = w exactly
    q = quantize_q8_0(halves)[0, 2:].view(torch.int8)[:5].tolist()
    assert q == [1, 2, 3, -1, -3] != torch.round(halves[:5]).int().tolist()      # ggml rounds halves away from 0


def test_a_tensor_that_is_not_whole_blocks_is_refused():
    with pytest.raises(ValueError, match="whole blocks"):
        quantize_q8_0(torch.zeros(33))
