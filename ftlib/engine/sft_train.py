"""The SFT runs behind the registry's checkpoints, built from :mod:`ftlib.engine.sft_data`'s pieces.

- ``course-sft``: :func:`train_course_sft`, full fine-tuning of the course base model on the train
  tasks: packed rows (examples kept apart), assistant-only loss, a share of general text replayed
  against forgetting, warmup and cosine decay (:data:`SFT_RECIPES`).
- ``smollm2-sft-lora``, the course assistant: SmolLM2-135M-Instruct with LoRA, trained with TRL's
  ``SFTTrainer`` (:func:`sft_trainer`) on the nine skill families (:data:`LORA_SFT_RECIPES`,
  :func:`assistant_rows`), early-stopped on validation exact match (:func:`train_with_early_stopping`).

Chapter 05 runs the same functions at a smaller budget to compare choices (masking, replay, EWC).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ftlib.cores.losses import causal_lm_loss
from ftlib.engine.sft_data import IGNORE, Encoded, chatml_template, collate, encode_chat, pack_examples, task_messages


# ---------------------------------------------------------------------------------------------
# course-sft
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SFTRecipe:
    steps: int            # optimiser steps
    rows: int             # packed rows per step
    row_len: int          # tokens per packed row
    lr: float             # peak learning rate (warmup, then cosine to 10%)
    warmup_steps: int
    replay: float         # share of examples drawn from general corpus text (against forgetting)
    eval_every: int       # validation loss (and exact match per family) every this many steps
    track_n: int = 0      # validation items per family scored at each evaluation of the build


SFT_RECIPES = {
    "smoke": SFTRecipe(steps=30, rows=4, row_len=128, lr=3e-3, warmup_steps=5, replay=0.2, eval_every=10, track_n=2),
    "cpu": SFTRecipe(steps=1800, rows=8, row_len=256, lr=2e-3, warmup_steps=50, replay=0.2, eval_every=300, track_n=20),
    "gpu": SFTRecipe(steps=4000, rows=32, row_len=512, lr=1e-3, warmup_steps=100, replay=0.2, eval_every=400, track_n=50),
}


def task_examples(tokenizer, rows: list[dict], *, template: str, max_length: int) -> list[Encoded]:
    """Task rows encoded as two-turn chats, labels on the answer (and its end-of-turn token)."""
    return [encode_chat(tokenizer, task_messages(r), template=template, max_length=max_length) for r in rows]


def corpus_examples(tokenizer, texts: list[str], max_length: int) -> list[Encoded]:
    """General text as ``<s> text </s>`` chunks of at most ``max_length`` tokens, every token a
    label: the replay data that keeps the pretraining skill alive."""
    out = []
    for text in texts:
        ids = [tokenizer.bos_token_id, *tokenizer.encode(text, add_special_tokens=False), tokenizer.eos_token_id]
        out += [Encoded(ids[i:i + max_length], ids[i:i + max_length], False)
                for i in range(0, len(ids) - 1, max_length)]
    return out


def mixed_batches(tasks: list[Encoded], general: list[Encoded], *, replay: float, rows: int,
                  row_len: int, pad_token_id: int, seed: int = 0):
    """``get_batch(step, micro)`` for :func:`ftlib.engine.train.train`: packed rows filled with task
    examples, and a ``replay`` share of general ones, drawn with a seed that depends on the step
    (so a batch is a function of the step, as in chapter 01)."""
    import random

    def get_batch(step: int, micro: int) -> dict:
        rng = random.Random(f"{seed}/{step}/{micro}")
        chosen, filled = [], 0
        while filled < rows * row_len * 0.95:
            pool = general if general and rng.random() < replay else tasks
            e = pool[rng.randrange(len(pool))]
            chosen.append(e)
            filled += len(e.input_ids)
        batch = pack_examples(chosen, row_len, pad_token_id)
        return {k: v[:rows] for k, v in batch.items()}
    return get_batch


def packed_loss(model, batch: dict) -> torch.Tensor:
    """Mean next-token loss of a packed batch: no KV cache, so transformers keeps examples apart."""
    return model(**batch, use_cache=False).loss


@torch.no_grad()
def examples_loss(model, examples: list[Encoded], pad_token_id: int, batch_size: int = 32) -> float:
    """Mean loss per labelled token over ``examples`` (right-padded batches, no packing)."""
    model.eval()
    total = count = 0.0
    for i in range(0, len(examples), batch_size):
        batch = collate(examples[i:i + batch_size], pad_token_id)
        batch = {k: v.to(model.device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labelled = (batch["labels"][:, 1:] != IGNORE).sum().item()
        total += causal_lm_loss(logits, batch["labels"]).item() * labelled    # mean -> sum, to weight by tokens
        count += labelled
    return total / max(1, count)


def course_sft_data(tokenizer, profile: str, seed: int = 0, near_threshold: float | None = None) -> dict:
    """Everything the course-sft recipe trains on: train-task examples, general corpus chunks
    (the course base model's own training documents: give the ``near_threshold`` it was cleaned
    with if not the default), and validation-task examples."""
    from ftlib.data import load_tasks
    from ftlib.engine.pretrain import documents

    recipe, template = SFT_RECIPES[profile], chatml_template()
    texts = documents(profile, seed, near_threshold=near_threshold)[0] if recipe.replay > 0 else []
    return {"template": template,
            "train": task_examples(tokenizer, load_tasks("train"), template=template, max_length=recipe.row_len),
            "val": task_examples(tokenizer, load_tasks("val"), template=template, max_length=recipe.row_len),
            "general": corpus_examples(tokenizer, texts, recipe.row_len)}


def train_course_sft(model, tokenizer, profile: str, seed: int = 0, *, recipe: SFTRecipe | None = None,
                     data: dict | None = None, loss_fn=None, track: Callable | None = None,
                     progress: bool = False) -> dict:
    """Full fine-tuning of the course base model on the train tasks (assistant-only loss, packed
    rows, ``recipe.replay`` general text); validation loss every ``eval_every`` steps.

    ``data`` (see :func:`course_sft_data`) and ``recipe`` default to the registry's; ``loss_fn``
    (default :func:`packed_loss`) can add a penalty such as :func:`ewc_penalty`. With ``track``, a
    function of the model (the registry passes exact match per family on a few validation items),
    every evaluation also records ``track(model)`` in ``history["family_em"]``, and the weights of
    the evaluation with the best mean score are put back at the end (early stopping; its step is
    ``history["best_step"]``)."""
    from ftlib.engine.hardware import seed_everything
    from ftlib.engine.train import TrainConfig, train

    recipe = recipe or SFT_RECIPES[profile]
    data = data or course_sft_data(tokenizer, profile, seed)
    seed_everything(seed)
    get_batch = mixed_batches(data["train"], data["general"], replay=recipe.replay, rows=recipe.rows,
                              row_len=recipe.row_len, pad_token_id=tokenizer.pad_token_id, seed=seed)
    cfg = TrainConfig(steps=recipe.steps, lr=recipe.lr, warmup_steps=recipe.warmup_steps,
                      weight_decay=0.0, eval_every=recipe.eval_every)
    family_em, best = [], BestWeights()

    def evaluate(m):
        if track:
            family_em.append(track(m))
            best.offer(m, family_em[-1], step=len(family_em))       # the evaluation's number, 1-based
        return examples_loss(m, data["val"], tokenizer.pad_token_id)
    history = train(model, get_batch, cfg, loss_fn=loss_fn or packed_loss, progress=progress, evaluate=evaluate)
    if track:
        history["family_em"] = family_em
        history["best_step"] = history["eval_step"][best.step - 1]
        best.restore(model)
    return history


class BestWeights:
    """Early stopping's memory: the trainable weights of the evaluation with the best mean score."""

    def __init__(self):
        self.score, self.step, self.state = -1.0, None, {}

    def offer(self, model, scores: dict, step) -> None:
        score = sum(scores.values()) / max(1, len(scores))
        if score > self.score:
            self.score, self.step = score, step
            self.state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    def restore(self, model) -> None:
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in self.state:
                    p.copy_(self.state[n])


