"""4-bit NormalFloat (NF4), FP4 and int4 from scratch, double quantization, and an NF4 linear layer.

QLoRA (Dettmers et al., 2023) stores a frozen base model in 4 bits and trains LoRA adapters on top:

1. **Levels.** NF4 puts its 16 levels at quantiles of a standard normal, because trained weights are
   roughly normal: each level is then used about equally often. One level is exactly 0, so the
   negative half has 7 levels and the positive half 8 (the asymmetry of the paper's §3).
2. **Blockwise absmax.** Each block of 64 consecutive weights is divided by its largest magnitude
   (``absmax``), so it lies in [-1, 1]; each weight becomes the index (0..15) of the nearest level.
3. **Double quantization.** The fp32 absmax costs 32/64 = 0.5 bits per weight. Quantizing the
   absmax values themselves to 8 bits in blocks of 256 cuts that to 8/64 + 32/(64·256) ≈ 0.127.
4. **NF4Linear.** The layer keeps the packed codes; ``forward`` dequantizes to the compute dtype
   and multiplies. :func:`nf4_lora_model` wraps each one in :class:`ftlib.cores.lora.LoRALinear`, which
   adds the trainable path ``(alpha / r) · B A x``: that is QLoRA.
5. **bitsandbytes.** :func:`import_bitsandbytes` imports it with one harmless CPU hint silenced;
   :func:`compare_with_bitsandbytes` checks a weight shape against its kernels, code for code.

>>> levels = nf4_levels()
>>> [round(v, 4) for v in levels[[0, 7, 8, 15]].tolist()]
[-1.0, 0.0, 0.0796, 1.0]
>>> w = torch.tensor([0.5, -1.0, 0.1, 0.0])
>>> codes, absmax = quantize_blockwise(w, levels, blocksize=4)
>>> codes.tolist(), absmax.tolist()
([[12, 0, 8, 7]], [1.0])
"""
from __future__ import annotations

import math

import torch
from torch import nn

BLOCKSIZE = 64        # weights per absmax block (QLoRA and bitsandbytes' default)
DQ_BLOCKSIZE = 256    # absmax values per block in double quantization


# ---------------------------------------------------------------------------------------------
# 1. The code books
# ---------------------------------------------------------------------------------------------
def nf4_levels() -> torch.Tensor:
    """The 16 NF4 levels, ascending, in [-1, 1], with an exact 0 (QLoRA paper, §3 and appendix).

    Negative half: 7 quantiles of N(0, 1) from probability ``1 - offset`` to 0.5 (0.5 dropped);
    positive half: 8 quantiles from 0.5 to ``offset``; then each half is scaled so its end is ±1.
    ``offset`` is the midpoint between the outermost quantile of a 15- and of a 16-level grid,
    ``(1 - 1/30 + 1 - 1/32) / 2 = 0.9677``: a quantile of exactly 1 would be infinite.

    >>> [round(v, 4) for v in nf4_levels()[:3].tolist()]
    [-1.0, -0.6962, -0.5251]
    """
    offset = 0.5 * ((1 - 1 / (2 * 15)) + (1 - 1 / (2 * 16)))
    p_pos = torch.linspace(0.5, offset, 9, dtype=torch.float64)[1:]          # 8 positive
    p_neg = torch.linspace(0.5, offset, 8, dtype=torch.float64)[1:]          # 7 negative
    pos, neg = torch.special.ndtri(p_pos), -torch.special.ndtri(p_neg)
    levels = torch.cat([neg / neg.abs().max(), torch.zeros(1, dtype=torch.float64), pos / pos.max()])
    return levels.sort().values.float()


def fp4_levels() -> torch.Tensor:
    """bitsandbytes' FP4 (1 sign, 2 exponent, 1 mantissa bit), indexed by the 4-bit code, max = 1.

    Code ``c``: sign ``c >> 3``, exponent ``e = (c >> 1) & 3``, mantissa ``m = c & 1``. Magnitude
    ``2**(4 - e) * (1 + m/2)`` for e > 0, and ``m / 16`` (subnormal) for e = 0, then divided by 12.
    Not sorted: the index is the bit pattern, as bitsandbytes stores it.

    >>> [round(v, 4) for v in fp4_levels()[:4].tolist()]
    [0.0, 0.0052, 0.6667, 1.0]
    """
    values = []
    for c in range(16):
        sign, e, m = c >> 3, (c >> 1) & 3, c & 1
        mag = m / 16 if e == 0 else 2.0 ** (4 - e) * (1 + m / 2)
        values.append(-mag / 12 if sign else mag / 12)
    return torch.tensor(values)


