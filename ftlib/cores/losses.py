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


def sequence_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of log p(token) over each row's labelled tokens: (B, T, V), (B, T) -> (B,).

    Prompt and padding positions carry IGNORE and add nothing. An unmasked prompt adds the same
    term to the chosen and the rejected side, so it cancels in DPO's margin, but it shifts every
    per-side number (implicit rewards, logged log-probs, length-normalised variants); a prompt and
    answer tokenized separately can also move the boundary (see ``ftlib.engine.dpo.pair_batch``).
    """
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)                 # (B, T-1, V)
    target = labels[:, 1:]
    mask = target != IGNORE
    picked = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    return (picked * mask).sum(-1)


def bradley_terry_loss(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor) -> torch.Tensor:
    """Reward-model loss: -log σ(r_chosen - r_rejected), averaged over pairs (Bradley & Terry 1952).

    >>> round(bradley_terry_loss(torch.tensor([0.0]), torch.tensor([0.0])).item(), 4)   # ln 2
    0.6931
    """
    return -F.logsigmoid(reward_chosen - reward_rejected).mean()


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1) -> dict[str, torch.Tensor]:
    """DPO (Rafailov et al. 2023, eq. 7) from sequence log-probs, each (B,).

    loss = -log σ(β·[(log π_c - log π_ref,c) - (log π_r - log π_ref,r)]). Also returns the implicit
    rewards β·(log π - log π_ref) of chosen and rejected, their margin, and reward accuracy
    (the share of pairs whose chosen reward is higher), the numbers TRL logs.
    """
    chosen_reward = beta * (policy_chosen - ref_chosen)
    rejected_reward = beta * (policy_rejected - ref_rejected)
    margin = chosen_reward - rejected_reward
    return {"loss": -F.logsigmoid(margin).mean(), "chosen_reward": chosen_reward.mean(),
            "rejected_reward": rejected_reward.mean(), "margin": margin.mean(),
            "accuracy": (margin > 0).float().mean()}


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float = 1.0, lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) over (B, T) per-token rewards and values.

    δ_t = r_t + γ V_{t+1} - V_t (V after the last token is 0), A_t = δ_t + γλ A_{t+1}.
    Returns (advantages, returns = advantages + values).
    """
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    T = rewards.shape[1]
    for t in reversed(range(T)):
        next_value = values[:, t + 1] if t + 1 < T else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    return advantages, advantages + values


def ppo_clip_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                  clip: float = 0.2, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate (Schulman et al. 2017, eq. 7), negated to be minimised.

    ratio = exp(log π - log π_old); loss = -mean(min(ratio·A, clip(ratio, 1±ε)·A)) over the masked
    tokens. Returns (loss, clip fraction: the share of tokens where clipping was active).
    """
    mask = torch.ones_like(logprobs) if mask is None else mask.float()
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped, clipped = ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages
    loss = -(torch.minimum(unclipped, clipped) * mask).sum() / mask.sum()
    clip_fraction = ((clipped < unclipped).float() * mask).sum() / mask.sum()
    return loss, clip_fraction


def kl_estimates(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample estimators of KL(π || π_ref) from log-probs of tokens sampled from π (Schulman 2020).

    k1 = log π - log π_ref (unbiased, high variance, can be negative);
    k3 = (r - 1) - log r with r = π_ref / π (unbiased, always >= 0, lower variance).
    """
    log_ratio = logprobs - ref_logprobs
    return {"k1": log_ratio, "k3": torch.expm1(-log_ratio) + log_ratio}


def group_advantages(rewards: torch.Tensor, group: int, scale: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """GRPO's advantage (Shao et al. 2024): each completion's reward minus the mean of its group (the
    ``group`` completions of one prompt, consecutive in ``rewards``), divided by the group's standard
    deviation (unbiased, plus ``eps``) when ``scale``. No value model: the group is the baseline. A group
    whose completions all score the same gets advantage 0 and teaches nothing.

    >>> group_advantages(torch.tensor([1., 0., 0., 0., 1., 1., 1., 1.]), group=4, scale=False).tolist()
    [0.75, -0.25, -0.25, -0.25, 0.0, 0.0, 0.0, 0.0]
    """
    if rewards.dim() != 1 or rewards.numel() % group:
        raise ValueError(f"rewards must be 1-D with a multiple of group={group} entries, got shape {tuple(rewards.shape)}")
    grouped = rewards.view(-1, group)
    advantages = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        advantages = advantages / (grouped.std(dim=1, keepdim=True) + eps)
    return advantages.flatten()


def grpo_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
              *, ref_logprobs: torch.Tensor | None = None, beta: float = 0.0, clip: float = 0.2) -> torch.Tensor:
    """GRPO's loss over (B, T) per-token log-probs of B completions: PPO's clipped surrogate with one
    advantage per completion (broadcast to its tokens), plus β times the k3 estimate of KL to the
    reference per token; averaged over each completion's tokens, then over completions (TRL's
    ``loss_type="grpo"``)."""
    ratio = torch.exp(logprobs - old_logprobs)
    adv = advantages.unsqueeze(1)
    per_token = -torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
    if beta:
        per_token = per_token + beta * kl_estimates(logprobs, ref_logprobs)["k3"]
    mask = mask.float()
    return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
