"""Checkpoints by name: ``load_model("course-sft", profile="cpu", seed=0)``.

The registry sits above the model builders (:mod:`ftlib.models`, :mod:`ftlib.pretrain`,
:mod:`ftlib.sft`) and below the notebooks. A name maps to a :class:`Product`: how to build it,
what it needs (other products, built first), and the inputs it depends on. Asking for a product
returns the cached directory, or builds it with the same functions its chapter teaches, so any
chapter runs first on a fresh machine. Each product records in ``product.json`` the profile,
seed, recipe, data hash and package versions it was built from (and the records of what it
needs); a change in any of them rebuilds it.

Anything that is not a registered name is a local directory or a hub id.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ftlib.checkpoints import cached, file_hash, package_versions, read_record
from ftlib.data import DATA_DIR
from ftlib.profiles import resolve

SMOLLM2 = "smollm2-135m"
COURSE_BASE = "course-base"
COURSE_SFT = "course-sft"
SMOLLM2_SFT_LORA = "smollm2-sft-lora"


@dataclass(frozen=True)
class Product:
    name: str
    directory: str                          # cache directory prefix ("base" -> base-cpu-seed0)
    build: Callable                         # build(out_dir, profile=, seed=, needs={name: dir})
    recipe: Callable[[str], dict]           # profile -> the recipe's settings (recorded)
    data: tuple[str, ...] = ()              # files under data/ it is trained on (hashed)
    needs: tuple[str, ...] = ()             # products built first (their records are inputs too)
    adapter: bool = False                   # the directory holds a PEFT adapter on needs[0]


PRODUCTS: dict[str, Product] = {}


def register(product: Product) -> None:
    PRODUCTS[product.name] = product


def names() -> list[str]:
    return sorted(PRODUCTS) + [SMOLLM2]


def inputs(name: str, *, profile: str | None = None, seed: int = 0, needs: dict | None = None) -> dict:
    """What product ``name`` for (profile, seed) is built from; a change in it means a rebuild.
    ``needs`` ({name: directory}) are the needed products' directories if already resolved."""
    product, profile = PRODUCTS[name], resolve(profile).name
    needs = needs or {n: model_dir(n, profile=profile, seed=seed) for n in product.needs}
    return {"profile": profile, "seed": seed, "recipe": product.recipe(profile),
            "data": {f: file_hash(DATA_DIR / f) for f in product.data},
            "packages": package_versions(),
            "needs": {n: (read_record(needs[n]) or {}).get("inputs") for n in product.needs}}


def model_dir(name: str, *, profile: str | None = None, seed: int = 0, rebuild: bool = False) -> Path:
    """The cached directory of product ``name``, built (with what it needs) if missing or stale."""
    if name == SMOLLM2:
        from ftlib.models import smollm2_dir
        return smollm2_dir()
    if name not in PRODUCTS:
        raise KeyError(f"unknown product {name!r}: choose one of {', '.join(names())}")
    product, profile = PRODUCTS[name], resolve(profile).name
    needs = {n: model_dir(n, profile=profile, seed=seed) for n in product.needs}
    return cached(f"{product.directory}-{profile}-seed{seed}",
                  lambda out: product.build(out, profile=profile, seed=seed, needs=needs),
                  inputs=inputs(name, profile=profile, seed=seed, needs=needs), rebuild=rebuild)


def resolve_model_path(name: str, *, profile: str | None = None, seed: int = 0) -> str:
    """A course name -> its cached directory; anything else (a directory, a hub id) unchanged."""
    if name == SMOLLM2 or name in PRODUCTS:
        return str(model_dir(name, profile=profile, seed=seed))
    return name


def load_tokenizer(name: str = SMOLLM2, *, profile: str | None = None, seed: int = 0):
    from ftlib.models import tokenizer_from
    return tokenizer_from(resolve_model_path(name, profile=profile, seed=seed))


def load_model(name: str = SMOLLM2, *, dtype: torch.dtype | None = None,
               device: torch.device | str | None = None, profile: str | None = None, seed: int = 0):
    """``(model, tokenizer)`` by course name, local directory or hub id (eval mode, fp32 by default).

    A product that is a LoRA adapter comes back merged into its base model, as a plain model.
    """
    from ftlib.models import from_pretrained
    if name == "course-rm":
        raise ValueError("course-rm is a reward model (a score head, no LM head): load it with "
                         "ftlib.reward.load_reward_model('course-rm')")
    product = PRODUCTS.get(name)
    if product is None or not product.adapter:
        return from_pretrained(resolve_model_path(name, profile=profile, seed=seed), dtype=dtype, device=device)
    from peft import PeftModel
    adapter = model_dir(name, profile=profile, seed=seed)
    model, tokenizer = from_pretrained(resolve_model_path(product.needs[0], profile=profile, seed=seed),
                                       dtype=dtype, device=device)
    model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    from ftlib.models import tokenizer_from
    return model.eval(), tokenizer_from(str(adapter))


def save_product(name: str, write: Callable[[Path], object], *, profile: str | None = None,
                 seed: int = 0) -> Path:
    """Store a product a notebook has just trained under its name (replacing the cached one), with
    the inputs :func:`model_dir` expects, so later chapters load it instead of building their own.
    ``write(out_dir)`` saves it."""
    product, profile = PRODUCTS[name], resolve(profile).name
    return cached(f"{product.directory}-{profile}-seed{seed}", write,
                  inputs=inputs(name, profile=profile, seed=seed), rebuild=True)


