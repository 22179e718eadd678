"""Training objectives as pure tensor functions: tensors in, a scalar (or per-item tensor) out.

The trainers people use (TRL's SFT, reward, DPO, GRPO trainers) compute these inside large
methods; here each is a few lines with its shapes, and a test compares it with the library on
the same batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100  # labels with this value do not count


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the labelled tokens of a batch.

    ``logits`` (B, T, V), ``labels`` (B, T) with IGNORE where a token must not be learned (the
    prompt, padding). Position t predicts token t+1, so logits drop the last position and labels
    the first. The mean is over all labelled tokens of the batch (token-weighted), as in
    transformers and TRL, not a mean of per-example means.

    >>> logits = torch.zeros(1, 3, 4); labels = torch.tensor([[IGNORE, 2, 3]])
    >>> round(causal_lm_loss(logits, labels).item(), 4)   # uniform over 4 tokens: ln 4
    1.3863
    """
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE)
