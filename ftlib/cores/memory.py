"""Memory estimates: how many bytes training keeps per GPU.

Mixed-precision training with Adam keeps, per parameter (the ZeRO paper, Rajbhandari et al. 2020, §3):
bf16 weights (2 bytes) + bf16 gradients (2) + fp32 master weights, momentum and variance (4+4+4 = 12).
That is 16 bytes per parameter: a 7B model needs 112 GB before a single activation.

ZeRO (and PyTorch FSDP, which implements stage 3) shards these states over the ``n_gpus`` data-
parallel workers instead of replicating them:

    stage 0 (plain DDP)       every GPU holds everything                       (2 + 2 + 12) Ψ
    stage 1 (optimizer)       Adam states and master weights sharded           2Ψ + 2Ψ + 12Ψ/N
    stage 2 (+ gradients)     gradients sharded too                            2Ψ + (2 + 12)Ψ/N
    stage 3 (+ weights, FSDP) everything sharded, weights gathered per layer   (2 + 2 + 12)Ψ/N

>>> round(zero_memory_gb(7.5e9, 64, stage=0), 1), round(zero_memory_gb(7.5e9, 64, stage=1), 1)
(120.0, 31.4)
>>> round(zero_memory_gb(7.5e9, 64, stage=2), 1), round(zero_memory_gb(7.5e9, 64, stage=3), 2)
(16.6, 1.88)
"""
from __future__ import annotations


def zero_state_bytes(n_params: float, n_gpus: int, stage: int, *, weight_bytes: int = 2,
                     grad_bytes: int = 2, optim_bytes: int = 12) -> dict[str, float]:
    """Bytes of model state one GPU holds under ZeRO ``stage`` 0-3, by kind: ``params``, ``grads``,
    ``optimizer`` (everything the optimizer keeps: for mixed precision the fp32 master weights and
    Adam's two moments, 12 bytes; for fp32 training only the two moments, 8). DDP is stage 0;
    FSDP's full sharding is stage 3.

    >>> zero_state_bytes(1000, 2, stage=2, weight_bytes=4, grad_bytes=4, optim_bytes=8)
    {'params': 4000.0, 'grads': 2000.0, 'optimizer': 4000.0}
    """
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"ZeRO stage must be 0, 1, 2 or 3, not {stage!r}")
    if n_gpus < 1:
        raise ValueError("n_gpus must be at least 1")
    shard = lambda nbytes, sharded: n_params * nbytes / (n_gpus if sharded else 1)  # noqa: E731
    return {"params": shard(weight_bytes, stage >= 3), "grads": shard(grad_bytes, stage >= 2),
            "optimizer": shard(optim_bytes, stage >= 1)}


def zero_memory_gb(n_params: float, n_gpus: int, stage: int, *, weight_bytes: int = 2,
                   grad_bytes: int = 2, optim_bytes: int = 12) -> float:
    """Model-state memory per GPU in GB (1e9 bytes) for ZeRO ``stage`` 0-3; activations not included."""
    return sum(zero_state_bytes(n_params, n_gpus, stage, weight_bytes=weight_bytes, grad_bytes=grad_bytes,
                                optim_bytes=optim_bytes).values()) / 1e9


def zero_table(n_params: float, gpu_counts=(1, 8, 64)) -> list[dict]:
    """One row per stage: ``{"stage", "<n> GPUs": GB per GPU, ...}``, for a small table."""
    return [{"stage": stage, **{f"{n} GPUs": round(zero_memory_gb(n_params, n, stage), 1) for n in gpu_counts}}
            for stage in (0, 1, 2, 3)]


