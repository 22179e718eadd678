"""Chapter 06's runs: PPO (``ftlib.engine.ppo``) and GRPO (TRL) on the course's verifiable tasks.

The policy is the course assistant (chapter 05's ``smollm2-sft-lora``, merged); its prompts are
training items of :data:`RL_FAMILIES` from :data:`ftlib.data.onpolicy.RL_POOL` on, which no SFT
recipe and no preference pair uses. These are the families where the assistant is right about half
the time on held-out items, so a reward has something to push on; held-out test items of the same
families measure what RL changed.

PPO and GRPO get the same budget from one :class:`RLRecipe`: the same prompts in the same order,
the same sampled completions per rollout, the same optimiser updates per rollout (``epochs`` passes
of ``mini_batches`` updates), the same learning rate and KL coefficient. What differs is the
method: PPO samples each prompt once and learns a value head for its baseline; GRPO samples each
prompt ``group`` times and uses the group as the baseline.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ftlib.engine.sft_data import chat_prompt
from ftlib.engine.models import fresh_copy
from ftlib.engine.ppo import PolicyWithValue, PPOConfig, train_ppo

RL_FAMILIES = ("arithmetic", "count_letter", "count_words")


@dataclass(frozen=True)
class RLRecipe:
    rollouts: int            # sampling rounds
    samples: int             # completions sampled per rollout (PPO: one per prompt; GRPO: `group` per prompt)
    group: int               # GRPO's completions per prompt (PPO samples each prompt once)
    lr: float
    kl_coef: float           # β of the KL penalty to the reference
    epochs: int = 2          # passes over each rollout
    mini_batches: int = 2    # optimiser updates per pass
    max_new_tokens: int = 24

    @property
    def updates(self) -> int:
        """Optimiser updates in the whole run: the same for PPO and GRPO."""
        return self.rollouts * self.epochs * self.mini_batches


RL_RECIPES = {"smoke": RLRecipe(rollouts=2, samples=8, group=4, lr=1e-5, kl_coef=0.05, max_new_tokens=16),
              "cpu": RLRecipe(rollouts=30, samples=32, group=8, lr=1e-5, kl_coef=0.05),
              "gpu": RLRecipe(rollouts=150, samples=64, group=8, lr=1e-5, kl_coef=0.05)}


@dataclass(frozen=True)
class OverOptRecipe:
    """Reward over-optimisation (chapter 06): PPO against a proxy reward model trained on few pairs,
    once per KL coefficient, everything else equal; a probe every ``probe_every`` rollouts."""
    proxy_pairs: int         # training pairs of the RL families the proxy reward model sees
    kl_coefs: tuple          # one PPO run per β: the only difference between the runs
    rollouts: int
    lr: float
    probe_every: int         # rollouts between probes
    probe_per_family: int    # held-out test prompts per RL family in the probe


OVEROPT_RECIPES = {"smoke": OverOptRecipe(proxy_pairs=6, kl_coefs=(0.0, 0.05), rollouts=2, lr=1e-5, probe_every=1,
                                          probe_per_family=2),
                   "cpu": OverOptRecipe(proxy_pairs=48, kl_coefs=(0.0, 0.05), rollouts=30, lr=1e-5, probe_every=5,
                                        probe_per_family=32),
                   "gpu": OverOptRecipe(proxy_pairs=64, kl_coefs=(0.0, 0.05), rollouts=150, lr=1e-5, probe_every=15,
                                        probe_per_family=100)}


def rl_rows(split: str = "train", families=RL_FAMILIES, per_family: int | None = None, seed: int = 0) -> list[dict]:
    """Task rows of ``families``, shuffled with ``seed``: for ``split="train"`` the RL prompts (training
    items from :data:`~ftlib.data.onpolicy.RL_POOL` on), otherwise the first ``per_family`` of the split."""
    from ftlib.data import first_per_family
    from ftlib.data.onpolicy import RL_POOL
    if split == "train":
        lo, hi = RL_POOL
        pool = first_per_family("train", hi, families)
        rows = [r for f in families for r in [x for x in pool if x["family"] == f][lo:hi][:per_family]]
    else:
        rows = first_per_family(split, per_family, families)
    random.Random(seed).shuffle(rows)
    return rows


def probe(model, ref_model, tokenizer, rows: list[dict], rewards: dict[str, Callable], *, max_new_tokens: int,
          seed: int = 0) -> dict:
    """One sampled answer (temperature 1, fixed ``seed``) per row's prompt, scored: the mean KL to the
    reference (nats per answer, k1 and k3) and the mean of each reward in ``rewards`` on those same
    answers; ``"items"`` holds the per-prompt values (for intervals and paired tests)."""
    from ftlib.engine.ppo import sampled_kl
    texts = [chat_prompt(tokenizer, r["prompt"]) for r in rows]
    answers, kl = sampled_kl(model, ref_model, tokenizer, texts, max_new_tokens=max_new_tokens, seed=seed)
    items = {"kl": kl["k1"], **{name: fn([r["prompt"] for r in rows], answers) for name, fn in rewards.items()}}
    return {"kl_k3": sum(kl["k3"]) / len(rows), **{k: sum(v) / len(v) for k, v in items.items()}, "items": items}


def run_ppo(model, tokenizer, rows: list[dict], reward_fn, recipe: RLRecipe, *, seed: int = 0,
            on_step: Callable[[int, dict], None] | None = None, progress: bool = False) -> list[dict]:
    """PPO from :mod:`ftlib.engine.ppo` on ``rows``' prompts: trains ``model`` in place (a value head is
    added for the run), against a frozen copy of it as the reference; the stats of each rollout.
    ``progress`` shows a progress bar over the rollouts."""
    from tqdm.auto import tqdm
    torch.manual_seed(seed)
    ref = fresh_copy(model).eval()     # not deepcopy: see ftlib.engine.models.fresh_copy
    policy = PolicyWithValue(model)
    cfg = PPOConfig(batch_size=recipe.samples, mini_batch_size=max(1, recipe.samples // recipe.mini_batches),
                    ppo_epochs=recipe.epochs, max_new_tokens=recipe.max_new_tokens, lr=recipe.lr,
                    kl_coef=recipe.kl_coef, seed=seed)
    start = time.perf_counter()

    bar = tqdm(total=recipe.rollouts, desc="PPO", disable=not progress, leave=False)

    def timed(step, stats):
        stats["seconds"] = time.perf_counter() - start
        bar.update(1)
        if on_step is not None:
            on_step(step, stats)
    history = train_ppo(policy, ref, tokenizer, [r["prompt"] for r in rows], reward_fn, cfg, recipe.rollouts,
                        on_step=timed, render=lambda p: chat_prompt(tokenizer, p))
    bar.close()
    model.eval()
    return history


def grpo_trainer(model, tokenizer, rows: list[dict], reward_fns: dict[str, Callable], recipe: RLRecipe, out_dir, *,
                 seed: int = 0, progress: bool = False):
    """TRL's ``GRPOTrainer`` on ``rows`` as chats, quiet and CPU-friendly.

    ``reward_fns`` ({name: reward_fn in :mod:`ftlib.engine.reward`'s convention}) are summed by TRL. Each
    prompt is sampled ``recipe.group`` times; advantages are each completion's reward minus its
    group's mean, over the group's standard deviation: no value model
    (:func:`ftlib.cores.losses.group_advantages`). The budget is PPO's: ``recipe.samples`` completions
    per generation, split into ``mini_batches`` updates and reused for ``epochs`` passes (TRL's
    ``steps_per_generation`` and ``num_iterations``). The loss is the original GRPO's per-completion
    mean (``loss_type="grpo"``, :func:`ftlib.cores.losses.grpo_loss`), not TRL's default token mean.
    """
    import datasets
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from ftlib.engine.hardware import pick_device
    from ftlib.engine.reward import for_trl
    datasets.disable_progress_bars()
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}], "task": r["prompt"]}
                              for r in rows])
    if recipe.samples % recipe.group or recipe.samples % recipe.mini_batches:
        raise ValueError(f"{recipe}: samples must split into whole groups and whole mini-batches")
    cfg = GRPOConfig(output_dir=str(out_dir), num_generations=recipe.group, loss_type="grpo",
                     per_device_train_batch_size=recipe.samples // recipe.mini_batches,
                     steps_per_generation=recipe.mini_batches, num_iterations=recipe.epochs,
                     max_completion_length=recipe.max_new_tokens, learning_rate=recipe.lr, beta=recipe.kl_coef,
                     max_steps=recipe.updates, lr_scheduler_type="constant", warmup_steps=0, logging_steps=1,
                     save_strategy="no", report_to=[], disable_tqdm=not progress, seed=seed, shuffle_dataset=False,
                     activation_checkpointing=False,     # TRL's default is on: a second forward pass for nothing here
                     use_cpu=pick_device().type == "cpu", bf16=pick_device().type == "cuda")
    # TRL builds its reference by loading the policy's name_or_path again. For a merged adapter that is
    # the base model, not the policy: point it at the policy as it starts, saved for the purpose.
    name_or_path = model.config._name_or_path
    if recipe.kl_coef:
        model.save_pretrained(Path(out_dir) / "reference")
        model.config._name_or_path = str(Path(out_dir) / "reference")
    try:
        trainer = GRPOTrainer(model=model, processing_class=tokenizer, args=cfg, train_dataset=data,
                              reward_funcs=[for_trl(fn, name) for name, fn in reward_fns.items()])
    finally:
        model.config._name_or_path = name_or_path
    trainer.remove_callback(PrinterCallback)     # the logs stay in trainer.state.log_history, unprinted
    return trainer


def run_grpo(model, tokenizer, rows: list[dict], reward_fns: dict[str, Callable], recipe: RLRecipe, *,
             seed: int = 0, progress: bool = False) -> list[dict]:
    """Train ``model`` in place with :func:`grpo_trainer`; TRL's log of each optimiser update (the
    reward is logged with the first update of each rollout). ``progress``: TRL's progress bar."""
    import tempfile
    import warnings
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # TRL 1.16 still calls transformers' renamed gradient_checkpointing_* methods: harmless notices
        warnings.filterwarnings("ignore", r".*gradient_checkpointing.* is deprecated", FutureWarning)
        trainer = grpo_trainer(model, tokenizer, rows, reward_fns, recipe, tmp, seed=seed, progress=progress)
        trainer.train()
    model.eval()
    # one entry per update; the reward metrics are in the entries of the updates that generated
    return [h for h in trainer.state.log_history if "loss" in h]
