"""Supervised fine-tuning data: chat templates for training, assistant-only labels, padding, packing.

One version of what every fine-tuning chapter needs (03, 04, 05 and later):

- :func:`chatml_template`: ChatML as a Jinja template with ``{% generation %}`` markers around what
  the assistant writes, so ``apply_chat_template(..., return_assistant_tokens_mask=True)`` (and TRL's
  ``assistant_only_loss=True``) know which tokens to train on. With SmolLM2's default system turn it
  renders exactly SmolLM2's own template, so training and inference see the same text.
- :func:`encode_chat`: token ids and labels for one conversation, -100 on every token the model
  should not learn to write (system, user, the role headers).
- :func:`collate`: right-padded batches. :func:`pack`: several examples per row, each with its own
  positions, so that attention stays inside each example (transformers turns restarting
  ``position_ids`` into a block-diagonal mask; :func:`block_diagonal_mask` builds it by hand).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
IGNORE = -100  # the label cross-entropy skips


def chatml_template(default_system: str | None = None) -> str:
    """ChatML with generation markers; ``default_system`` is added when a chat has no system turn.

    ``chatml_template(SMOLLM2_SYSTEM)`` renders the same text as SmolLM2's own template.
    """
    system = ""
    if default_system:
        system = ("{% if loop.first and messages[0]['role'] != 'system' %}"
                  "{{ '<|im_start|>system\\n" + default_system.replace("'", "\\'") + "<|im_end|>\\n' }}{% endif %}")
    return ("{% for message in messages %}" + system +
            "{% if message['role'] == 'assistant' %}"
            "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
            "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}"
            "{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def task_messages(row: dict) -> list[dict]:
    """A task row (prompt, answer) as a two-turn chat."""
    return [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["answer"]}]


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]          # IGNORE except on the assistant's tokens
    truncated: bool            # True if max_length cut the conversation


def encode_chat(tokenizer, messages: list[dict], *, template: str, max_length: int) -> Encoded:
    """Token ids of ``messages`` rendered with ``template``, and labels only on assistant tokens.

    Longer conversations are cut at ``max_length`` from the right (the prompt is kept; the end of
    the answer is lost), and ``truncated`` says so.
    """
    enc = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    ids, mask = list(enc["input_ids"]), list(enc["assistant_masks"])
    if not any(mask):
        raise ValueError("no assistant tokens: the template needs {% generation %} markers and the chat an "
                         "assistant turn")
    labels = [t if m else IGNORE for t, m in zip(ids, mask)]
    return Encoded(ids[:max_length], labels[:max_length], len(ids) > max_length)


def collate(examples: list[Encoded], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example: input_ids, attention_mask and labels, each (B, T)."""
    width = max(len(e.input_ids) for e in examples)
    batch = {"input_ids": torch.full((len(examples), width), pad_token_id),
             "attention_mask": torch.zeros((len(examples), width), dtype=torch.long),
             "labels": torch.full((len(examples), width), IGNORE)}
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        batch["input_ids"][i, :n] = torch.tensor(e.input_ids)
        batch["attention_mask"][i, :n] = 1
        batch["labels"][i, :n] = torch.tensor(e.labels)
    return batch


