"""Chapter 06's runs: PPO (``ftlib.engine.ppo``) and GRPO (TRL) on the course's verifiable tasks.

The policy is a chat model (``course-sft`` by default); prompts are task rows from the validation
split of :data:`RL_FAMILIES`, families where the policy is right about half the time, so a reward
has something to push on. The policy never trained on these prompts, and held-out test items of
the same families measure what RL changed. Both methods see the same prompts, the same number of
sampled completions and the same reward functions (:mod:`ftlib.engine.reward`).

The registry builds the chapter's products with these functions: ``course-rm`` (the reward model),
``course-ppo`` and ``course-grpo`` (policies trained with the verifiers as reward).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable

import torch

from ftlib.engine.sft_data import chat_prompt
from ftlib.engine.models import fresh_copy
from ftlib.engine.ppo import PolicyWithValue, PPOConfig, train_ppo

RL_FAMILIES = ("count_letter", "format_upper", "extract_json")


@dataclass(frozen=True)
class RLRecipe:
    steps: int               # optimiser rounds (PPO: rollout + update; GRPO: trainer steps)
    prompts_per_step: int    # distinct prompts sampled per step
    group: int               # completions per prompt (GRPO's group; PPO samples 1 per prompt)
    lr: float
    kl_coef: float           # β of the KL penalty to the reference
    max_new_tokens: int = 48


# Same sampled completions per step for both: PPO 32 prompts × 1, GRPO 4 prompts × 8.
PPO_RECIPES = {"smoke": RLRecipe(steps=3, prompts_per_step=8, group=1, lr=2e-5, kl_coef=0.02, max_new_tokens=24),
               "cpu": RLRecipe(steps=40, prompts_per_step=32, group=1, lr=2e-5, kl_coef=0.02),
               "gpu": RLRecipe(steps=200, prompts_per_step=64, group=1, lr=2e-5, kl_coef=0.02)}
GRPO_RECIPES = {"smoke": RLRecipe(steps=3, prompts_per_step=2, group=4, lr=2e-5, kl_coef=0.02, max_new_tokens=24),
                "cpu": RLRecipe(steps=40, prompts_per_step=4, group=8, lr=2e-5, kl_coef=0.02),
                "gpu": RLRecipe(steps=200, prompts_per_step=8, group=8, lr=2e-5, kl_coef=0.02)}


def rl_rows(split: str = "val", families=RL_FAMILIES, per_family: int | None = None, seed: int = 0) -> list[dict]:
    """Task rows of ``families`` from ``split``, shuffled with ``seed`` (``per_family`` caps each)."""
    from ftlib.data import first_per_family
    rows = first_per_family(split, per_family, families)
    random.Random(seed).shuffle(rows)
    return rows


def run_ppo(model, tokenizer, rows: list[dict], reward_fn, recipe: RLRecipe, *, seed: int = 0,
            on_step: Callable[[int, dict], None] | None = None) -> list[dict]:
    """PPO from :mod:`ftlib.engine.ppo` on ``rows``' prompts: trains ``model`` in place (a value head is
    added for the run), against a frozen copy of it as the reference; the stats of each step."""
    torch.manual_seed(seed)
    ref = fresh_copy(model).eval()     # not deepcopy: see ftlib.engine.models.fresh_copy
    policy = PolicyWithValue(model)
    cfg = PPOConfig(batch_size=recipe.prompts_per_step, mini_batch_size=max(1, recipe.prompts_per_step // 2),
                    max_new_tokens=recipe.max_new_tokens, lr=recipe.lr, kl_coef=recipe.kl_coef, seed=seed)
    start = time.perf_counter()

    def timed(step, stats):
        stats["seconds"] = time.perf_counter() - start
        if on_step is not None:
            on_step(step, stats)
    history = train_ppo(policy, ref, tokenizer, [r["prompt"] for r in rows], reward_fn, cfg, recipe.steps,
                        on_step=timed, render=lambda p: chat_prompt(tokenizer, p))
    model.eval()
    return history


def grpo_trainer(model, tokenizer, rows: list[dict], reward_fns: dict[str, Callable], recipe: RLRecipe, out_dir, *,
                 seed: int = 0):
    """TRL's ``GRPOTrainer`` on ``rows`` as chats, quiet and CPU-friendly.

    ``reward_fns`` ({name: reward_fn in :mod:`ftlib.engine.reward`'s convention}) are summed by TRL. Each
    prompt is sampled ``recipe.group`` times; advantages are each completion's reward minus its
    group's mean, over the group's standard deviation: no value model.
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
    cfg = GRPOConfig(output_dir=str(out_dir), num_generations=recipe.group,
                     per_device_train_batch_size=recipe.group * recipe.prompts_per_step,
                     max_completion_length=recipe.max_new_tokens, learning_rate=recipe.lr, beta=recipe.kl_coef,
                     max_steps=recipe.steps, lr_scheduler_type="constant", warmup_steps=0, logging_steps=1,
                     save_strategy="no", report_to=[], disable_tqdm=True, seed=seed, shuffle_dataset=False,
                     activation_checkpointing=False,     # TRL's default is on: a second forward pass for nothing here
                     use_cpu=pick_device().type == "cpu", bf16=pick_device().type == "cuda")
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, args=cfg, train_dataset=data,
                          reward_funcs=[for_trl(fn, name) for name, fn in reward_fns.items()])
    trainer.remove_callback(PrinterCallback)     # the logs stay in trainer.state.log_history, unprinted
    return trainer


def run_grpo(model, tokenizer, rows: list[dict], reward_fns: dict[str, Callable], recipe: RLRecipe, *,
             seed: int = 0) -> list[dict]:
    """Train ``model`` in place with :func:`grpo_trainer`; TRL's log of each step."""
    import tempfile
    import warnings
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # TRL 1.16 still calls transformers' renamed gradient_checkpointing_* methods: harmless notices
        warnings.filterwarnings("ignore", r".*gradient_checkpointing.* is deprecated", FutureWarning)
        trainer = grpo_trainer(model, tokenizer, rows, reward_fns, recipe, tmp, seed=seed)
        trainer.train()
    model.eval()
    return [h for h in trainer.state.log_history if "reward" in h]