# ---------------------------------------------------------------------------------------------
# "smollm2-sft-lora", the course assistant: SmolLM2-135M-Instruct + LoRA with TRL's SFTTrainer
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoraSFTRecipe:
    per_family: int       # training items per skill family (balanced; the knowledge families are left out)
    steps: int            # optimiser steps
    batch_size: int
    lr: float
    rank: int             # LoRA rank on every linear layer (alpha = 2 * rank)
    eval_every: int       # validation exact match every this many steps; the best step is kept
    track_n: int          # validation items per skill family at each of those evaluations
    eval_n: int           # test items per family (and training items per skill family) scored after the build


LORA_SFT_RECIPES = {
    "smoke": LoraSFTRecipe(per_family=4, steps=2, batch_size=2, lr=1e-3, rank=4, eval_every=1, track_n=1, eval_n=2),
    "cpu": LoraSFTRecipe(per_family=300, steps=300, batch_size=8, lr=1e-3, rank=32, eval_every=60, track_n=10,
                         eval_n=100),
    "gpu": LoraSFTRecipe(per_family=2500, steps=3000, batch_size=16, lr=5e-4, rank=32, eval_every=300, track_n=50,
                         eval_n=100),
}


def assistant_rows(per_family: int, seed: int = 0) -> list[dict]:
    """The assistant's training items: ``per_family`` from each skill family, shuffled with ``seed``."""
    import random

    from ftlib.data import first_per_family
    from ftlib.data.tasks import SKILL_FAMILIES
    rows = first_per_family("train", per_family, SKILL_FAMILIES)
    random.Random(seed).shuffle(rows)
    return rows