# ---------------------------------------------------------------------------------------------
# Chapter 04: a per-method training-memory estimator (full fine-tuning, LoRA, QLoRA)
# ---------------------------------------------------------------------------------------------
from dataclasses import dataclass  # noqa: E402


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a Llama-style decoder that decide its memory."""
    vocab_size: int            # rows of the embedding (and of lm_head)
    hidden_size: int           # width of the residual stream, h
    n_layers: int              # transformer blocks
    n_heads: int               # query heads
    n_kv_heads: int            # key/value heads (GQA: fewer than n_heads)
    intermediate_size: int     # SwiGLU width, i
    tie_embeddings: bool       # lm_head shares the embedding matrix

    @classmethod
    def from_config(cls, config) -> "ModelShape":
        """From a transformers ``LlamaConfig`` (or anything with the same attribute names)."""
        return cls(config.vocab_size, config.hidden_size, config.num_hidden_layers,
                   config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads,
                   config.intermediate_size, bool(getattr(config, "tie_word_embeddings", False)))

    def linear_shapes(self) -> list[tuple[int, int]]:
        """(in, out) of the 7 linear layers of one block: q, k, v, o, gate, up, down."""
        h, kv, i = self.hidden_size, self.hidden_size * self.n_kv_heads // self.n_heads, self.intermediate_size
        return [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)]

    @property
    def linear_params(self) -> int:
        """Parameters in the blocks' linear layers: what QLoRA stores in 4 bits."""
        return self.n_layers * sum(a * b for a, b in self.linear_shapes())

    @property
    def embedding_params(self) -> int:
        """Embedding plus an untied lm_head: kept in 16 (or 32) bits by QLoRA."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_embeddings else 2)

    @property
    def n_params(self) -> int:
        norms = (2 * self.n_layers + 1) * self.hidden_size
        return self.linear_params + self.embedding_params + norms


# Llama-2-7B (Touvron et al., 2023): 6.74B parameters.
LLAMA2_7B = ModelShape(vocab_size=32000, hidden_size=4096, n_layers=32, n_heads=32, n_kv_heads=32,
                       intermediate_size=11008, tie_embeddings=False)


def lora_params(shape: ModelShape, r: int = 16) -> int:
    """Trainable LoRA parameters with adapters on all 7 linear layers of every block: r·(in + out) each.

    >>> lora_params(LLAMA2_7B, r=16)
    39976960
    """
    return shape.n_layers * sum(r * (a + b) for a, b in shape.linear_shapes())


def activation_bytes(shape: ModelShape, batch_size: int, seq_len: int, *, act_bytes: int = 2,
                     gradient_checkpointing: bool = False, logits_bytes: int = 4) -> int:
    """Activations kept for the backward pass (SDPA attention: no seq × seq matrix is stored).

    Per token and block, the tensors autograd saves are about ``8h + 3·kv + 4i`` elements: the
    norm inputs and outputs, q/k/v (and their rotated copies), the attention output, the residual,
    and gate, up, silu(gate) and their product in the MLP. With gradient checkpointing only each
    block's input (h) is kept, plus one block recomputed at a time. The logits add about three
    (tokens × vocab) fp32 tensors: logits, log-softmax and their gradient.
    """
    h, i = shape.hidden_size, shape.intermediate_size
    kv = h * shape.n_kv_heads // shape.n_heads
    tokens = batch_size * seq_len
    per_block = (8 * h + 3 * kv + 4 * i) * tokens * act_bytes
    blocks = (shape.n_layers * h * tokens * act_bytes + per_block) if gradient_checkpointing \
        else shape.n_layers * per_block
    return blocks + 3 * tokens * shape.vocab_size * logits_bytes


def training_memory(shape: ModelShape, method: str = "full", *, batch_size: int = 1, seq_len: int = 512,
                    r: int = 16, weight_bytes: int = 2, adapter_bytes: int = 4, optimizer_bytes: int = 8,
                    quant_bits: float = 4.127, gradient_checkpointing: bool = False,
                    act_bytes: int | None = None) -> dict:
    """Bytes of weights, gradients, optimizer state and activations for one training process.

    ``method``: ``"full"`` (every weight trains; in 16-bit, Adam also keeps an fp32 master copy),
    ``"lora"`` (frozen base in ``weight_bytes``, LoRA adapters in ``adapter_bytes``) or ``"qlora"``
    (the blocks' linear weights in ``quant_bits`` per weight, embeddings and norms in
    ``weight_bytes``, adapters as LoRA). ``optimizer_bytes``: 8 for AdamW (fp32 m and v), 2 for
    8-bit AdamW. Returns a dict of bytes (``weights`` is the base model, ``adapters`` the LoRA
    matrices) plus ``"total"`` and the number of ``"trainable"`` parameters.

    >>> m = training_memory(LLAMA2_7B, "full", weight_bytes=2)
    >>> round(m["weights"] / 1e9, 1), round((m["weights"] + m["gradients"] + m["optimizer"]) / 1e9)
    (13.5, 108)
    >>> round(training_memory(LLAMA2_7B, "qlora")["weights"] / 1e9, 2)
    3.87
    """
    if method not in ("full", "lora", "qlora"):
        raise ValueError(f"method must be 'full', 'lora' or 'qlora', not {method!r}")
    psi = shape.n_params
    if method == "full":
        weights, adapters, trainable = psi * weight_bytes, 0, psi
        grads = psi * weight_bytes
        optim = psi * (optimizer_bytes + (4 if weight_bytes < 4 else 0))   # + fp32 master weights
    else:
        n_lora = lora_params(shape, r)
        if method == "lora":
            base = psi * weight_bytes
        else:
            base = shape.linear_params * quant_bits / 8 + (psi - shape.linear_params) * weight_bytes
        weights, adapters, trainable = base, n_lora * adapter_bytes, n_lora
        grads, optim = n_lora * adapter_bytes, n_lora * optimizer_bytes
    acts = activation_bytes(shape, batch_size, seq_len, act_bytes=act_bytes or weight_bytes,
                            gradient_checkpointing=gradient_checkpointing)
    out = {"weights": int(weights), "adapters": int(adapters), "gradients": int(grads), "optimizer": int(optim), "activations": int(acts)}
    out["total"] = sum(out.values())
    out["trainable"] = int(trainable)
    return out


def release_memory() -> None:
    """Free what Python no longer references, so the next measurement starts from a clean floor:
    garbage-collect, empty the CUDA cache, and on Linux hand freed heap pages back (malloc_trim)."""
    import ctypes
    import gc

    import torch
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
