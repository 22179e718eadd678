"""Chapter 07's pieces: preference pairs as tensors, sequence log-probs with the prompt masked, and
DPO with TRL's ``DPOTrainer`` on the course's pairs.

The loss itself is :func:`ftlib.cores.losses.dpo_loss`, a pure function of four sequence log-probs. What
goes wrong in practice is the input to it: the log-prob must sum over the *answer* tokens only. If
the prompt is left in, both sides carry the same large prompt term, and a tokenizer that merges the
prompt's last characters with the answer's first shifts the boundary. :func:`pair_batch` builds the
rows the way TRL does for chats: the prompt rendered with the generation prompt, the full chat
rendered, and the answer = the tokens after the prompt.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch

from ftlib.cores.losses import IGNORE, dpo_loss, sequence_logprobs
from ftlib.engine.models import fresh_copy


def _chat(tokenizer, prompt: str, answer: str | None) -> list[int]:
    messages = [{"role": "user", "content": prompt}]
    if answer is None:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    messages.append({"role": "assistant", "content": answer})
    return tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)


def pair_batch(tokenizer, pairs: Sequence[dict], max_length: int = 256) -> dict[str, torch.Tensor]:
    """Rows for ``pairs`` ({prompt, chosen, rejected}): all chosen rows, then all rejected rows.

    ``labels`` carry the answer tokens (and the end-of-turn after them) and IGNORE on the prompt and
    the padding, so :func:`ftlib.cores.losses.sequence_logprobs` sums the answer only. Right-padded.
    """
    rows, answer_starts = [], []
    for key in ("chosen", "rejected"):
        for p in pairs:
            prompt_ids = _chat(tokenizer, p["prompt"], None)
            full = _chat(tokenizer, p["prompt"], p[key])[:max_length]
            if full[:len(prompt_ids)] != prompt_ids:
                raise ValueError(f"pair {p.get('id', '?')}: the rendered chat does not start with the rendered prompt")
            rows.append(full)
            answer_starts.append(len(prompt_ids))
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    attention_mask = torch.zeros_like(input_ids)
    labels = torch.full_like(input_ids, IGNORE)
    for i, (row, start) in enumerate(zip(rows, answer_starts)):
        input_ids[i, :len(row)] = torch.tensor(row)
        attention_mask[i, :len(row)] = 1
        labels[i, start:len(row)] = torch.tensor(row[start:])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def pair_logprobs(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence log-probs of the answers: ``(chosen (B,), rejected (B,))`` for a :func:`pair_batch`."""
    device = next(model.parameters()).device
    logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
    logps = sequence_logprobs(logits, batch["labels"].to(device))
    half = logps.shape[0] // 2
    return logps[:half], logps[half:]


@torch.no_grad()
def preference_scores(policy, ref_model, tokenizer, pairs: Sequence[dict], *, beta: float,
                      batch_size: int = 32) -> dict:
    """DPO's implicit rewards β·(log π - log π_ref) of chosen and rejected for each pair, whether the
    chosen one is higher (the held-out "preference accuracy"), and the policy's own log-probs."""
    out = {"chosen_reward": [], "rejected_reward": [], "chosen_logp": [], "rejected_logp": []}
    policy.eval()
    ref_model.eval()
    for i in range(0, len(pairs), batch_size):
        batch = pair_batch(tokenizer, pairs[i:i + batch_size])
        pc, pr = pair_logprobs(policy, batch)
        rc, rr = pair_logprobs(ref_model, batch)
        out["chosen_reward"] += (beta * (pc - rc)).tolist()
        out["rejected_reward"] += (beta * (pr - rr)).tolist()
        out["chosen_logp"] += pc.tolist()
        out["rejected_logp"] += pr.tolist()
    out["correct"] = [c > r for c, r in zip(out["chosen_reward"], out["rejected_reward"])]
    return out


