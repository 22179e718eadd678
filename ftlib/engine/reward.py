"""Rewards for RL: a learned reward model (Bradley-Terry on preference pairs) and the verifiers.

A reward model is a language model whose LM head is replaced by one linear "score" head; the
score of the *last* real token of ``prompt + response`` is the reward
(``AutoModelForSequenceClassification`` with ``num_labels=1``, as TRL's ``RewardTrainer`` uses).
It is trained so that the chosen answer of each pair scores higher than the rejected one:
``loss = -log σ(r_chosen - r_rejected)`` (:func:`ftlib.cores.losses.bradley_terry_loss`).

Both kinds of reward share one calling convention, ``reward_fn(prompts, completions) -> list[float]``
with the task prompts as written in the data (not rendered by a chat template), so the same
function drives :mod:`ftlib.engine.ppo`, TRL's ``GRPOTrainer`` (through :func:`for_trl`) and evaluation.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ftlib.cores.losses import bradley_terry_loss

RewardFn = Callable[[Sequence[str], Sequence[str]], list[float]]


# ---------------------------------------------------------------------------------------------
# The reward model
# ---------------------------------------------------------------------------------------------
def reward_model_from(path: str, *, dtype: torch.dtype | None = None):
    """``(reward model, tokenizer)`` from a causal-LM directory: its transformer, a new score head
    (randomly initialised; transformers reports it as "missing") or the trained one if present."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging

    from ftlib.engine.models import quiet_transformers, tokenizer_from
    quiet_transformers()
    tokenizer = tokenizer_from(path)
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()      # its load report would list the new score head as "missing"
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, dtype=dtype or torch.float32, trust_remote_code=False, use_safetensors=True)
    finally:
        logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id   # how it finds each row's last real token
    return model.eval(), tokenizer


def rm_texts(tokenizer, prompts: Sequence[str], responses: Sequence[str]) -> list[str]:
    """Each (prompt, response) as the chat it scores: user turn, then the assistant's answer,
    rendered by the reward model's own chat template (so it ends with the end-of-turn token)."""
    return [tokenizer.apply_chat_template([{"role": "user", "content": p}, {"role": "assistant", "content": r}],
                                          tokenize=False) for p, r in zip(prompts, responses)]


def rewards(model, tokenizer, prompts: Sequence[str], responses: Sequence[str], *,
            batch_size: int = 32, max_length: int = 256) -> torch.Tensor:
    """The reward model's score for each (prompt, response): (N,), with gradients if enabled."""
    device = next(model.parameters()).device
    texts = rm_texts(tokenizer, prompts, responses)
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True, padding_side="right",
                        truncation=True, max_length=max_length, add_special_tokens=False).to(device)
        out.append(model(**enc).logits[:, 0].float())
    return torch.cat(out)


@dataclass(frozen=True)
class RMRecipe:
    epochs: float = 1.0        # passes over the training pairs
    batch_size: int = 16       # pairs per step
    lr: float = 3e-5
    warmup_steps: int = 10
    max_pairs: int = 0         # 0 = all training pairs


RM_RECIPES = {"smoke": RMRecipe(epochs=1, batch_size=8, lr=3e-4, max_pairs=32),
              "cpu": RMRecipe(epochs=2, batch_size=16, lr=1e-4, warmup_steps=5),
              "gpu": RMRecipe(epochs=3, batch_size=32, lr=1e-4, warmup_steps=10)}


def train_reward_model(model, tokenizer, pairs: Sequence[dict], recipe: RMRecipe, *, seed: int = 0,
                       on_step: Callable[[int, dict], None] | None = None, progress: bool = False) -> list[dict]:
    """Bradley-Terry training on ``pairs`` ({prompt, chosen, rejected}); the loss and batch
    accuracy of each step. Linear warmup, then linear decay to 0; AdamW; gradient clip 1.0.
    ``progress`` shows a progress bar over the steps (the product builds do)."""
    from tqdm.auto import tqdm
    pairs = list(pairs)[:recipe.max_pairs or None]
    rng = random.Random(seed)
    torch.manual_seed(seed)
    per_epoch = max(1, len(pairs) // recipe.batch_size)
    steps = max(1, round(recipe.epochs * per_epoch))
    order: list[dict] = []
    while len(order) < steps * recipe.batch_size:
        epoch = pairs[:]
        rng.shuffle(epoch)
        order += epoch[:per_epoch * recipe.batch_size]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=recipe.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / recipe.warmup_steps) * max(0.0, 1 - s / steps))
    history, start = [], time.perf_counter()
    model.train()
    for step in tqdm(range(steps), desc="reward model", disable=not progress, leave=False):
        batch = order[step * recipe.batch_size:(step + 1) * recipe.batch_size]
        prompts = [p["prompt"] for p in batch]
        scores = rewards(model, tokenizer, prompts * 2, [p["chosen"] for p in batch] + [p["rejected"] for p in batch],
                         batch_size=2 * len(batch))
        chosen, rejected = scores[:len(batch)], scores[len(batch):]
        loss = bradley_terry_loss(chosen, rejected)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        stats = {"step": step, "loss": loss.item(), "accuracy": (chosen > rejected).float().mean().item(),
                 "seconds": time.perf_counter() - start}
        history.append(stats)
        if on_step is not None:
            on_step(step, stats)
    model.eval()
    return history


@torch.no_grad()
def pairwise(model, tokenizer, pairs: Sequence[dict], batch_size: int = 32) -> dict:
    """Rewards of chosen and rejected for each pair, and whether the chosen one scored higher."""
    prompts = [p["prompt"] for p in pairs]
    chosen = rewards(model, tokenizer, prompts, [p["chosen"] for p in pairs], batch_size=batch_size)
    rejected = rewards(model, tokenizer, prompts, [p["rejected"] for p in pairs], batch_size=batch_size)
    return {"chosen": chosen, "rejected": rejected, "correct": (chosen > rejected).tolist()}


# ---------------------------------------------------------------------------------------------
# Reward functions: (task prompts, completions) -> floats
# ---------------------------------------------------------------------------------------------
def verifier_reward(rows: Sequence[dict]) -> RewardFn:
    """1.0 where the family's verifier accepts the completion, else 0.0 (RL with verifiable rewards).
    ``rows`` are the task rows whose prompts will be asked; a prompt not among them is an error."""
    from ftlib.data import verify
    by_prompt = {r["prompt"]: r for r in rows}

    def reward(prompts, completions):
        return [float(verify(by_prompt[p], c)) for p, c in zip(prompts, completions)]
    return reward


def model_reward(model, tokenizer, batch_size: int = 32) -> RewardFn:
    """The reward model's scores as a reward function (no gradients)."""
    def reward(prompts, completions):
        with torch.no_grad():
            return rewards(model, tokenizer, prompts, completions, batch_size=batch_size).tolist()
    return reward


def for_trl(reward_fn: RewardFn, name: str) -> Callable:
    """``reward_fn`` in the calling convention of TRL's ``GRPOTrainer`` reward functions.

    TRL calls ``f(prompts=, completions=, **dataset_columns)``; with conversational data each
    prompt and completion is a list of messages. The dataset must carry a ``task`` column with the
    task prompt as written in the data.
    """
    def reward(prompts, completions, task, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return reward_fn(task, texts)
    reward.__name__ = name
    return reward
