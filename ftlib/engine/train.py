"""The course's one training loop: readable top to bottom, reused by every chapter.

    history = train(model, get_batch, TrainConfig(steps=200, lr=3e-4))

``get_batch(step, micro)`` returns a dict of tensors (``input_ids``, ``labels``, optional
``attention_mask``) for micro-batch ``micro`` of optimiser step ``step``. Because batches are a
function of the step, a resumed run sees exactly the batches the interrupted one would have.

What the loop does, per optimiser step (numbers match the comments below):
 1. set the learning rate: linear warmup, then cosine decay to ``min_lr_ratio * lr``;
 2. ``grad_accum`` forward/backward passes, each loss divided by ``grad_accum`` so the summed
    gradient equals the gradient of the mean loss over the whole (virtual) batch;
 3. clip the global gradient norm to ``max_grad_norm``;
 4. AdamW step (β = 0.9, 0.95; weight decay only on matrices, not on norms and biases);
 5. every ``eval_every`` steps call ``evaluate(model)``; every ``ckpt_every`` steps save.
"""
from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm


@dataclass
class TrainConfig:
    steps: int = 100              # optimiser steps
    lr: float = 3e-4              # peak learning rate
    warmup_steps: int = 10        # linear warmup from 0 to lr
    min_lr_ratio: float = 0.1     # cosine decays to min_lr_ratio * lr
    grad_accum: int = 1           # micro-batches per optimiser step
    max_grad_norm: float = 1.0    # global gradient-norm clip (0 = off)
    weight_decay: float = 0.1     # AdamW decay on weight matrices only
    eval_every: int = 0           # 0 = only at the end (if an evaluate fn is given)
    ckpt_every: int = 0           # 0 = no checkpoints
    ckpt_dir: str | None = None   # where checkpoints go; a run resumes from here
    amp: str = "auto"             # "auto" = bf16 autocast on CUDA only; "bf16" or "off"


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at optimiser step ``step`` (0-based): warmup, then cosine to a floor.

    >>> cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    >>> lr_at(0, cfg), lr_at(9, cfg), round(lr_at(55, cfg), 3), round(lr_at(100, cfg), 3)
    (0.1, 1.0, 0.55, 0.1)
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    floor = cfg.min_lr_ratio * cfg.lr
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay on ≥2-D weights (matrices, embeddings), none on norms and biases."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _autocast(device: torch.device, amp: str):
    if amp == "bf16" or (amp == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def save_training_state(ckpt_dir: str | Path, model, optimizer, step: int, history: dict) -> None:
    """Model weights as safetensors, optimiser state as a tensors-only torch file, progress as JSON."""
    from safetensors.torch import save_model
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    save_model(model, str(ckpt_dir / "model.safetensors"))
    torch.save(optimizer.state_dict(), ckpt_dir / "optimizer.pt")
    (ckpt_dir / "state.json").write_text(json.dumps({"step": step, "history": history}))


def load_training_state(ckpt_dir: str | Path, model, optimizer) -> tuple[int, dict]:
    """Inverse of :func:`save_training_state`; returns ``(step, history)``. Never unpickles code."""
    from safetensors.torch import load_model
    ckpt_dir = Path(ckpt_dir)
    load_model(model, str(ckpt_dir / "model.safetensors"), device=str(next(model.parameters()).device))
    optimizer.load_state_dict(torch.load(ckpt_dir / "optimizer.pt", weights_only=True))
    state = json.loads((ckpt_dir / "state.json").read_text())
    return state["step"], state["history"]


def new_history() -> dict:
    return {"step": [], "loss": [], "lr": [], "grad_norm": [], "eval_step": [], "eval": [],
            "tokens": 0, "seconds": 0.0}


def train(model: torch.nn.Module, get_batch: Callable[[int, int], dict], cfg: TrainConfig, *,
          evaluate: Callable[[torch.nn.Module], float] | None = None,
          optimizer: torch.optim.Optimizer | None = None, stop_after: int | None = None,
          progress: bool = True, loss_fn: Callable[[torch.nn.Module, dict], torch.Tensor] | None = None) -> dict:
    """Train ``model`` for ``cfg.steps`` optimiser steps and return the history as plain lists.

    ``stop_after=k`` stops after step ``k`` as if the run were interrupted (a checkpoint is
    written if ``cfg.ckpt_dir`` is set); calling ``train`` again with the same ``ckpt_dir``
    resumes from it. ``loss_fn(model, batch)`` replaces ``model(**batch).loss`` (e.g. to add a
    penalty, or to call the model with ``use_cache=False`` for packed rows).
    """
    loss_fn = loss_fn or (lambda m, b: m(**b).loss)
    device = next(model.parameters()).device
    optimizer = optimizer or torch.optim.AdamW(param_groups(model, cfg.weight_decay),
                                               lr=cfg.lr, betas=(0.9, 0.95))
    start, history = 0, new_history()
    if cfg.ckpt_dir and (Path(cfg.ckpt_dir) / "state.json").exists():
        start, history = load_training_state(cfg.ckpt_dir, model, optimizer)
    last = cfg.steps if stop_after is None else min(cfg.steps, stop_after)

    model.train()
    bar = tqdm(range(start, last), desc="train", disable=not progress, initial=start, total=cfg.steps,
               mininterval=2.0)
    t0 = time.perf_counter()
    for step in bar:
        # 1. learning rate for this step
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # 2. accumulate gradients over micro-batches
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for micro in range(cfg.grad_accum):
            batch = _to(get_batch(step, micro), device)
            with _autocast(device, cfg.amp):
                loss = loss_fn(model, batch) / cfg.grad_accum
            loss.backward()
            step_loss += loss.item()
            history["tokens"] += int(batch["input_ids"].numel())
        # 3. clip the global gradient norm
        params = [p for g in optimizer.param_groups for p in g["params"]]
        max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm).item()
        # 4. update
        optimizer.step()
        history["step"].append(step)
        history["loss"].append(step_loss)
        history["lr"].append(lr)
        history["grad_norm"].append(grad_norm)
        bar.set_postfix(loss=f"{step_loss:.3f}", lr=f"{lr:.2e}")
        # 5. evaluate and checkpoint
        done = step + 1
        if evaluate and ((cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps):
            model.eval()
            history["eval_step"].append(done)
            history["eval"].append(float(evaluate(model)))
            model.train()
        if cfg.ckpt_dir and ((cfg.ckpt_every and done % cfg.ckpt_every == 0) or done == last):
            history["seconds"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            save_training_state(cfg.ckpt_dir, model, optimizer, done, history)
    history["seconds"] += time.perf_counter() - t0
    model.eval()
    history["config"] = asdict(cfg)
    return history