def pack(examples: list[Encoded], max_length: int, pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pack examples into rows of ``max_length`` tokens (in order, a new row when one is full).

    Returns input_ids, labels and position_ids, each (rows, max_length). Positions restart at 0
    for every example, which tells the model where one example ends; there is no attention_mask,
    so transformers builds the block-diagonal causal mask from the positions, **but only when no
    KV cache exists**: call the model with ``use_cache=False`` (transformers 5.23 creates a cache
    by default, even in train mode, and then lets packed examples attend to each other), or pass
    ``attention_mask=block_diagonal_mask(position_ids)``. The padding at the end of a row is a
    block of its own, with labels IGNORE.
    """
    rows, row = [], []
    for e in examples:
        if len(e.input_ids) > max_length:
            raise ValueError(f"an example of {len(e.input_ids)} tokens cannot fit a row of {max_length}")
        if sum(len(x.input_ids) for x in row) + len(e.input_ids) > max_length:
            rows.append(row)
            row = []
        row.append(e)
    rows.append(row)
    batch = {"input_ids": torch.full((len(rows), max_length), pad_token_id),
             "labels": torch.full((len(rows), max_length), IGNORE),
             "position_ids": torch.zeros((len(rows), max_length), dtype=torch.long)}
    for i, row in enumerate(rows):
        start = 0
        for e in row:
            n = len(e.input_ids)
            batch["input_ids"][i, start:start + n] = torch.tensor(e.input_ids)
            batch["labels"][i, start:start + n] = torch.tensor(e.labels)
            batch["position_ids"][i, start:start + n] = torch.arange(n)
            start += n
        batch["position_ids"][i, start:] = torch.arange(max_length - start)
    return batch


def block_diagonal_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """The attention mask packing needs, from scratch: (B, T) positions -> (B, 1, T, T) booleans.

    Token q may attend to token k iff both belong to the same example (a new example starts
    wherever the position does not follow the previous one) and k <= q.
    """
    starts = torch.ones_like(position_ids, dtype=torch.bool)
    starts[:, 1:] = position_ids[:, 1:] != position_ids[:, :-1] + 1
    example = starts.cumsum(-1)                                         # (B, T) example index
    same = example[:, :, None] == example[:, None, :]                   # (B, T, T)
    T = position_ids.shape[1]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool, device=position_ids.device))
    return (same & causal)[:, None]


def padding_waste(examples: list[Encoded], batch_size: int) -> float:
    """Share of the tokens in right-padded batches of ``batch_size`` (in order) that are padding."""
    real = padded = 0
    for i in range(0, len(examples), batch_size):
        lengths = [len(e.input_ids) for e in examples[i:i + batch_size]]
        real += sum(lengths)
        padded += max(lengths) * len(lengths)
    return 1 - real / padded


# ---------------------------------------------------------------------------------------------
# Forgetting: elastic weight consolidation (Kirkpatrick et al. 2017)
# ---------------------------------------------------------------------------------------------
def fisher_diagonal(model, batches, loss_fn=None) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher information of the trainable parameters: the mean over ``batches``
    of the squared gradient of the loss. Large where the old task's loss is sensitive to a weight.

    ``loss_fn(model, batch)`` defaults to ``model(**batch).loss``.
    """
    loss_fn = loss_fn or (lambda m, b: m(**b).loss)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    batches = list(batches)
    for batch in batches:
        model.zero_grad(set_to_none=True)
        loss_fn(model, batch).backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2 / len(batches)
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


# ---------------------------------------------------------------------------------------------
# The SFT recipe behind the registry's "course-sft" (chapter 05 teaches each piece)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SFTRecipe:
    steps: int            # optimiser steps
    rows: int             # packed rows per step
    row_len: int          # tokens per packed row
    lr: float             # peak learning rate (warmup, then cosine to 10%)
    warmup_steps: int
    replay: float         # share of examples drawn from general corpus text (against forgetting)
    eval_every: int       # validation loss every this many steps


SFT_RECIPES = {
    "smoke": SFTRecipe(steps=30, rows=4, row_len=128, lr=3e-3, warmup_steps=5, replay=0.2, eval_every=10),
    "cpu": SFTRecipe(steps=1500, rows=8, row_len=256, lr=2e-3, warmup_steps=50, replay=0.2, eval_every=100),
    "gpu": SFTRecipe(steps=4000, rows=32, row_len=512, lr=1e-3, warmup_steps=100, replay=0.2, eval_every=200),
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
    """``get_batch(step, micro)`` for :func:`ftlib.train.train`: packed rows filled with task
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
        batch = pack(chosen, row_len, pad_token_id)
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
        labels = batch["labels"][:, 1:]
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels.flatten(),
                                                 ignore_index=IGNORE, reduction="sum")
        total += loss.item()
        count += (labels != IGNORE).sum().item()
    return total / max(1, count)


def course_sft_data(tokenizer, profile: str, seed: int = 0) -> dict:
    """Everything the course-sft recipe trains on: train-task examples, general corpus chunks
    (the course base model's own training documents), and validation-task examples."""
    from ftlib.data import load_tasks
    from ftlib.pretrain import documents

    recipe, template = SFT_RECIPES[profile], chatml_template()
    texts = documents(profile, seed)[0] if recipe.replay > 0 else []
    return {"template": template,
            "train": task_examples(tokenizer, load_tasks("train"), template=template, max_length=recipe.row_len),
            "val": task_examples(tokenizer, load_tasks("val"), template=template, max_length=recipe.row_len),
            "general": corpus_examples(tokenizer, texts, recipe.row_len)}


def train_course_sft(model, tokenizer, profile: str, seed: int = 0, *, recipe: SFTRecipe | None = None,
                     data: dict | None = None, progress: bool = False) -> dict:
    """Full fine-tuning of the course base model on the train tasks (assistant-only loss, packed
    rows, ``recipe.replay`` general text); validation loss every ``eval_every`` steps."""
    from ftlib.hardware import seed_everything
    from ftlib.train import TrainConfig, train

    recipe = recipe or SFT_RECIPES[profile]
    data = data or course_sft_data(tokenizer, profile, seed)
    seed_everything(seed)
    get_batch = mixed_batches(data["train"], data["general"], replay=recipe.replay, rows=recipe.rows,
                              row_len=recipe.row_len, pad_token_id=tokenizer.pad_token_id, seed=seed)
    cfg = TrainConfig(steps=recipe.steps, lr=recipe.lr, warmup_steps=recipe.warmup_steps,
                      weight_decay=0.0, eval_every=recipe.eval_every)
    return train(model, get_batch, cfg, loss_fn=packed_loss, progress=progress,
                 evaluate=lambda m: examples_loss(m, data["val"], tokenizer.pad_token_id))


def build_course_sft(out_dir, *, profile: str, seed: int, needs: dict) -> None:
    """What ``load_model("course-sft")`` builds when the cache lacks it: the course base model
    (``needs["course-base"]``) after :func:`train_course_sft`, saved with its chat template."""
    import json
    from pathlib import Path

    from ftlib.models import _quiet_transformers, from_pretrained
    model, tokenizer = from_pretrained(str(needs["course-base"]))
    tokenizer.chat_template = chatml_template()
    history = train_course_sft(model, tokenizer, profile, seed)
    _quiet_transformers()
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (Path(out_dir) / "sft.json").write_text(json.dumps(history))


# ---------------------------------------------------------------------------------------------
# "smollm2-sft-lora": SmolLM2-135M-Instruct + LoRA with TRL's SFTTrainer, on the families it fails
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoraSFTRecipe:
    probe_n: int          # validation items per family to find the families SmolLM2 fails (< 50%)
    per_family: int       # train rows per failing family
    steps: int            # optimiser steps
    batch_size: int
    lr: float
    rank: int             # LoRA rank on every linear layer (alpha = 2 * rank)


LORA_SFT_RECIPES = {
    "smoke": LoraSFTRecipe(probe_n=2, per_family=4, steps=2, batch_size=2, lr=1e-3, rank=4),
    "cpu": LoraSFTRecipe(probe_n=20, per_family=100, steps=120, batch_size=8, lr=1e-3, rank=16),
    "gpu": LoraSFTRecipe(probe_n=50, per_family=400, steps=600, batch_size=16, lr=5e-4, rank=16),
}


def sft_trainer(model, tokenizer, rows: list[dict], out_dir, *, steps: int, batch_size: int, lr: float,
                peft_config=None, eval_rows: list[dict] | None = None, eval_steps: int = 0, seed: int = 0):
    """TRL's ``SFTTrainer`` on task rows as chats, assistant-only loss (the template in
    ``tokenizer.chat_template`` must carry ``{% generation %}`` markers), quiet and CPU-friendly."""
    import datasets
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from ftlib.hardware import pick_device
    datasets.disable_progress_bars()
    as_chats = lambda rs: Dataset.from_list([{"messages": task_messages(r)} for r in rs])   # noqa: E731
    cfg = SFTConfig(output_dir=str(out_dir), assistant_only_loss=True, max_length=256, max_steps=steps,
                    per_device_train_batch_size=batch_size, per_device_eval_batch_size=32, learning_rate=lr,
                    lr_scheduler_type="cosine", warmup_steps=max(1, steps // 10), logging_steps=max(1, steps // 20),
                    eval_strategy="steps" if eval_rows else "no", eval_steps=eval_steps or None,
                    save_strategy="no", report_to=[], disable_tqdm=True, seed=seed,
                    use_cpu=pick_device().type == "cpu", bf16=pick_device().type == "cuda")
    return SFTTrainer(model=model, args=cfg, processing_class=tokenizer, peft_config=peft_config,
                      train_dataset=as_chats(rows), eval_dataset=as_chats(eval_rows) if eval_rows else None)


def build_smollm2_sft_lora(out_dir, *, profile: str, seed: int, needs: dict) -> None:
    """Find the families SmolLM2 fails on validation items, then LoRA-SFT it on their train rows.
    Saves the adapter, the tokenizer with the training template, and ``lora_sft.json``."""
    import json
    import tempfile
    from pathlib import Path

    from peft import LoraConfig

    from ftlib.data import FAMILIES, load_tasks
    from ftlib.evaluate import exact_match
    from ftlib.hardware import pick_device, seed_everything
    from ftlib.models import _quiet_transformers, from_pretrained

    recipe = LORA_SFT_RECIPES[profile]
    model, tokenizer = from_pretrained(str(needs["smollm2-135m"]), device=pick_device())
    tokenizer.chat_template = chatml_template(SMOLLM2_SYSTEM)       # same text, plus generation markers
    probe = [r for f in FAMILIES for r in load_tasks("val", [f])[:recipe.probe_n]]
    before = exact_match(model, tokenizer, probe).by_family()
    failing = [f for f, acc in before.items() if acc.value < 0.5] or list(before)
    rows = [r for f in failing for r in load_tasks("train", [f])[:recipe.per_family]]
    seed_everything(seed)
    lora = LoraConfig(r=recipe.rank, lora_alpha=2 * recipe.rank, target_modules="all-linear", lora_dropout=0.0,
                      task_type="CAUSAL_LM")
    with tempfile.TemporaryDirectory() as tmp:
        trainer = sft_trainer(model, tokenizer, rows, tmp, steps=recipe.steps, batch_size=recipe.batch_size,
                              lr=recipe.lr, peft_config=lora, seed=seed)
        trainer.train()
    _quiet_transformers()
    trainer.model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (Path(out_dir) / "lora_sft.json").write_text(json.dumps({
        "failing_families": failing, "probe_before": {f: a.as_dict() for f, a in before.items()},
        "log_history": trainer.state.log_history}))
