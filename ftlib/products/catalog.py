"""The course's products: what each checkpoint is built from, and how.

Registered into :mod:`ftlib.products.registry` when :mod:`ftlib.products` is imported. Each
builder is the chapter's own training function at the profile's budget; it saves the product and
returns the rows it trained on, which the registry hashes into the product's record.

| name               | chapter | built from                                   | data                          |
|--------------------|---------|----------------------------------------------|-------------------------------|
| ``course-base``    | 01      | random weights, pretrained                   | the corpus, cleaned           |
| ``course-sft``     | 05      | ``course-base``, full SFT                    | task suite (train, val)       |
| ``smollm2-qlora``  | 04      | SmolLM2-135M-Instruct in NF4 + LoRA (QLoRA)  | task suite (one family)       |
| ``smollm2-sft-lora`` | 05    | SmolLM2-135M-Instruct + LoRA (TRL SFT): the course assistant | task suite (train, val) |

The products grown from the course assistant for chapters 06-07 (``assistant-pairs``,
``assistant-rm``, ``assistant-ppo``, ``assistant-grpo``, ``assistant-overopt``, ``assistant-dpo`` and
the policies and results of chapter 07's frontier and variants) are in
:mod:`ftlib.products.alignment`.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from ftlib.products.registry import (COURSE_BASE, COURSE_SFT, SMOLLM2,
                                     SMOLLM2_QLORA, SMOLLM2_SFT_LORA, Product, register, resolve_model_path)


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
# Chapter 04: the QLoRA adapter, by name
# ---------------------------------------------------------------------------------------------
def _qlora_recipe(profile: str) -> dict:
    from ftlib.engine.qlora import QLORA_RECIPES, chat_template
    return {"qlora": asdict(QLORA_RECIPES[profile]), "template": chat_template()}


def build_smollm2_qlora(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
    """Chapter 04's QLoRA run (:func:`ftlib.engine.qlora.train_qlora`, the recipe of
    :data:`~ftlib.engine.qlora.QLORA_RECIPES`): SmolLM2 in NF4, LoRA on every linear layer, trained
    on one family. Saves the adapter (it loads onto the dense SmolLM2 too, merged, as QLoRA adapters
    are served), the tokenizer with the training template and ``qlora.json`` (the loss history).
    Returns the ids of the family's training rows it drew from."""
    from ftlib.data import load_tasks
    from ftlib.engine.hardware import pick_device, pick_dtype
    from ftlib.engine.models import quiet_transformers, tokenizer_from
    from ftlib.engine.qlora import QLORA_RECIPES, chat_template, train_qlora
    recipe, device = QLORA_RECIPES[profile], pick_device()
    tokenizer = tokenizer_from(str(needs[SMOLLM2]))
    model, history = train_qlora(str(needs[SMOLLM2]), tokenizer, recipe, seed=seed, dtype=pick_dtype(device),
                                 device=device)
    quiet_transformers()
    model.save_pretrained(out_dir)
    tokenizer.chat_template = chat_template()
    tokenizer.save_pretrained(out_dir)
    (Path(out_dir) / "qlora.json").write_text(json.dumps({k: v for k, v in history.items()}))
    return [r["id"] for r in load_tasks("train", families=[recipe.family])]


register(Product(SMOLLM2_QLORA, "smollm2-qlora", build_smollm2_qlora, _qlora_recipe, data=("tasks_train.jsonl",),
                 needs=(SMOLLM2,), adapter=True))
