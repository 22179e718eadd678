"""Pretraining the course base model: tokenizer, packing, and the run chapter 01 teaches.

``build_base_model(out_dir, profile=..., seed=...)`` is what :func:`ftlib.products.registry.model_dir`
calls (for ``"course-base"``) when a notebook needs the course base model and the cache does not have it yet:

1. clean the generated corpus with :func:`ftlib.cores.cleaning.clean` (filters, dedup, PII masked),
2. train a byte-level BPE tokenizer on them with ``tokenizers``,
3. pack documents into fixed-length rows ``<s> doc </s> <s> doc ...``,
4. pretrain a tiny Llama (:data:`ftlib.engine.models.TINY_CONFIGS`) with :func:`ftlib.engine.train.train`,
5. save model (safetensors) + tokenizer + ``pretrain.json`` (history, validation loss).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]  # ids 0..4


@dataclass(frozen=True)
class PretrainConfig:
    steps: int            # optimiser steps
    batch_size: int       # rows per step
    seq_len: int          # tokens per row
    lr: float             # peak learning rate
    warmup_steps: int     # linear warmup
    val_fraction: float   # share of documents held out for validation


PRETRAIN_CONFIGS = {
    "smoke": PretrainConfig(steps=40, batch_size=8, seq_len=64, lr=1e-2, warmup_steps=5, val_fraction=0.05),
    "cpu": PretrainConfig(steps=300, batch_size=16, seq_len=128, lr=2e-3, warmup_steps=20, val_fraction=0.05),
    "gpu": PretrainConfig(steps=2000, batch_size=64, seq_len=256, lr=1e-3, warmup_steps=100, val_fraction=0.05),
}


def oracle_clean(corpus: list[dict]) -> list[str]:
    """Texts of the documents whose ground-truth label list is empty.

    This uses the labels the generator planted, i.e. perfect cleaning. Chapter 01 builds the
    real cleaning pipeline (dedup, filters, PII masking) and scores it against these labels.
    """
    return [row["text"] for row in corpus if not row["labels"]]


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained with ``tokenizers``, wrapped for transformers.

    Byte-level means every string (Chinese included) encodes without an unknown token.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    # tokenizer(text) starts with <s>, as in pretraining; pack_documents() adds its own <s> ... </s>.
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", model_max_length=4096)


def pack_documents(texts: list[str], tokenizer, seq_len: int) -> torch.Tensor:
    """Concatenate ``<s> text </s>`` for every text and cut into rows of ``seq_len`` tokens.

    Returns a LongTensor of shape (rows, seq_len); the ragged tail is dropped.
    """
    ids: list[int] = []
    for text in texts:
        ids += [tokenizer.bos_token_id, *tokenizer.encode(text, add_special_tokens=False),
                tokenizer.eos_token_id]
    rows = len(ids) // seq_len
    return torch.tensor(ids[: rows * seq_len], dtype=torch.long).view(rows, seq_len)


@torch.no_grad()
def mean_loss(model, rows: torch.Tensor, batch_size: int = 32) -> float:
    """Mean next-token cross-entropy of ``model`` over packed ``rows`` (nats per token)."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(rows), batch_size):
        x = rows[i:i + batch_size].to(device)
        total += model(input_ids=x, labels=x).loss.item() * x.numel()
        count += x.numel()
    return total / max(1, count)


