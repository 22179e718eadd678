"""GGUF's two simplest block quantizations, from scratch: Q8_0 and Q4_0 (llama.cpp's ``ggml-quants.c``).

Both cut a row of weights into blocks of 32 and store, per block, one fp16 scale ``d`` and 32 small
integers ``q`` with ``w ≈ d · q``:

- **Q8_0**: ``d = absmax / 127``, ``q = round(w / d)`` in -127..127 (int8): 34 bytes per 32 weights,
  8.5 bits per weight.
- **Q4_0**: ``d = m / -8`` where ``m`` is the block's value of largest magnitude (sign kept), so that
  value maps to -8; ``q = trunc(w / d + 8.5)`` clipped to 0..15 and stored as 4-bit nibbles (the
  block's first 16 values in the low nibbles, the next 16 in the high ones), read back as ``q - 8``:
  18 bytes per 32 weights, 4.5 bits per weight.

The byte layout is GGUF's (``d`` first, little-endian fp16), so :func:`quantize_q8_0` and
:func:`quantize_q4_0` give the very bytes of ``gguf.quants.quantize`` (a test checks it). Unlike
NF4 (chapter 04), the levels are evenly spaced and the scale is per block of 32, not 64.
"""
from __future__ import annotations

import torch

BLOCK = 32                                      # weights per block, both formats
BITS = {"Q8_0": (2 + BLOCK) * 8 / BLOCK, "Q4_0": (2 + BLOCK // 2) * 8 / BLOCK, "F16": 16.0, "F32": 32.0}


def _blocks(w: torch.Tensor) -> torch.Tensor:
    w = w.detach().to(torch.float32).reshape(-1)
    if w.numel() % BLOCK:
        raise ValueError(f"{w.numel()} weights are not whole blocks of {BLOCK}; GGUF keeps such tensors in F32/F16")
    return w.reshape(-1, BLOCK)


def _scale_bytes(d: torch.Tensor) -> torch.Tensor:
    """fp16 scales as their two little-endian bytes, one row per block."""
    return d.to(torch.float16).view(torch.uint8).reshape(-1, 2)


def _round_half_away(x: torch.Tensor) -> torch.Tensor:
    """ggml's ``roundf``: halves away from zero (``torch.round`` rounds them to even)."""
    a = x.abs()
    whole = torch.floor(a)
    return torch.sign(x) * (whole + torch.floor(2 * (a - whole)))


def quantize_q8_0(w: torch.Tensor) -> torch.Tensor:
    """``w`` (any shape, a multiple of 32 weights) -> uint8 (n_blocks, 34): scale, then 32 int8."""
    blocks = _blocks(w)
    d = blocks.abs().amax(dim=1, keepdim=True) / 127
    inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
    q = _round_half_away(blocks * inv).to(torch.int8).view(torch.uint8)
    return torch.cat([_scale_bytes(d), q], dim=1)


def dequantize_q8_0(data: torch.Tensor) -> torch.Tensor:
    """uint8 (n_blocks, 34) -> float32 (n_blocks * 32,)."""
    d = data[:, :2].contiguous().view(torch.float16).to(torch.float32)
    q = data[:, 2:].contiguous().view(torch.int8).to(torch.float32)
    return (d * q).reshape(-1)


def quantize_q4_0(w: torch.Tensor) -> torch.Tensor:
    """``w`` (a multiple of 32 weights) -> uint8 (n_blocks, 18): scale, then 16 bytes of nibbles."""
    blocks = _blocks(w)
    m = blocks.gather(1, blocks.abs().argmax(dim=1, keepdim=True))     # signed value of largest magnitude
    d = m / -8
    inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
    q = torch.trunc(blocks * inv + 8.5).clamp(0, 15).to(torch.uint8)
    packed = q[:, : BLOCK // 2] | (q[:, BLOCK // 2:] << 4)
    return torch.cat([_scale_bytes(d), packed], dim=1)


def dequantize_q4_0(data: torch.Tensor) -> torch.Tensor:
    """uint8 (n_blocks, 18) -> float32 (n_blocks * 32,)."""
    d = data[:, :2].contiguous().view(torch.float16).to(torch.float32)
    packed = data[:, 2:]
    q = torch.cat([packed & 0x0F, packed >> 4], dim=1).to(torch.float32) - 8
    return (d * q).reshape(-1)


def roundtrip_error(w: torch.Tensor, fmt: str) -> float:
    """Mean absolute error of ``w`` after quantizing to ``fmt`` ("Q8_0" or "Q4_0") and back."""
    quant, dequant = {"Q8_0": (quantize_q8_0, dequantize_q8_0), "Q4_0": (quantize_q4_0, dequantize_q4_0)}[fmt]
    flat = w.detach().to(torch.float32).reshape(-1)
    return (dequant(quant(flat)) - flat).abs().mean().item()
