"""PPO for causal language models, from scratch: rollout, advantages, clipped updates.

TRL 1.x has no PPOTrainer any more, and its old one hid the algorithm in a 700-line method. The
loop is short enough to read top to bottom:

1. **Rollout.** Sample a completion for each prompt from the policy (left-padded prompts,
   ``generate(do_sample=True)``, stop at eos or ``<|im_end|>``). Score each completion with
   ``reward_fn``. Record, for every sampled token, its log-prob under the policy (``old``), under
   the frozen reference model, and the value head's estimate of the reward still to come.
2. **Rewards per token.** The score is a single number for the whole completion; it is placed on
   the last completion token. Every completion token also pays ``-β·(log π - log π_ref)``, the
   per-token KL penalty that keeps the policy near the reference (Ziegler et al. 2019).
3. **Advantages.** :func:`ftlib.cores.losses.gae` turns per-token rewards and values into advantages
   and returns; advantages are whitened over the completion tokens.
4. **Update.** A few epochs over shuffled mini-batches of the same rollout: clipped surrogate
   (:func:`ftlib.cores.losses.ppo_clip_loss`), clipped value loss, entropy bonus, gradient clipping.

Shapes: prompts are padded to P tokens, completions to R tokens, so ``input_ids`` is (B, P+R) and
every per-token tensor (log-probs, values, rewards, masks) is (B, R), one column per completion
token. Position ``P-1+t`` of the model's output predicts completion token ``t``. Everything runs
on the device of the policy's parameters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ftlib.cores.losses import gae, kl_estimates, ppo_clip_loss
from ftlib.engine.sft_data import stop_ids

RewardFn = Callable[[list[str], list[str]], list[float]]


class PolicyWithValue(torch.nn.Module):
    """A causal LM plus a linear value head on its last hidden state (one value per token).

    The value head reads the same hidden states as the LM head, so policy and value share the
    whole transformer; the LM's logits are returned unchanged. The head starts at zero, so every
    initial value is 0.
    """

    def __init__(self, lm: torch.nn.Module):
        super().__init__()
        self.lm = lm
        self.value_head = torch.nn.Linear(lm.config.hidden_size, 1)
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids, attention_mask=None, position_ids=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits (B, T, V), values (B, T))``."""
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                      output_hidden_states=True)
        return out.logits, self.value_head(out.hidden_states[-1]).squeeze(-1)


@dataclass
class PPOConfig:
    batch_size: int = 8          # prompts per rollout
    max_new_tokens: int = 32     # completion length cap
    ppo_epochs: int = 4          # passes over each rollout
    mini_batch_size: int = 4     # rows per optimiser step
    lr: float = 1e-5
    clip: float = 0.2            # ε of the clipped surrogate
    value_clip: float = 0.2      # how far a value may move from its rollout value
    vf_coef: float = 0.1         # weight of the value loss
    ent_coef: float = 0.0        # weight of the entropy bonus
    kl_coef: float = 0.05        # β of the per-token KL penalty
    gamma: float = 1.0           # discount
    lam: float = 0.95            # GAE λ
    temperature: float = 1.0     # sampling temperature (log-probs use the same one)
    max_grad_norm: float = 1.0
    seed: int = 0


@dataclass
class Rollout:
    input_ids: torch.Tensor       # (B, P+R) left-padded prompt + completion
    attention_mask: torch.Tensor  # (B, P+R) 0 on prompt padding and after the stop token
    response_mask: torch.Tensor   # (B, R) 1 on sampled tokens up to and including the first stop
    logprobs: torch.Tensor        # (B, R) log π_old of each sampled token
    ref_logprobs: torch.Tensor    # (B, R) log π_ref of each sampled token
    values: torch.Tensor          # (B, R) value before each sampled token
    rewards: torch.Tensor         # (B, R) KL penalty on every token, + score on the last one
    scores: torch.Tensor          # (B,) reward_fn's scores
    prompts: list[str]
    completions: list[str]

    @property
    def prompt_length(self) -> int:
        return self.input_ids.shape[1] - self.response_mask.shape[1]


def response_mask(response: torch.Tensor, stop_ids: list[int]) -> torch.Tensor:
    """1 on each token up to and including the first stop token (all ones if none): (B, R)."""
    is_stop = torch.isin(response, torch.tensor(stop_ids, device=response.device)).long()
    stops_before = is_stop.cumsum(-1) - is_stop      # stop tokens strictly before each position
    return (stops_before == 0).long()


def _lm(model):
    return model.lm if isinstance(model, PolicyWithValue) else model


