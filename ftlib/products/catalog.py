"""The course's products: what each checkpoint is built from, and how.

Registered into :mod:`ftlib.products.registry` when :mod:`ftlib.products` is imported. Each
builder is the chapter's own training function at the profile's budget; it saves the product and
returns the rows it trained on, which the registry hashes into the product's record.

| name               | chapter | built from                                   | data                          |
|--------------------|---------|----------------------------------------------|-------------------------------|
| ``course-base``    | 01      | random weights, pretrained                   | the corpus, cleaned           |
| ``course-sft``     | 05      | ``course-base``, full SFT                    | task suite (train, val)       |
| ``smollm2-sft-lora`` | 05    | SmolLM2-135M-Instruct + LoRA (TRL SFT): the course assistant | task suite (train, val) |
| ``course-rm``      | 06      | ``course-sft`` + score head (Bradley-Terry)  | preference pairs              |
| ``course-ppo``     | 06      | ``course-sft``, PPO on verifier rewards      | task suite (val prompts)      |
| ``course-grpo``    | 06      | ``course-sft``, GRPO (TRL) on verifier rewards | task suite (val prompts)    |
| ``course-dpo``     | 07      | ``course-sft``, DPO (TRL)                    | preference pairs              |
| ``assistant-pairs`` | 06–07  | the assistant's own samples, verified (pairs, not a model) | skill prompts it never trained on |
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from ftlib.products.registry import (ASSISTANT_PAIRS, COURSE_BASE, COURSE_DPO, COURSE_GRPO, COURSE_PPO, COURSE_RM, COURSE_SFT,
                                     SMOLLM2, SMOLLM2_SFT_LORA, Product, register, resolve_model_path)


# ---------------------------------------------------------------------------------------------
# course-base (chapter 01)
# ---------------------------------------------------------------------------------------------
def _base_recipe(profile: str) -> dict:
    from ftlib.engine.models import TINY_CONFIGS
    from ftlib.engine.pretrain import PRETRAIN_CONFIGS
    return {"pretrain": asdict(PRETRAIN_CONFIGS[profile]), "model": asdict(TINY_CONFIGS[profile])}


def _base_params(profile: str) -> dict:
    from ftlib.cores.cleaning import NEAR_THRESHOLD
    from ftlib.engine.pretrain import PRETRAIN_CONFIGS
    return {"near_threshold": NEAR_THRESHOLD,           # chapter 01's NEAR_THRESHOLD
            "steps": PRETRAIN_CONFIGS[profile].steps}   # the optimiser steps it pretrains for


def build_course_base(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
    """Clean the corpus (chapter 01's pipeline at ``params["near_threshold"]``), then
    :func:`ftlib.engine.pretrain.build_base_model` for ``params["steps"]``. Returns the token rows
    it trained on."""
    from ftlib.cores.cleaning import clean
    from ftlib.data import load_corpus
    from ftlib.engine.pretrain import build_base_model
    texts = [row["text"] for row in clean(load_corpus(), near_threshold=params["near_threshold"])[0]]
    return build_base_model(out_dir, profile=profile, seed=seed, texts=texts, steps=params["steps"])["train_rows"]


register(Product(COURSE_BASE, "base", build_course_base, _base_recipe, data=("corpus_raw.jsonl",),
                 params=_base_params))


# ---------------------------------------------------------------------------------------------
# course-sft and smollm2-sft-lora (chapter 05)
# ---------------------------------------------------------------------------------------------
def _sft_recipe(profile: str) -> dict:
    from ftlib.engine.sft_data import chatml_template
    from ftlib.engine.sft_train import SFT_RECIPES
    return {"sft": asdict(SFT_RECIPES[profile]), "template": chatml_template()}


def build_course_sft(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
    """The course base model (``needs["course-base"]``) after
    :func:`ftlib.engine.sft_train.train_course_sft`, saved with its chat template. Returns the
    ids of the task rows it trained on."""
    from ftlib.data import first_per_family, load_tasks
    from ftlib.engine.models import from_pretrained, save_model
    from ftlib.engine.sft_data import chatml_template, stop_ids
    from ftlib.engine.cache import read_record
    from ftlib.engine.sft_train import SFT_RECIPES, course_sft_data, train_course_sft
    from ftlib.metrics.exact_match import exact_match
    model, tokenizer = from_pretrained(str(needs[COURSE_BASE]))
    tokenizer.chat_template = chatml_template()
    model.generation_config.eos_token_id = stop_ids(tokenizer)
    recipe = SFT_RECIPES[profile]
    probe = first_per_family("val", recipe.track_n)

    def track(m) -> dict:                       # validation exact match per family, at every evaluation
        return {f: a.value for f, a in exact_match(m, tokenizer, probe).by_family().items()}
    # Replay the documents the base model was trained on, cleaned as it was (chapter 01's threshold).
    base_params = ((read_record(needs[COURSE_BASE]) or {}).get("built_with") or {}).get("params") or {}
    data = course_sft_data(tokenizer, profile, seed, near_threshold=base_params.get("near_threshold"))
    history = train_course_sft(model, tokenizer, profile, seed, data=data, track=track, progress=True)
    save_model(model, tokenizer, out_dir, log_name="sft", log=history)
    return [r["id"] for r in load_tasks("train")]


register(Product(COURSE_SFT, "course-sft", build_course_sft, _sft_recipe,
                 data=("tasks_train.jsonl", "tasks_val.jsonl", "corpus_raw.jsonl"), needs=(COURSE_BASE,)))


def _lora_recipe(profile: str) -> dict:
    from ftlib.engine.sft_data import chatml_template
    from ftlib.engine.sft_train import LORA_SFT_RECIPES
    return {"lora_sft": asdict(LORA_SFT_RECIPES[profile]), "template": chatml_template()}


def build_smollm2_sft_lora(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
    """The course assistant: SmolLM2-135M-Instruct + LoRA on every linear layer, SFT with TRL's
    ``SFTTrainer`` on the nine skill families (ChatML without a system turn, assistant-only loss),
    early-stopped on validation exact match. Then it is scored, and SmolLM2 as shipped (its own
    template) with it, on ``eval_n`` test items of every family and on ``eval_n`` of the items it
    trained on per skill family. Saves the adapter, the tokenizer with the training template and
    ``lora_sft.json`` (the tracked curve and every answer). Returns the ids of the rows it trained on."""
    from peft import LoraConfig

    from ftlib.data import first_per_family
    from ftlib.data.tasks import SKILL_FAMILIES
    from ftlib.engine.hardware import pick_device, seed_everything
    from ftlib.engine.models import from_pretrained, quiet_transformers
    from ftlib.engine.sft_data import SMOLLM2_SYSTEM, chatml_template
    from ftlib.engine.sft_train import LORA_SFT_RECIPES, assistant_rows, sft_trainer, train_with_early_stopping
    from ftlib.metrics.exact_match import exact_match

    recipe = LORA_SFT_RECIPES[profile]
    model, tokenizer = from_pretrained(str(needs[SMOLLM2]), device=pick_device())
    test = first_per_family("test", recipe.eval_n)
    tokenizer.chat_template = chatml_template(SMOLLM2_SYSTEM)      # SmolLM2's own rendering, with generation markers
    before = exact_match(model, tokenizer, test, progress="scoring SmolLM2")
    tokenizer.chat_template = chatml_template()                    # the assistant's: no system turn
    rows = assistant_rows(recipe.per_family, seed)
    probe = first_per_family("val", recipe.track_n, SKILL_FAMILIES)

    def track(m) -> dict:
        return {f: a.value for f, a in exact_match(m, tokenizer, probe).by_family().items()}
    seed_everything(seed)
    lora = LoraConfig(r=recipe.rank, lora_alpha=2 * recipe.rank, target_modules="all-linear", lora_dropout=0.0,
                      task_type="CAUSAL_LM")
    with tempfile.TemporaryDirectory() as tmp:
        trainer = sft_trainer(model, tokenizer, rows, tmp, steps=recipe.steps, batch_size=recipe.batch_size,
                              lr=recipe.lr, peft_config=lora, seed=seed, progress=True)
        tracked = train_with_early_stopping(trainer, track, recipe.eval_every)
    model = trainer.model.eval()
    seen = [r for f in SKILL_FAMILIES for r in [x for x in rows if x["family"] == f][:recipe.eval_n]]
    after = exact_match(model, tokenizer, test, progress="scoring the assistant (test)")
    after_seen = exact_match(model, tokenizer, seen, progress="scoring the assistant (trained on)")
    quiet_transformers()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    scored = lambda ev: [{"id": r["id"], "answer": a, "correct": c}                     # noqa: E731
                         for r, a, c in zip(ev.rows, ev.answers, ev.correct)]
    (Path(out_dir) / "lora_sft.json").write_text(json.dumps({
        "tracked": tracked, "log_history": trainer.state.log_history,
        "test_before": scored(before), "test_after": scored(after), "train_after": scored(after_seen)}))
    return [r["id"] for r in rows]


register(Product(SMOLLM2_SFT_LORA, "smollm2-sft-lora", build_smollm2_sft_lora, _lora_recipe,
                 data=("tasks_train.jsonl", "tasks_val.jsonl", "tasks_test.jsonl"), needs=(SMOLLM2,), adapter=True))


# ---------------------------------------------------------------------------------------------
# Chapter 06: the reward model and two RL policies, all from course-sft
# ---------------------------------------------------------------------------------------------
def _rm_recipe(profile: str) -> dict:
    from ftlib.engine.reward import RM_RECIPES
    return {"reward_model": asdict(RM_RECIPES[profile])}


def build_course_rm(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
    """The ``course-sft`` checkpoint with a score head, trained with
    :func:`ftlib.engine.reward.train_reward_model` on ``preferences_train.jsonl``."""
    from ftlib.data import load_preferences
    from ftlib.engine.models import save_model
    from ftlib.engine.reward import RM_RECIPES, reward_model_from, train_reward_model
    model, tokenizer = reward_model_from(str(needs[COURSE_SFT]))
    pairs = load_preferences("train")
    history = train_reward_model(model, tokenizer, pairs, RM_RECIPES[profile], seed=seed)
    save_model(model, tokenizer, out_dir, log_name="reward_model", log=history)
    return pairs


def load_reward_model(name: str = COURSE_RM, *, profile: str | None = None, seed: int = 0):
    """``(reward model, tokenizer)`` by course name (built if missing) or directory."""
    from ftlib.engine.reward import reward_model_from
    return reward_model_from(resolve_model_path(name, profile=profile, seed=seed))


def _rl_recipe(kind: str) -> Callable[[str], dict]:
    def recipe(profile: str) -> dict:
        from ftlib.engine.rl_runs import GRPO_RECIPES, PPO_RECIPES, RL_FAMILIES
        return {kind: asdict({"ppo": PPO_RECIPES, "grpo": GRPO_RECIPES}[kind][profile]), "families": list(RL_FAMILIES),
                "reward": "verifier"}
    return recipe


def _build_rl(kind: str) -> Callable:
    def build(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
        """``course-sft`` after PPO (:func:`ftlib.engine.rl_runs.run_ppo`) or GRPO
        (:func:`ftlib.engine.rl_runs.run_grpo`) with the verifiers as reward."""
        from ftlib.engine.models import from_pretrained, save_model
        from ftlib.engine.reward import verifier_reward
        from ftlib.engine.rl_runs import GRPO_RECIPES, PPO_RECIPES, rl_rows, run_grpo, run_ppo
        model, tokenizer = from_pretrained(str(needs[COURSE_SFT]))
        rows = rl_rows(seed=seed)
        if kind == "ppo":
            history = run_ppo(model, tokenizer, rows, verifier_reward(rows), PPO_RECIPES[profile], seed=seed)
        else:
            history = run_grpo(model, tokenizer, rows, {"verifier": verifier_reward(rows)}, GRPO_RECIPES[profile],
                               seed=seed)
        save_model(model, tokenizer, out_dir, log_name=kind, log=history)
        return [r["id"] for r in rows]
    build.__name__ = f"build_course_{kind}"
    return build


build_course_ppo, build_course_grpo = _build_rl("ppo"), _build_rl("grpo")
register(Product(COURSE_RM, "course-rm", build_course_rm, _rm_recipe, data=("preferences_train.jsonl",),
                 needs=(COURSE_SFT,)))
register(Product(COURSE_PPO, "course-ppo", build_course_ppo, _rl_recipe("ppo"), data=("tasks_val.jsonl",),
                 needs=(COURSE_SFT,)))
register(Product(COURSE_GRPO, "course-grpo", build_course_grpo, _rl_recipe("grpo"), data=("tasks_val.jsonl",),
                 needs=(COURSE_SFT,)))


# ---------------------------------------------------------------------------------------------
# Chapter 07: DPO from course-sft on the preference pairs
# ---------------------------------------------------------------------------------------------
def _dpo_recipe(profile: str) -> dict:
    from ftlib.engine.dpo import DPO_RECIPES
    return {"dpo": asdict(DPO_RECIPES[profile])}


def build_course_dpo(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
    """``course-sft`` after DPO (:data:`ftlib.engine.dpo.DPO_RECIPES`) on ``preferences_train.jsonl``,
    against a frozen copy of itself."""
    from ftlib.data import load_preferences
    from ftlib.engine.dpo import DPO_RECIPES, dpo_trainer
    from ftlib.engine.models import from_pretrained, save_model
    model, tokenizer = from_pretrained(str(needs[COURSE_SFT]))
    pairs = load_preferences("train")
    with tempfile.TemporaryDirectory() as tmp:
        trainer = dpo_trainer(model, tokenizer, pairs, DPO_RECIPES[profile], tmp, seed=seed)
        trainer.train()
    save_model(model, tokenizer, out_dir, log_name="dpo", log=trainer.state.log_history)
    return pairs


register(Product(COURSE_DPO, "course-dpo", build_course_dpo, _dpo_recipe, data=("preferences_train.jsonl",),
                 needs=(COURSE_SFT,)))


# ---------------------------------------------------------------------------------------------
# Chapters 06-07: on-policy preference pairs of the course assistant
# ---------------------------------------------------------------------------------------------
def _pairs_recipe(profile: str) -> dict:
    from ftlib.data.onpolicy import PAIR_RECIPES, POOL_START
    return {"pairs": asdict(PAIR_RECIPES[profile]), "pool_start": POOL_START}


def pair_prompts(profile: str) -> dict[str, list[dict]]:
    """{"train", "test"}: the skill families' training items from ``POOL_START`` on, ``per_family``
    then ``test_per_family`` of each: prompts the assistant never trained on (its recipes stop
    before ``POOL_START``), and never test or validation items."""
    from ftlib.data import first_per_family
    from ftlib.data.onpolicy import PAIR_RECIPES, POOL_START
    from ftlib.data.tasks import SKILL_FAMILIES
    recipe = PAIR_RECIPES[profile]
    pool = first_per_family("train", POOL_START + recipe.per_family + recipe.test_per_family, SKILL_FAMILIES)
    out = {"train": [], "test": []}
    for f in SKILL_FAMILIES:
        rows = [r for r in pool if r["family"] == f][POOL_START:]
        out["train"] += rows[:recipe.per_family]
        out["test"] += rows[recipe.per_family:]
    return out


def build_assistant_pairs(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
    """Sample the assistant ``k`` times on each prompt of :func:`pair_prompts` and pair its own
    right answers with its own wrong ones (:func:`ftlib.data.onpolicy.onpolicy_pairs`). Writes
    ``pairs_train.jsonl``, ``pairs_test.jsonl`` (prompts disjoint from the train pairs') and
    ``pairs.json`` (each split's report and every sample). Returns the prompts' ids."""
    from ftlib.data import write_jsonl
    from ftlib.data.onpolicy import PAIR_RECIPES, onpolicy_pairs
    from ftlib.engine.hardware import pick_device
    from ftlib.engine.sft_train import LORA_SFT_RECIPES, assistant_rows
    from ftlib.metrics.exact_match import exact_match
    from ftlib.products.registry import load_model
    recipe = PAIR_RECIPES[profile]
    model, tokenizer = load_model(SMOLLM2_SFT_LORA, profile=profile, seed=seed, device=pick_device())
    trained = [r["id"] for r in assistant_rows(LORA_SFT_RECIPES[profile].per_family, seed)]
    prompts, record = pair_prompts(profile), {}
    for split, rows in prompts.items():
        reps = [r for r in rows for _ in range(recipe.k)]
        samples = exact_match(model, tokenizer, reps, temperature=recipe.temperature, batch_size=64,
                              seed=seed + (split == "test"), progress=f"sampling ({split} prompts)")
        pairs, report = onpolicy_pairs(samples.rows, samples.answers, k=recipe.k, exclude=trained,
                                       written_share=recipe.written_share, reference_share=recipe.reference_share,
                                       seed=seed, id_prefix=f"onpolicy-{split}")
        write_jsonl(Path(out_dir) / f"pairs_{split}.jsonl", pairs)
        record[split] = {"report": asdict(report),
                         "samples": [{"id": r["id"], "answer": a, "correct": c}
                                     for r, a, c in zip(samples.rows, samples.answers, samples.correct)]}
    (Path(out_dir) / "pairs.json").write_text(json.dumps(record))
    return [r["id"] for rows in prompts.values() for r in rows]


def load_pairs(split: str = "train", *, profile: str | None = None, seed: int = 0) -> list[dict]:
    """The assistant's on-policy preference pairs of one split ("train" or "test"), built if missing."""
    from ftlib.data import read_jsonl
    if split not in ("train", "test"):
        raise ValueError(f"unknown pair split {split!r} (expected train or test)")
    return read_jsonl(Path(resolve_model_path(ASSISTANT_PAIRS, profile=profile, seed=seed)) / f"pairs_{split}.jsonl")


register(Product(ASSISTANT_PAIRS, "assistant-pairs", build_assistant_pairs, _pairs_recipe,
                 data=("tasks_train.jsonl",), needs=(SMOLLM2_SFT_LORA,)))