def build_record(name: str, *, profile: str | None = None, seed: int = 0) -> dict:
    """The ``product.json`` of a built product (inputs and ``build_seconds``), building it if needed."""
    return read_record(model_dir(name, profile=profile, seed=seed))


# ---------------------------------------------------------------------------------------------
# The course's products. Chapters after 05 register theirs the same way.
# ---------------------------------------------------------------------------------------------
def _base_recipe(profile: str) -> dict:
    from dataclasses import asdict

    from ftlib.models import TINY_CONFIGS
    from ftlib.pretrain import PRETRAIN_CONFIGS
    return {"pretrain": asdict(PRETRAIN_CONFIGS[profile]), "model": asdict(TINY_CONFIGS[profile])}


def _build_base(out: Path, *, profile: str, seed: int, needs: dict) -> None:
    from ftlib.pretrain import build_base_model
    build_base_model(out, profile=profile, seed=seed)


register(Product(COURSE_BASE, "base", _build_base, _base_recipe, data=("corpus_raw.jsonl",)))


def _sft_recipe(profile: str) -> dict:
    from dataclasses import asdict

    from ftlib.sft import chatml_template
    from ftlib.sft_runs import SFT_RECIPES
    return {"sft": asdict(SFT_RECIPES[profile]), "template": chatml_template()}


def _build_sft(out: Path, *, profile: str, seed: int, needs: dict) -> None:
    from ftlib.sft_runs import build_course_sft
    build_course_sft(out, profile=profile, seed=seed, needs=needs)


register(Product(COURSE_SFT, "course-sft", _build_sft, _sft_recipe,
                 data=("tasks_train.jsonl", "tasks_val.jsonl", "corpus_raw.jsonl"), needs=(COURSE_BASE,)))


def _lora_recipe(profile: str) -> dict:
    from dataclasses import asdict

    from ftlib.sft import SMOLLM2_SYSTEM, chatml_template
    from ftlib.sft_runs import LORA_SFT_RECIPES
    return {"lora_sft": asdict(LORA_SFT_RECIPES[profile]), "template": chatml_template(SMOLLM2_SYSTEM)}


def _build_lora(out: Path, *, profile: str, seed: int, needs: dict) -> None:
    from ftlib.sft_runs import build_smollm2_sft_lora
    build_smollm2_sft_lora(out, profile=profile, seed=seed, needs=needs)


register(Product(SMOLLM2_SFT_LORA, "smollm2-sft-lora", _build_lora, _lora_recipe,
                 data=("tasks_train.jsonl", "tasks_val.jsonl"), needs=(SMOLLM2,), adapter=True))


# Chapter 06: the reward model and two RL policies, all from course-sft.
COURSE_RM, COURSE_PPO, COURSE_GRPO = "course-rm", "course-ppo", "course-grpo"


def _rm_recipe(profile: str) -> dict:
    from dataclasses import asdict

    from ftlib.reward import RM_RECIPES
    return {"reward_model": asdict(RM_RECIPES[profile])}


def _build_rm(out: Path, *, profile: str, seed: int, needs: dict) -> None:
    from ftlib.reward import build_course_rm
    build_course_rm(out, profile=profile, seed=seed, needs=needs)


def _rl_recipe(kind: str) -> Callable[[str], dict]:
    def recipe(profile: str) -> dict:
        from dataclasses import asdict

        from ftlib.rl import GRPO_RECIPES, PPO_RECIPES, RL_FAMILIES
        return {kind: asdict({"ppo": PPO_RECIPES, "grpo": GRPO_RECIPES}[kind][profile]), "families": list(RL_FAMILIES),
                "reward": "verifier"}
    return recipe


def _build_ppo(out: Path, *, profile: str, seed: int, needs: dict) -> None:
    from ftlib.rl import build_course_ppo
    build_course_ppo(out, profile=profile, seed=seed, needs=needs)


def _build_grpo(out: Path, *, profile: str, seed: int, needs: dict) -> None:
    from ftlib.rl import build_course_grpo
    build_course_grpo(out, profile=profile, seed=seed, needs=needs)


register(Product(COURSE_RM, "course-rm", _build_rm, _rm_recipe, data=("preferences_train.jsonl",), needs=(COURSE_SFT,)))
register(Product(COURSE_PPO, "course-ppo", _build_ppo, _rl_recipe("ppo"), data=("tasks_val.jsonl",), needs=(COURSE_SFT,)))
register(Product(COURSE_GRPO, "course-grpo", _build_grpo, _rl_recipe("grpo"), data=("tasks_val.jsonl",),
                 needs=(COURSE_SFT,)))


# Chapter 07: DPO from course-sft on the preference pairs.
COURSE_DPO = "course-dpo"


def _dpo_recipe(profile: str) -> dict:
    from dataclasses import asdict

    from ftlib.dpo import DPO_RECIPES
    return {"dpo": asdict(DPO_RECIPES[profile])}


def _build_dpo(out: Path, *, profile: str, seed: int, needs: dict) -> None:
    from ftlib.dpo import build_course_dpo
    build_course_dpo(out, profile=profile, seed=seed, needs=needs)


register(Product(COURSE_DPO, "course-dpo", _build_dpo, _dpo_recipe, data=("preferences_train.jsonl",),
                 needs=(COURSE_SFT,)))