def sft_trainer(model, tokenizer, rows: list[dict], out_dir, *, steps: int, batch_size: int, lr: float,
                peft_config=None, eval_rows: list[dict] | None = None, eval_steps: int = 0, seed: int = 0,
                assistant_only: bool = True, progress: bool = False):
    """TRL's ``SFTTrainer`` on task rows as chats, quiet and CPU-friendly. With ``assistant_only``
    the loss counts only the assistant's tokens (the template in ``tokenizer.chat_template`` must
    carry ``{% generation %}`` markers); without, every token of the chat. ``progress`` shows the
    trainer's progress bar (the product builds do)."""
    import datasets
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from ftlib.engine.hardware import pick_device
    datasets.disable_progress_bars()
    as_chats = lambda rs: Dataset.from_list([{"messages": task_messages(r)} for r in rs])   # noqa: E731
    cfg = SFTConfig(output_dir=str(out_dir), assistant_only_loss=assistant_only, max_length=256, max_steps=steps,
                    per_device_train_batch_size=batch_size, per_device_eval_batch_size=32, learning_rate=lr,
                    lr_scheduler_type="cosine", warmup_steps=max(1, steps // 10), logging_steps=max(1, steps // 20),
                    eval_strategy="steps" if eval_rows else "no", eval_steps=eval_steps or None,
                    save_strategy="no", report_to=[], disable_tqdm=not progress, seed=seed,
                    # TRL turns activation checkpointing on by default: it saves memory on big models
                    # and costs a second forward pass, which a small model on a CPU does not need
                    activation_checkpointing=False,
                    use_cpu=pick_device().type == "cpu", bf16=pick_device().type == "cuda")
    trainer = SFTTrainer(model=model, args=cfg, processing_class=tokenizer, peft_config=peft_config,
                         train_dataset=as_chats(rows), eval_dataset=as_chats(eval_rows) if eval_rows else None)
    trainer.remove_callback(PrinterCallback)     # the logs stay in trainer.state.log_history, unprinted
    return trainer


def train_with_early_stopping(trainer, track: Callable, eval_every: int) -> dict:
    """``trainer.train()`` with ``track(model)`` (a dict of scores per family, e.g. validation exact
    match) every ``eval_every`` steps and at the end; the trainable weights of the step with the
    best mean score are put back at the end (early stopping on what we care about, not on the loss).

    Returns ``{"step": [...], "family_em": [...], "best_step": int}``.
    """
    from transformers import TrainerCallback

    model = trainer.model
    history, best = {"step": [], "family_em": []}, BestWeights()

    def evaluate(step):
        was_training = model.training
        model.eval()
        scores = track(model)
        model.train(was_training)
        history["step"].append(step)
        history["family_em"].append(scores)
        best.offer(model, scores, step)

    class Track(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % eval_every == 0 and state.global_step < state.max_steps:
                evaluate(state.global_step)

    trainer.add_callback(Track())
    trainer.train()
    evaluate(trainer.state.global_step)
    history["best_step"] = best.step
    if best.step != trainer.state.global_step:
        best.restore(model)
    return history


# ---------------------------------------------------------------------------------------------
# Forgetting: elastic weight consolidation (Kirkpatrick et al. 2017)
# ---------------------------------------------------------------------------------------------
def fisher_diagonal(model, examples, loss_fn=None) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher information of the trainable parameters: the mean over
    ``examples`` of the squared gradient of *each example's* loss. Large where the old task's loss
    is sensitive to a weight.

    Each item of ``examples`` is a batch holding exactly one example (a ValueError says otherwise):
    squaring the gradient of a batch *mean* instead cancels the examples' disagreeing signs before
    squaring and underestimates the Fisher roughly batch-size-fold, which then has to be made up
    with an inflated λ. ``loss_fn(model, batch)`` defaults to ``model(**batch).loss`` (the mean loss
    over the example's tokens).
    """
    loss_fn = loss_fn or (lambda m, b: m(**b).loss)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    examples = list(examples)
    for i, example in enumerate(examples):
        rows = len(example["input_ids"])
        if rows != 1:
            raise ValueError(f"fisher_diagonal: example {i} is a batch of {rows} rows; the empirical Fisher "
                             "needs one example per gradient (pass batches of one)")
        model.zero_grad(set_to_none=True)
        loss_fn(model, example).backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2 / len(examples)
    model.zero_grad(set_to_none=True)
    return fisher


def ewc_penalty(model, anchor: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor],
                strength: float) -> torch.Tensor:
    """EWC's penalty (eq. 3): strength/2 · Σ F_i (θ_i - θ*_i)², with θ* the weights before the new task.

    Add it to the new task's loss: weights the old task needs (large F) are pulled back to θ*.
    """
    total = torch.zeros(())
    for n, p in model.named_parameters():
        if n in fisher:
            total = total + (fisher[n] * (p - anchor[n]) ** 2).sum()
    return strength / 2 * total