def int4_levels() -> torch.Tensor:
    """Symmetric int4: the 15 evenly spaced levels k/7 for k = -7..7 (code 15 unused).

    >>> int4_levels()[[0, 7, 14]].tolist()
    [-1.0, 0.0, 1.0]
    """
    return torch.cat([torch.arange(-7, 8) / 7, torch.tensor([0.0])])


CODEBOOKS = {"nf4": nf4_levels, "fp4": fp4_levels, "int4": int4_levels}


# ---------------------------------------------------------------------------------------------
# 2. Blockwise absmax quantization
# ---------------------------------------------------------------------------------------------
def nearest_level(x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Index of the nearest entry of ``levels`` (any order) for each element of ``x`` (in [-1, 1]).

    >>> nearest_level(torch.tensor([0.9, -0.05, 0.04]), nf4_levels()).tolist()   # 0.04 is past 0.0398
    [15, 6, 8]
    """
    order = levels.argsort()
    s = levels[order]
    mid = (s[1:] + s[:-1]) / 2                                  # decision boundaries
    idx = torch.bucketize(x.float().contiguous(), mid.to(x.device), out_int32=True)
    if torch.equal(order, torch.arange(len(levels))):           # already sorted (nf4, int4)
        return idx.to(torch.uint8)
    return order.to(torch.uint8).to(x.device)[idx]


def quantize_blockwise(w: torch.Tensor, levels: torch.Tensor, blocksize: int = BLOCKSIZE):
    """Flatten ``w``, cut it into blocks of ``blocksize`` and code each block against ``levels``.

    Returns ``(codes, absmax)``: codes (n_blocks, blocksize) uint8 in 0..15, absmax (n_blocks,) fp32.
    The last block is zero-padded. See the module docstring for an example.
    """
    flat = w.detach().float().flatten()
    pad = (-flat.numel()) % blocksize
    blocks = torch.nn.functional.pad(flat, (0, pad)).view(-1, blocksize)   # (n_blocks, blocksize)
    absmax = blocks.abs().amax(dim=1)                                      # (n_blocks,)
    scaled = blocks / absmax.clamp_min(1e-12)[:, None]                     # in [-1, 1]
    return nearest_level(scaled, levels), absmax


def dequantize_blockwise(codes: torch.Tensor, absmax: torch.Tensor, levels: torch.Tensor,
                         shape: torch.Size | tuple, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Inverse of :func:`quantize_blockwise`: ``levels[codes] * absmax``, cropped and reshaped.

    >>> codes, absmax = quantize_blockwise(torch.tensor([0.5, -1.0, 0.1, 0.0]), nf4_levels(), 4)
    >>> [round(v, 3) for v in dequantize_blockwise(codes, absmax, nf4_levels(), (4,)).tolist()]
    [0.441, -1.0, 0.08, 0.0]
    """
    values = levels.to(absmax.device)[codes.long()] * absmax[:, None]      # (n_blocks, blocksize)
    n = math.prod(shape)
    return values.flatten()[:n].view(shape).to(dtype)


def quantize_dequantize(w: torch.Tensor, kind: str = "nf4", blocksize: int = BLOCKSIZE) -> torch.Tensor:
    """Round trip through 4 bits (``kind`` = nf4, fp4 or int4): what the model computes with."""
    levels = CODEBOOKS[kind]()
    codes, absmax = quantize_blockwise(w, levels, blocksize)
    return dequantize_blockwise(codes, absmax, levels, w.shape, w.dtype)


def pack_4bit(codes: torch.Tensor) -> torch.Tensor:
    """Two codes per byte, the first in the high nibble (bitsandbytes' order).

    >>> pack_4bit(torch.tensor([1, 2, 15, 0], dtype=torch.uint8)).tolist()
    [18, 240]
    """
    flat = codes.flatten().to(torch.uint8)
    if flat.numel() % 2:
        flat = torch.cat([flat, flat.new_zeros(1)])
    return (flat[0::2] << 4) | flat[1::2]


def unpack_4bit(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`pack_4bit`: (n,) bytes -> (2n,) codes.

    >>> unpack_4bit(torch.tensor([18, 240], dtype=torch.uint8)).tolist()
    [1, 2, 15, 0]
    """
    flat = packed.flatten()
    return torch.stack([flat >> 4, flat & 15], dim=1).flatten()


# ---------------------------------------------------------------------------------------------
# 3. Double quantization of the absmax constants
# ---------------------------------------------------------------------------------------------
def double_quantize(absmax: torch.Tensor, blocksize: int = DQ_BLOCKSIZE):
    """Quantize the absmax values to int8 in blocks of ``blocksize``, around their mean.

    Returns ``(q, scale, offset)``: q (n_blocks2, blocksize) int8, scale (n_blocks2,) fp32, offset
    a float. (bitsandbytes uses an 8-bit *dynamic* float code instead of int8; same idea, same bits.)

    >>> q, scale, offset = double_quantize(torch.tensor([1.0, 2.0, 3.0]), blocksize=4)
    >>> q.tolist(), scale.tolist(), offset
    ([[-127, 0, 127, 0]], [1.0], 2.0)
    """
    offset = absmax.mean().item()
    centered = absmax.float() - offset                     # symmetric around 0: uses all 8 bits
    pad = (-centered.numel()) % blocksize
    blocks = torch.nn.functional.pad(centered, (0, pad)).view(-1, blocksize)
    scale = blocks.abs().amax(dim=1).clamp_min(1e-12)
    q = torch.round(blocks / scale[:, None] * 127).to(torch.int8)
    return q, scale, offset


def double_dequantize(q: torch.Tensor, scale: torch.Tensor, offset: float, n: int) -> torch.Tensor:
    """Inverse of :func:`double_quantize`: the ``n`` absmax values, approximately."""
    return (q.float() / 127 * scale[:, None]).flatten()[:n] + offset


def bits_per_parameter(n_params: int, blocksize: int = BLOCKSIZE, double_quant: bool = True,
                       dq_blocksize: int = DQ_BLOCKSIZE) -> float:
    """Measured storage of a 4-bit tensor with its constants, in bits per weight.

    >>> round(bits_per_parameter(64 * 256 * 100), 3), bits_per_parameter(64 * 256, double_quant=False)
    (4.127, 4.5)
    """
    n_blocks = math.ceil(n_params / blocksize)
    bits = 4 * n_blocks * blocksize
    if double_quant:
        n_blocks2 = math.ceil(n_blocks / dq_blocksize)
        bits += 8 * n_blocks2 * dq_blocksize + 32 * n_blocks2 + 32   # int8 absmax, fp32 scales, offset
    else:
        bits += 32 * n_blocks
    return bits / n_params


# ---------------------------------------------------------------------------------------------
# 4. A frozen NF4 linear layer, and LoRA on top of it
# ---------------------------------------------------------------------------------------------
class NF4Linear(nn.Module):
    """``y = x W_nf4ᵀ + b`` with ``W`` stored as packed 4-bit NF4 codes, dequantized in ``forward``.

    Memory holds 4 bits per weight (uint8 buffer, two codes per byte) plus the absmax constants
    (double-quantized when ``double_quant``); the matmul runs in ``compute_dtype``. Nothing here
    trains: wrap it in :class:`ftlib.cores.lora.LoRALinear` for QLoRA (paper, eq. 5), as
    :func:`nf4_lora_model` does.
    """

    def __init__(self, base: nn.Linear, double_quant: bool = False,
                 compute_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.compute_dtype, self.double_quant = compute_dtype, double_quant
        levels = nf4_levels().to(base.weight.device)
        codes, absmax = quantize_blockwise(base.weight, levels)
        self.register_buffer("levels", levels)
        self.register_buffer("packed", pack_4bit(codes))                        # (n_weights / 2,)
        if double_quant:
            q, scale, offset = double_quantize(absmax)
            self.register_buffer("absmax_q", q)
            self.register_buffer("absmax_scale", scale)
            self.absmax_offset, self.n_blocks = offset, absmax.numel()
        else:
            self.register_buffer("absmax", absmax)
        self.bias = None if base.bias is None else nn.Parameter(base.bias.detach().clone(), requires_grad=False)

    @property
    def weight(self) -> torch.Tensor:
        """The (out_features, in_features) weight, dequantized to ``compute_dtype`` (a new tensor)."""
        if self.double_quant:
            absmax = double_dequantize(self.absmax_q, self.absmax_scale, self.absmax_offset, self.n_blocks)
        else:
            absmax = self.absmax
        codes = unpack_4bit(self.packed).view(-1, BLOCKSIZE)
        return dequantize_blockwise(codes, absmax, self.levels, (self.out_features, self.in_features),
                                    self.compute_dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:                       # x: (..., in)
        bias = None if self.bias is None else self.bias.to(self.compute_dtype)
        return nn.functional.linear(x.to(self.compute_dtype), self.weight, bias)   # (..., out)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, nf4, double_quant={self.double_quant}"


def nf4_lora_model(model: nn.Module, r: int = 16, alpha: float = 32, double_quant: bool = False,
                   skip: tuple[str, ...] = ("lm_head",), compute_dtype: torch.dtype = torch.float32):
    """QLoRA from scratch: every ``nn.Linear`` (except names in ``skip``) becomes
    ``LoRALinear(NF4Linear(linear))``; everything else is frozen. Modifies ``model`` in place and
    returns it. Module names match PEFT's (``...q_proj.base_layer``, ``...q_proj.lora_A``).
    """
    from ftlib.cores.lora import LoRALinear

    for p in model.parameters():
        p.requires_grad_(False)
    targets = [(name, mod) for name, mod in model.named_modules()
               if isinstance(mod, nn.Linear) and name.split(".")[-1] not in skip]
    for name, mod in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        nf4 = NF4Linear(mod, double_quant=double_quant, compute_dtype=compute_dtype)
        setattr(parent, child, LoRALinear(nf4, r=r, alpha=alpha))
    return model


# ---------------------------------------------------------------------------------------------
# 5. bitsandbytes: a quiet import, and a check of any weight shape against its kernels
# ---------------------------------------------------------------------------------------------
def import_bitsandbytes():
    """``bitsandbytes.functional``; importing ``ftlib`` (which importing this module does) already
    put :func:`ftlib.quiet_library_notices` in force, so its one harmless CPU hint stays silent."""
    import bitsandbytes.functional as bnbf
    return bnbf


def compare_with_bitsandbytes(w: torch.Tensor, kind: str = "nf4", blocksize: int = BLOCKSIZE) -> dict:
    """Quantize ``w`` with this module and with ``bitsandbytes.functional.quantize_4bit``, then
    dequantize both: the check to run on any weight shape before trusting a 4-bit kernel with it.

    Returns ``codes_equal`` and ``absmax_equal`` (the quantization), ``max_diff`` (largest
    |ours − bitsandbytes| after dequantizing), ``agree`` (``max_diff`` within 4 fp32 rounding steps
    of the largest absmax: the two differ only in the order of float operations), and
    ``ours_error`` / ``bnb_error``, the largest |dequantized − w| of each: quantization alone keeps
    it below half the widest gap between two levels times the block's absmax.
    """
    bnbf = import_bitsandbytes()
    w = w.detach().float().cpu()
    levels = CODEBOOKS[kind]()
    packed, state = bnbf.quantize_4bit(w, blocksize=blocksize, quant_type=kind)
    codes, absmax = quantize_blockwise(w, levels, blocksize)
    n = w.numel()
    ours = dequantize_blockwise(codes, absmax, levels, w.shape)
    theirs = bnbf.dequantize_4bit(packed, state).reshape(w.shape)
    max_diff = (ours - theirs).abs().max().item()
    return {"codes_equal": torch.equal(codes.flatten()[:n], unpack_4bit(packed)[:n]),
            "absmax_equal": torch.equal(absmax, state.absmax), "max_diff": max_diff,
            "agree": max_diff <= 4 * torch.finfo(torch.float32).eps * absmax.max().item(),
            "ours_error": (ours - w).abs().max().item(), "bnb_error": (theirs - w).abs().max().item()}