def forward_response(model, input_ids, attention_mask, response_len: int, temperature: float):
    """Log-probs (B, R) of the completion tokens, per-token entropy (B, R), values (B, R) or None.

    Position ids count only real tokens, as ``generate`` does for left-padded prompts (RoPE models
    would not notice a shift, models with absolute positions would). The logits are divided by the
    sampling temperature, so log π_old is the distribution that was sampled from.
    """
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    if isinstance(model, PolicyWithValue):
        logits, values = model(input_ids, attention_mask, position_ids)
        values = values[:, -response_len - 1:-1]
    else:
        logits, values = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits, None
    logp = F.log_softmax(logits[:, -response_len - 1:-1].float() / temperature, dim=-1)   # (B, R, V)
    picked = logp.gather(-1, input_ids[:, -response_len:].unsqueeze(-1)).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return picked, entropy, values


@torch.no_grad()
def sample(lm, tokenizer, texts: list[str], *, max_new_tokens: int, temperature: float = 1.0,
           add_special_tokens: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One sampled completion per input text (pure sampling: no top-k, no top-p).

    Returns ``(input_ids (B, P+R), attention_mask (B, P+R), response_mask (B, R))``: left-padded
    prompts, then the completions with everything after the first stop token set to padding.
    """
    device = next(lm.parameters()).device
    stops = stop_ids(tokenizer)
    enc = tokenizer(texts, return_tensors="pt", padding=True, padding_side="left",
                    add_special_tokens=add_special_tokens).to(device)
    out = lm.generate(**enc, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                      max_new_tokens=max_new_tokens, eos_token_id=stops, pad_token_id=tokenizer.pad_token_id)
    response = out[:, enc["input_ids"].shape[1]:]
    mask = response_mask(response, stops)
    response = response.masked_fill(mask == 0, tokenizer.pad_token_id)
    return (torch.cat([enc["input_ids"], response], dim=1), torch.cat([enc["attention_mask"], mask], dim=1), mask)


@torch.no_grad()
def rollout(policy: PolicyWithValue, ref_model, tokenizer, prompts: list[str], reward_fn: RewardFn,
            cfg: PPOConfig, render: Callable[[str], str] | None = None) -> Rollout:
    """Sample one completion per prompt and record everything the update needs (see module doc).

    ``render`` turns a task prompt into the model's input text (a chat template); ``reward_fn``
    sees the task prompt itself. Without it the prompts are the input text, tokenized as given.
    """
    device = next(policy.parameters()).device
    policy.eval()
    texts = [render(p) for p in prompts] if render else list(prompts)
    input_ids, attention_mask, mask = sample(_lm(policy), tokenizer, texts, max_new_tokens=cfg.max_new_tokens,
                                             temperature=cfg.temperature, add_special_tokens=render is None)
    R = mask.shape[1]
    response = input_ids[:, -R:]

    logprobs, _, values = forward_response(policy, input_ids, attention_mask, R, cfg.temperature)
    ref_logprobs, _, _ = forward_response(ref_model, input_ids, attention_mask, R, cfg.temperature)
    completions = tokenizer.batch_decode(response, skip_special_tokens=True)
    scores = torch.tensor(reward_fn(prompts, completions), dtype=torch.float, device=device)

    mask_f = mask.float()
    logprobs, ref_logprobs, values = logprobs * mask_f, ref_logprobs * mask_f, values * mask_f
    rewards = -cfg.kl_coef * (logprobs - ref_logprobs)
    last = mask.sum(-1) - 1                                  # index of the last completion token
    rewards[torch.arange(len(prompts), device=device), last] += scores
    return Rollout(input_ids, attention_mask, mask, logprobs, ref_logprobs, values, rewards, scores,
                   list(prompts), completions)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum()


def whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std over the masked entries; masked-out entries become 0."""
    mean = _masked_mean(x, mask)
    var = _masked_mean((x - mean) ** 2, mask)
    return (x - mean) * torch.rsqrt(var + 1e-8) * mask


def ppo_step(policy: PolicyWithValue, optimizer: torch.optim.Optimizer, batch: Rollout,
             cfg: PPOConfig) -> dict[str, float]:
    """Advantages with GAE, then ``ppo_epochs`` passes of clipped updates over shuffled mini-batches.

    The policy stays in eval mode (no dropout), so in the first mini-batch the new log-probs equal
    the old ones and the ratio starts at exactly 1.
    """
    policy.eval()
    mask = batch.response_mask.float()
    advantages, returns = gae(batch.rewards * mask, batch.values * mask, cfg.gamma, cfg.lam)
    advantages = whiten(advantages, mask)
    R, B = mask.shape[1], mask.shape[0]
    totals: dict[str, float] = {}
    n_updates = 0
    for _ in range(cfg.ppo_epochs):
        for idx in torch.randperm(B).split(cfg.mini_batch_size):
            m = mask[idx]
            logprobs, entropy, values = forward_response(policy, batch.input_ids[idx], batch.attention_mask[idx],
                                                         R, cfg.temperature)
            pg_loss, clip_frac = ppo_clip_loss(logprobs, batch.logprobs[idx], advantages[idx], cfg.clip, m)
            old_v = batch.values[idx]
            v_clipped = old_v + (values - old_v).clamp(-cfg.value_clip, cfg.value_clip)
            v_err = torch.maximum((values - returns[idx]) ** 2, (v_clipped - returns[idx]) ** 2)
            vf_loss = 0.5 * _masked_mean(v_err, m)
            ent = _masked_mean(entropy, m)
            loss = pg_loss + cfg.vf_coef * vf_loss - cfg.ent_coef * ent

            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
            optimizer.step()

            approx_kl = _masked_mean(kl_estimates(batch.logprobs[idx], logprobs.detach())["k3"], m)
            for k, v in {"policy_loss": pg_loss, "value_loss": vf_loss, "entropy": ent,
                         "clip_fraction": clip_frac, "approx_kl": approx_kl}.items():
                totals[k] = totals.get(k, 0.0) + v.item()
            n_updates += 1
    kl = kl_estimates(batch.logprobs, batch.ref_logprobs)
    return {"score": batch.scores.mean().item(),
            "kl_k1": (kl["k1"] * mask).sum(-1).mean().item(),          # per sequence, summed over tokens
            "kl_k3": (kl["k3"] * mask).sum(-1).mean().item(),
            "response_length": mask.sum(-1).mean().item(),
            **{k: v / n_updates for k, v in totals.items()}}


def train_ppo(policy: PolicyWithValue, ref_model, tokenizer, prompts: list[str], reward_fn: RewardFn,
              cfg: PPOConfig, steps: int, on_step: Callable[[int, dict], None] | None = None,
              render: Callable[[str], str] | None = None) -> list[dict]:
    """``steps`` rounds of rollout + update over ``prompts`` in order (wrapping); the stats of each.

    ``ref_model`` (a causal LM, or a :class:`PolicyWithValue`) is only read, never updated.
    ``render`` as in :func:`rollout`. ``on_step(step, stats)`` may add entries to ``stats``.
    """
    torch.manual_seed(cfg.seed)
    ref_model.eval()
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=cfg.lr)
    history = []
    for step in range(steps):
        start = step * cfg.batch_size
        batch_prompts = [prompts[(start + i) % len(prompts)] for i in range(cfg.batch_size)]
        batch = rollout(policy, ref_model, tokenizer, batch_prompts, reward_fn, cfg, render)
        stats = {"step": step, **ppo_step(policy, optimizer, batch, cfg)}
        history.append(stats)
        if on_step is not None:
            on_step(step, stats)
    return history


