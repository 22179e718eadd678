"""Chapter 04's QLoRA run: SmolLM2 in NF4 through bitsandbytes, LoRA on every linear layer, one family.

The chapter trains it beside 16-bit LoRA on the same batches and measures both; the product
``smollm2-qlora`` (:mod:`ftlib.products.catalog`) is the QLoRA adapter of the same run, kept by
name so chapter 08 can put it on its scoreboard. The pieces:

- :class:`QLoRARecipe` / :data:`QLORA_RECIPES`: the task family, steps, batch, rank and learning rate;
- :func:`task_batches`: each training row encoded as a chat with SmolLM2's own template (its system
  turn), labels on the answer only, and the batch of optimiser step ``k`` drawn with a seed, so two
  methods see the same rows;
- :func:`load_4bit`: the base in NF4 (optionally double-quantized) via ``BitsAndBytesConfig``;
- :func:`lora_config`, :func:`make_optimizer` (paged 8-bit AdamW on a GPU, AdamW on a CPU);
- :func:`train_qlora`: all of it, returning the PEFT model and its loss history.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ftlib.engine import sft_data
from ftlib.engine.train import TrainConfig, train


@dataclass(frozen=True)
class QLoRARecipe:
    steps: int
    batch_size: int
    max_len: int                 # tokens per example; a longer one loses the tail of its answer
    rank: int = 16               # LoRA rank; alpha = 2 * rank, every linear layer
    lr: float = 2e-4
    family: str = "extract_json"
    double_quant: bool = True    # quantize the absmax constants too (QLoRA's default)


QLORA_RECIPES = {"smoke": QLoRARecipe(steps=1, batch_size=2, max_len=96),
                 "cpu": QLoRARecipe(steps=24, batch_size=4, max_len=128),
                 "gpu": QLoRARecipe(steps=300, batch_size=16, max_len=128)}


def chat_template() -> str:
    """SmolLM2's chat template, system turn included, with generation markers: what the run trains on."""
    return sft_data.chatml_template(sft_data.SMOLLM2_SYSTEM)


def task_batches(tokenizer, rows: Sequence[dict], *, batch_size: int, max_len: int,
                 seed: int = 0) -> tuple[Callable, Callable]:
    """``(encode, get_batch)``: ``encode(row)`` is the row as a chat (:func:`chat_template`), labels on
    the answer and its ``<|im_end|>``, cut at ``max_len`` tokens; ``get_batch(step, micro)`` the
    right-padded batch of optimiser step ``step``, the same rows for any method with this ``seed``."""
    template = chat_template()

    def encode(row):
        return sft_data.encode_chat(tokenizer, sft_data.task_messages(row), template=template, max_length=max_len)

    def get_batch(step, micro):
        g = torch.Generator().manual_seed(seed * 100_003 + step)
        picked = [rows[i] for i in torch.randint(len(rows), (batch_size,), generator=g)]
        return sft_data.collate([encode(r) for r in picked], tokenizer.pad_token_id)
    return encode, get_batch


def lora_config(rank: int):
    """PEFT's LoRA on every linear layer, alpha = 2 r, no dropout."""
    from peft import LoraConfig
    return LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")


def load_4bit(path: str, *, double_quant: bool, dtype: torch.dtype, device: torch.device,
              gradient_checkpointing: bool = False):
    """The model at ``path`` in NF4 through bitsandbytes, on ``device``, computing in ``dtype``,
    prepared for training adapters (``prepare_model_for_kbit_training``)."""
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from ftlib.engine.models import quiet_transformers
    quiet_transformers()
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                bnb_4bit_use_double_quant=double_quant, bnb_4bit_compute_dtype=dtype)
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=config, dtype=dtype,
                                                 device_map={"": str(device)})
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)


def make_optimizer(model, lr: float):
    """Paged 8-bit AdamW on a GPU (``bitsandbytes``), plain AdamW on a CPU, over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if next(model.parameters()).device.type == "cuda":
        import bitsandbytes as bnb
        return bnb.optim.PagedAdamW8bit(params, lr=lr, betas=(0.9, 0.95))
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.0)


def train_config(recipe: QLoRARecipe, steps: int | None = None) -> TrainConfig:
    """The run's schedule: warmup over a tenth of the steps, no weight decay."""
    steps = steps or recipe.steps
    return TrainConfig(steps=steps, lr=recipe.lr, warmup_steps=max(1, steps // 10), weight_decay=0.0)


def train_qlora(path: str, tokenizer, recipe: QLoRARecipe, *, seed: int, dtype: torch.dtype,
                device: torch.device, gradient_checkpointing: bool = False):
    """QLoRA on ``recipe.family``'s training rows: the base at ``path`` in NF4, LoRA on every linear
    layer, :func:`task_batches` with ``seed``: ``(PEFT model, loss history)``."""
    from peft import get_peft_model

    from ftlib.data import load_tasks
    from ftlib.engine.hardware import seed_everything
    seed_everything(seed)
    _, get_batch = task_batches(tokenizer, load_tasks("train", families=[recipe.family]),
                                batch_size=recipe.batch_size, max_len=recipe.max_len, seed=seed)
    model = get_peft_model(load_4bit(path, double_quant=recipe.double_quant, dtype=dtype, device=device,
                                     gradient_checkpointing=gradient_checkpointing), lora_config(recipe.rank))
    history = train(model, get_batch, train_config(recipe), optimizer=make_optimizer(model, recipe.lr), progress=False)
    return model, history