def batch_dpo_loss(policy, ref_model, batch: dict[str, torch.Tensor], beta: float,
                   sft_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """:func:`ftlib.cores.losses.dpo_loss` on a :func:`pair_batch`: the from-scratch training objective.

    ``sft_weight`` > 0 adds that multiple of the chosen answers' negative log-likelihood, averaged over
    all their tokens in the batch (TRL's ``loss_type=["sigmoid", "sft"]``; RPO, Pang et al. 2024), and
    returns it as ``"sft"``.
    """
    pc, pr = pair_logprobs(policy, batch)
    with torch.no_grad():
        rc, rr = pair_logprobs(ref_model, batch)
    out = dpo_loss(pc, pr, rc, rr, beta=beta)
    if sft_weight:
        chosen_tokens = (batch["labels"][:len(pc), 1:] != IGNORE).sum()
        out["sft"] = -pc.sum() / chosen_tokens
        out["loss"] = out["loss"] + sft_weight * out["sft"]
    return out


# ---------------------------------------------------------------------------------------------
# DPO with TRL
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DPORecipe:
    steps: int
    batch_size: int          # pairs per step
    lr: float
    beta: float = 0.1
    loss_type: str = "sigmoid"   # "sigmoid" = DPO; "ipo", "hinge", ... as TRL names them
    sft_weight: float = 0.0      # > 0: add the chosen answers' NLL with this weight (TRL's "sft" loss term)

    def loss_types(self) -> tuple[list[str], list[float]]:
        """TRL's ``loss_type`` and ``loss_weights`` for this recipe."""
        if not self.sft_weight:
            return [self.loss_type], [1.0]
        return [self.loss_type, "sft"], [1.0, self.sft_weight]


# DPO from the course assistant on its own on-policy pairs (chapter 07's ``assistant-dpo``): full
# fine-tuning of the merged assistant, with the chosen answers' NLL added (``sft_weight``).
ASSISTANT_DPO_RECIPES = {"smoke": DPORecipe(steps=2, batch_size=4, lr=2e-5, sft_weight=1.0),
                         "cpu": DPORecipe(steps=40, batch_size=16, lr=2e-5, sft_weight=1.0),
                         "gpu": DPORecipe(steps=150, batch_size=16, lr=2e-5, sft_weight=1.0)}


# Chapter 07's reward-KL frontier: DPO once per extra β (the assistant-dpo budget otherwise) and PPO once
# per extra KL coefficient (the assistant-ppo budget otherwise), beside assistant-dpo and assistant-ppo.
FRONTIER_BETAS = (0.03, 0.5)
FRONTIER_KL_COEFS = (0.01, 0.2)
# Chapter 07's variants on assistant-dpo's budget (pairs, steps, batch size, learning rate), without
# the SFT term: plain DPO, IPO, ORPO and KTO.
VARIANTS = ("dpo", "ipo", "orpo", "kto")


def _chats(pairs: Sequence[dict]):
    from datasets import Dataset
    return Dataset.from_list([{"prompt": [{"role": "user", "content": p["prompt"]}],
                               "chosen": [{"role": "assistant", "content": p["chosen"]}],
                               "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs])


def _trl_args(recipe: DPORecipe, out_dir, seed: int) -> dict:
    """The settings every preference trainer here shares: the recipe, linear decay after a short
    warmup, a log line per step, nothing saved or reported, CPU unless a GPU is there."""
    from ftlib.engine.hardware import pick_device
    return dict(output_dir=str(out_dir), beta=recipe.beta, max_steps=recipe.steps, learning_rate=recipe.lr,
                per_device_train_batch_size=recipe.batch_size, lr_scheduler_type="linear",
                warmup_steps=max(1, recipe.steps // 10), logging_steps=1, save_strategy="no", report_to=[],
                disable_tqdm=True, seed=seed, activation_checkpointing=False,
                use_cpu=pick_device().type == "cpu", bf16=pick_device().type == "cuda")


def dpo_trainer(model, tokenizer, pairs: Sequence[dict], recipe: DPORecipe, out_dir, *, ref_model=None, seed: int = 0):
    """TRL's ``DPOTrainer`` on ``pairs`` as chats, quiet and CPU-friendly (reference: a frozen copy)."""
    import datasets
    from transformers import PrinterCallback
    from trl import DPOConfig, DPOTrainer

    datasets.disable_progress_bars()
    loss_type, loss_weights = recipe.loss_types()
    cfg = DPOConfig(**_trl_args(recipe, out_dir, seed), loss_type=loss_type, loss_weights=loss_weights)
    trainer = DPOTrainer(model=model, ref_model=ref_model if ref_model is not None else fresh_copy(model).eval(),
                         args=cfg, train_dataset=_chats(pairs), processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)     # the logs stay in trainer.state.log_history, unprinted
    return trainer


# ---------------------------------------------------------------------------------------------
# The variants, on the same pairs and budget
# ---------------------------------------------------------------------------------------------
def preference_trainer(method: str, model, tokenizer, pairs: Sequence[dict], recipe: DPORecipe, out_dir, *,
                       seed: int = 0):
    """A TRL trainer for ``method`` on ``pairs``: "dpo" and "ipo" (``DPOTrainer`` loss types, with a
    frozen reference), "orpo" (``trl.experimental.orpo``: SFT loss plus an odds-ratio term, no
    reference model) or "kto" (``KTOTrainer``: each answer alone, labelled desirable or not)."""
    import warnings

    import datasets
    from datasets import Dataset
    from transformers import PrinterCallback

    if method in ("dpo", "ipo"):
        return dpo_trainer(model, tokenizer, pairs, replace(recipe, loss_type={"dpo": "sigmoid"}.get(method, method)),
                           out_dir, seed=seed)
    datasets.disable_progress_bars()
    common = _trl_args(recipe, out_dir, seed)
    if method == "orpo":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # "experimental" notices
            from trl.experimental.orpo import ORPOConfig, ORPOTrainer
        trainer = ORPOTrainer(model=model, args=ORPOConfig(**common, remove_unused_columns=False), train_dataset=_chats(pairs),
                              processing_class=tokenizer)
    elif method == "kto":
        from trl import KTOConfig, KTOTrainer
        rows = [{"prompt": [{"role": "user", "content": p["prompt"]}],
                 "completion": [{"role": "assistant", "content": p[key]}], "label": key == "chosen"}
                for p in pairs for key in ("chosen", "rejected")]
        trainer = KTOTrainer(model=model, ref_model=fresh_copy(model).eval(), args=KTOConfig(**common),
                             train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    else:
        raise ValueError(f"unknown method {method!r}: dpo, ipo, orpo or kto")
    trainer.remove_callback(PrinterCallback)
    return trainer