@torch.no_grad()
def sampled_kl(lm, ref_model, tokenizer, texts: list[str], *, max_new_tokens: int, seed: int = 0,
               batch_size: int = 64) -> tuple[list[str], dict[str, list[float]]]:
    """One sampled completion per input text from ``lm`` (temperature 1), and for each completion
    the k1 and k3 estimates of KL(π || π_ref) (:func:`ftlib.cores.losses.kl_estimates`) summed over
    its tokens, in nats: ``(completions, {"k1": [...], "k3": [...]})``."""
    torch.manual_seed(seed)
    lm.eval()
    ref_model.eval()
    completions, sums = [], {"k1": [], "k3": []}
    for i in range(0, len(texts), batch_size):
        input_ids, attention_mask, mask = sample(lm, tokenizer, texts[i:i + batch_size], max_new_tokens=max_new_tokens)
        R = mask.shape[1]
        logprobs, _, _ = forward_response(lm, input_ids, attention_mask, R, 1.0)
        ref_logprobs, _, _ = forward_response(ref_model, input_ids, attention_mask, R, 1.0)
        for k, v in kl_estimates(logprobs, ref_logprobs).items():
            sums[k] += (v * mask).sum(-1).tolist()
        completions += tokenizer.batch_decode(input_ids[:, -R:], skip_special_tokens=True)
    return completions, sums


def kl_to_reference(lm, ref_model, tokenizer, texts: list[str], *, max_new_tokens: int, seed: int = 0,
                    batch_size: int = 64) -> dict[str, float]:
    """How far a trained model has moved from its reference: KL(π || π_ref) per completion, in nats.

    The means over ``texts`` of :func:`sampled_kl`'s estimates. The same measure for every method
    (PPO, GRPO, DPO), so their KLs can be compared.
    """
    _, sums = sampled_kl(lm, ref_model, tokenizer, texts, max_new_tokens=max_new_tokens, seed=seed,
                         batch_size=batch_size)
    return {k: sum(v) / len(v) for k, v in sums.items()}