def split_documents(texts: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Shuffle documents with ``seed`` and hold out ``val_fraction`` of them (at least one)."""
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, int(len(texts) * val_fraction))
    return [texts[i] for i in order[n_val:]], [texts[i] for i in order[:n_val]]


def documents(profile: str, seed: int = 0, texts: list[str] | None = None,
              near_threshold: float | None = None) -> tuple[list[str], list[str]]:
    """The base model's (train, validation) documents; ``texts`` defaults to the generated corpus
    cleaned by chapter 01's pipeline (filters, dedup at ``near_threshold``, default
    :data:`ftlib.cores.cleaning.NEAR_THRESHOLD`, PII masked). Later chapters measure forgetting on
    the validation documents, which no model has trained on."""
    if texts is None:
        from ftlib.cores.cleaning import NEAR_THRESHOLD, clean
        from ftlib.data import load_corpus
        texts = [row["text"] for row in clean(load_corpus(), near_threshold=near_threshold or NEAR_THRESHOLD)[0]]
    return split_documents(texts, PRETRAIN_CONFIGS[profile].val_fraction, seed)


def prepare_data(profile: str, seed: int = 0, texts: list[str] | None = None) -> dict:
    """Split, train the tokenizer, pack. ``texts`` defaults to the cleaned generated corpus.

    Returns ``{"tokenizer", "train_rows", "val_rows", "train_texts", "val_texts"}``; rows are
    LongTensors of shape (rows, seq_len).
    """
    from ftlib.engine.models import TINY_CONFIGS
    cfg = PRETRAIN_CONFIGS[profile]
    train_texts, val_texts = documents(profile, seed, texts)
    tokenizer = train_tokenizer(train_texts, TINY_CONFIGS[profile].vocab_size)
    return {"tokenizer": tokenizer, "train_texts": train_texts, "val_texts": val_texts,
            "train_rows": pack_documents(train_texts, tokenizer, cfg.seq_len),
            "val_rows": pack_documents(val_texts, tokenizer, cfg.seq_len)}


def init_model(profile: str, tokenizer, seed: int = 0):
    """A freshly initialised tiny Llama for ``profile``, seeded, on the profile's device."""
    from ftlib.engine.hardware import pick_device, seed_everything
    from ftlib.engine.models import TINY_CONFIGS, tiny_llama
    seed_everything(seed)
    model = tiny_llama(TINY_CONFIGS[profile], bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return model.to(pick_device(profile))


def batch_fn(train_rows: torch.Tensor, batch_size: int, seed: int = 0):
    """``get_batch(step, micro)`` for :func:`ftlib.engine.train.train`: a batch is a function of the step.

    One fixed permutation of the rows, walked through in order (wrapping around), so a resumed
    run sees exactly the batches the interrupted one would have.
    """
    perm = torch.randperm(len(train_rows), generator=torch.Generator().manual_seed(seed))

    def get_batch(step: int, micro: int) -> dict:
        idx = [(step * batch_size + i) % len(train_rows) for i in range(batch_size)]
        x = train_rows[perm[idx]]
        return {"input_ids": x, "labels": x}
    return get_batch


def train_config(profile: str, **overrides):
    """The :class:`ftlib.engine.train.TrainConfig` of the base-model run for ``profile``."""
    from ftlib.engine.train import TrainConfig
    cfg = PRETRAIN_CONFIGS[profile]
    values = dict(steps=cfg.steps, lr=cfg.lr, warmup_steps=cfg.warmup_steps,
                  eval_every=max(1, cfg.steps // 10))
    return TrainConfig(**{**values, **overrides})


def save_base_model(out_dir: str | Path, model, tokenizer, history: dict, *, profile: str, seed: int) -> dict:
    """Save model (safetensors) + tokenizer + ``pretrain.json``; returns the completed history."""
    from ftlib.engine.models import TINY_CONFIGS, quiet_transformers
    quiet_transformers()  # no "Writing model shards" bar in the notebooks
    tiny = TINY_CONFIGS[profile]
    history = dict(history)
    history["val_loss"] = history["eval"][-1]
    history["ln_vocab"] = math.log(tiny.vocab_size)
    history["profile"], history["seed"] = profile, seed
    history["pretrain_config"], history["model_config"] = asdict(PRETRAIN_CONFIGS[profile]), asdict(tiny)
    out_dir = Path(out_dir)
    model.to("cpu").save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "pretrain.json").write_text(json.dumps(history))
    return history


def build_base_model(out_dir: str | Path, *, profile: str, seed: int = 0,
                     texts: list[str] | None = None, steps: int | None = None, progress: bool = True) -> dict:
    """Pretrain the course base model for ``profile`` and save it in ``out_dir``.

    ``texts`` defaults to the generated corpus cleaned by :func:`ftlib.cores.cleaning.clean` (chapter 01's
    pipeline, PII masked); ``steps`` defaults to the profile's. Returns the training history plus ``val_loss`` (also written to
    ``out_dir/pretrain.json``) and ``train_rows``, the token rows it trained on.
    """
    from ftlib.engine.train import train

    data = prepare_data(profile, seed, texts)
    model = init_model(profile, data["tokenizer"], seed)
    get_batch = batch_fn(data["train_rows"], PRETRAIN_CONFIGS[profile].batch_size, seed)
    history = train(model, get_batch, train_config(profile, **({"steps": steps} if steps else {})),
                    evaluate=lambda m: mean_loss(m, data["val_rows"]), progress=progress)
    history = save_base_model(out_dir, model, data["tokenizer"], history, profile=profile, seed=seed)
    history["train_rows"] = data["train_rows"]          # what it trained on (the registry hashes it)
    return history
