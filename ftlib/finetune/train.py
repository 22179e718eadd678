"""The capstone's training: the model the config names, set up for its method, trained with TRL.

- ``sft``: every weight, TRL's ``SFTTrainer`` (chapter 05), loss on the assistant's tokens only;
- ``lora``: the same with PEFT's LoRA (chapter 03); ``qlora``: LoRA on the base loaded in NF4 by
  bitsandbytes (chapter 04, :func:`ftlib.engine.qlora.load_4bit`);
- ``dpo``: TRL's ``DPOTrainer`` on the pairs (chapter 07), with a LoRA adapter (its reference model is
  the base with the adapter switched off) or on every weight (a frozen copy as the reference).

Checkpoints go to ``<run>/checkpoints`` every ``train.save_every`` steps (model, optimizer, scheduler
and random states), so ``resume=True`` continues from the last one with the same data order.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from transformers import PrinterCallback, ProgressCallback

from ftlib.finetune.config import FinetuneConfig
from ftlib.finetune.prepare import Data


class Interrupted(Exception):
    """Training stopped after a checkpoint (``stop_after``: tests and demos of ``--resume``)."""

    def __init__(self, step: int):
        super().__init__(f"interrupted after the checkpoint at step {step}: run again with resume to continue")
        self.step = step


def total_steps(cfg: FinetuneConfig, n_train: int) -> int:
    """Optimizer steps: ``train.steps``, or ``train.epochs`` passes over ``n_train`` examples."""
    if cfg.train.steps:
        return cfg.train.steps
    per_step = cfg.train.batch_size * cfg.train.grad_accum
    return max(1, math.ceil(cfg.train.epochs * n_train / per_step))


def use_bf16(cfg: FinetuneConfig, device) -> bool:
    """bf16 when asked, or with ``auto`` on a GPU that has it (T4 and V100 do not: fp32 there)."""
    auto = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return cfg.train.precision == "bf16" or (cfg.train.precision == "auto" and auto)


def lora_config(cfg: FinetuneConfig):
    from peft import LoraConfig
    m = cfg.method
    return LoraConfig(r=m.r, lora_alpha=m.alpha, lora_dropout=m.dropout, task_type="CAUSAL_LM",
                      target_modules=m.target_modules)


def load_start(cfg: FinetuneConfig, path: str, device):
    """The model training starts from: fp32 weights on ``device``, or NF4 for qlora."""
    from ftlib.engine.models import from_pretrained
    from ftlib.engine.qlora import load_4bit
    if cfg.method.name == "qlora":
        dtype = torch.bfloat16 if use_bf16(cfg, device) else torch.float32
        return load_4bit(path, double_quant=True, dtype=dtype, device=device)
    model, _ = from_pretrained(path, device=device)
    return model.train()


def _common_args(cfg: FinetuneConfig, out: Path, steps: int, device, progress: bool, has_validation: bool) -> dict:
    save_every = cfg.train.save_every or max(1, steps // 4)
    return dict(output_dir=str(out), max_steps=steps, per_device_train_batch_size=cfg.train.batch_size,
                per_device_eval_batch_size=max(cfg.train.batch_size, 8),
                gradient_accumulation_steps=cfg.train.grad_accum, learning_rate=cfg.train.lr,
                lr_scheduler_type=cfg.train.schedule, warmup_steps=round(cfg.train.warmup * steps),
                logging_steps=1, save_strategy="steps", save_steps=save_every, save_total_limit=1,
                eval_strategy="steps" if has_validation else "no", eval_steps=save_every if has_validation else None,
                report_to=[], disable_tqdm=not progress, seed=cfg.train.seed, data_seed=cfg.train.seed,
                activation_checkpointing=False, use_cpu=device.type == "cpu", bf16=use_bf16(cfg, device),
                max_length=cfg.data.max_length)


def _sft_rows(examples):
    from datasets import Dataset
    return Dataset.from_list([{"messages": e.chat()} for e in examples])


def _pair_rows(examples):
    from datasets import Dataset
    return Dataset.from_list([{"prompt": e.messages, "chosen": [{"role": "assistant", "content": e.answer}],
                               "rejected": [{"role": "assistant", "content": e.rejected}]} for e in examples])


def build_trainer(cfg: FinetuneConfig, model, tokenizer, data: Data, out: Path, *, device, progress: bool = True):
    """The TRL trainer for ``cfg.method`` (``tokenizer.chat_template`` must be the template to train with)."""
    import datasets
    datasets.disable_progress_bars()
    steps = total_steps(cfg, len(data.train))
    args = _common_args(cfg, out, steps, device, progress, bool(data.validation))
    lora = lora_config(cfg) if cfg.method.name in ("lora", "qlora") or (cfg.method.name == "dpo" and cfg.method.adapter == "lora") else None
    if cfg.method.name == "dpo":
        from trl import DPOConfig, DPOTrainer

        from ftlib.engine.dpo import DPORecipe
        from ftlib.engine.models import fresh_copy
        loss_type, loss_weights = DPORecipe(steps, cfg.train.batch_size, cfg.train.lr, beta=cfg.method.beta,
                                            sft_weight=cfg.method.sft_weight).loss_types()
        ref = None if lora else fresh_copy(model).eval()
        trainer = DPOTrainer(model=model, ref_model=ref, args=DPOConfig(**args, beta=cfg.method.beta, loss_type=loss_type,
                                                                        loss_weights=loss_weights),
                             train_dataset=_pair_rows(data.train), processing_class=tokenizer, peft_config=lora,
                             eval_dataset=_pair_rows(data.validation) if data.validation else None)
    else:
        from trl import SFTConfig, SFTTrainer
        trainer = SFTTrainer(model=model, args=SFTConfig(**args, assistant_only_loss=True), processing_class=tokenizer,
                             train_dataset=_sft_rows(data.train), peft_config=lora,
                             eval_dataset=_sft_rows(data.validation) if data.validation else None)
    trainer.remove_callback(PrinterCallback)        # the logs stay in trainer.state.log_history, unprinted
    if progress:                                    # one bar over the steps; no log dicts printed under it
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(StepsBar)
    return trainer


class StepsBar(ProgressCallback):
    """transformers' progress bar over the optimizer steps, without its printed log lines and eval bars."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        pass


def last_checkpoint(out: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint
    return get_last_checkpoint(str(out)) if Path(out).is_dir() else None


def run_training(trainer, out: Path, *, resume: bool, stop_after: int | None = None) -> dict:
    """Train, from the last checkpoint in ``out`` when ``resume``; ``stop_after`` raises
    :class:`Interrupted` once the checkpoint of that step is written (as a crash would, later).
    Returns ``{"resumed_from": step or None, "log": trainer.state.log_history}``."""
    from transformers import TrainerCallback

    start = last_checkpoint(out) if resume else None
    if resume and start is None:
        raise FileNotFoundError(f"--resume: no checkpoint in {out} (a run saves one every train.save_every steps)")

    class StopAfter(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if stop_after is not None and state.global_step >= stop_after:
                raise Interrupted(state.global_step)

    if stop_after is not None:
        trainer.add_callback(StopAfter())
    trainer.train(resume_from_checkpoint=start)
    return {"resumed_from": int(Path(start).name.split("-")[-1]) if start else None,
            "log": trainer.state.log_history}
