"""Checkpoints by name: ``load_model("course-sft", profile="cpu", seed=0)``.

The registry sits above the engine (models, training loops) and the metrics, and below the
studies and the notebooks. A name maps to a :class:`Product`: how to build it, what it needs
(other products, built first), the recipe and data it is trained on, and the parameters a
chapter may change. :mod:`ftlib.products.catalog` registers the course's products.

Asking for a product returns the cached directory, or builds it with the same functions its
chapter teaches, so any chapter runs first on a fresh machine. Each product records in
``product.json``:

- ``inputs``: profile, seed, recipe, data files' hashes, package versions, and the records of the
  products it needs. A change in any of them rebuilds it, and so everything built on it.
- ``built_with``: what really built it: the parameters (``params``; a chapter may change them,
  e.g. chapter 01's ``NEAR_THRESHOLD``) and a hash of the exact rows trained on. A product needed
  by another enters that one's inputs with its ``built_with``, so a ``course-base`` trained on
  other data rebuilds ``course-sft``. Loading a product built with non-default parameters warns.

Anything that is not a registered name is a local directory or a hub id.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ftlib.data import DATA_DIR
from ftlib.engine.cache import (cached, course_home, file_hash, package_versions, product_name, read_record,
                               rows_hash)
from ftlib.engine.profiles import resolve

SMOLLM2 = "smollm2-135m"
COURSE_BASE = "course-base"
COURSE_SFT = "course-sft"
SMOLLM2_SFT_LORA = "smollm2-sft-lora"
SMOLLM2_QLORA = "smollm2-qlora"         # chapter 04's QLoRA adapter (extract_json)
ASSISTANT_PAIRS = "assistant-pairs"     # data, not a model: on-policy preference pairs of the assistant
ASSISTANT_RM = "assistant-rm"           # a reward model: a score head, no LM head
ASSISTANT_PPO, ASSISTANT_GRPO, ASSISTANT_DPO = "assistant-ppo", "assistant-grpo", "assistant-dpo"
ASSISTANT_OVEROPT = "assistant-overopt"   # results, not a model: reward over-optimisation curves
ASSISTANT_FRONTIER = "assistant-frontier"   # results: reward against KL for DPO and PPO (chapter 07)
ASSISTANT_VARIANTS = "assistant-variants"   # results: IPO, ORPO, KTO on DPO's budget (chapter 07)


class NonDefaultProductWarning(UserWarning):
    """A product in the cache was built with parameters other than its defaults."""


@dataclass(frozen=True)
class Product:
    name: str
    directory: str                          # cache directory prefix ("base" -> base-cpu-seed0)
    build: Callable                         # build(out, profile=, seed=, needs={name: dir}, params=) -> rows or None
    recipe: Callable[[str], dict]           # profile -> the recipe's settings (recorded)
    data: tuple[str, ...] = ()              # files under data/ it is trained on (hashed)
    needs: tuple[str, ...] = ()             # products built first (their records are inputs too)
    adapter: bool = False                   # the directory holds a PEFT adapter on needs[0]
    params: Callable[[str], dict] = field(default=lambda profile: {})  # knobs a chapter may change, defaults


PRODUCTS: dict[str, Product] = {}


def register(product: Product) -> None:
    PRODUCTS[product.name] = product


def names() -> list[str]:
    return sorted(PRODUCTS) + [SMOLLM2]


def _need_record(directory: Path) -> dict:
    """What a needed product contributes to its dependents' inputs: how it was built."""
    record = read_record(directory) or {}
    return {"inputs": record.get("inputs"), "built_with": record.get("built_with")}


def inputs(name: str, *, profile: str | None = None, seed: int = 0, needs: dict | None = None) -> dict:
    """What product ``name`` for (profile, seed) is built from; a change in it means a rebuild.
    ``needs`` ({name: directory}) are the needed products' directories if already resolved."""
    product, profile = PRODUCTS[name], resolve(profile).name
    needs = needs or {n: model_dir(n, profile=profile, seed=seed) for n in product.needs}
    return {"profile": profile, "seed": seed, "recipe": product.recipe(profile),
            "default_params": _plain(product.params(profile)),
            "data": {f: file_hash(DATA_DIR / f) for f in product.data},
            "packages": package_versions(),
            "needs": {n: _need_record(needs[n]) for n in product.needs}}


def _plain(value):
    """``value`` as it reads back from JSON (tuples become lists), so comparisons with records hold."""
    return json.loads(json.dumps(value))


def _directory(name: str, profile: str, seed: int) -> Path:
    """Where product ``name`` lives in the cache, built or not."""
    if name == SMOLLM2:
        from ftlib.engine.models import smollm2_dir
        return smollm2_dir()
    return course_home() / product_name(PRODUCTS[name].directory, profile, seed)


def full_params(name: str, profile: str, params: dict | None) -> dict:
    """The product's default parameters for ``profile``, overridden by ``params`` (unknown keys refused)."""
    defaults = PRODUCTS[name].params(profile)
    unknown = sorted(set(params or {}) - set(defaults))
    if unknown:
        raise KeyError(f"{name} has no parameter {', '.join(map(repr, unknown))}: "
                       f"it takes {', '.join(defaults) or 'none'}")
    return _plain({**defaults, **(params or {})})


def built_with(params: dict, rows=None) -> dict:
    """The ``built_with`` record: the parameters used and a hash of the rows trained on."""
    return {"params": params, "rows_sha256": None if rows is None else rows_hash(rows)}


def non_default(name: str, directory: str | Path, profile: str) -> dict:
    """``{parameter: (built with, default)}`` for each parameter of a built product that differs
    from its default (empty for a standard product)."""
    used = ((read_record(directory) or {}).get("built_with") or {}).get("params") or {}
    defaults = _plain(PRODUCTS[name].params(profile))
    return {k: (used[k], v) for k, v in defaults.items() if k in used and used[k] != v}


def model_dir(name: str, *, profile: str | None = None, seed: int = 0, rebuild: bool = False,
              params: dict | None = None) -> Path:
    """The cached directory of product ``name``, built (with what it needs) if missing or stale.

    ``params`` (e.g. ``{"near_threshold": 0.5}`` for ``course-base``) builds a variant; the cached
    product is rebuilt if it was built with other parameters. Without ``params`` the cached product
    is used whatever it was built with, with a :class:`NonDefaultProductWarning` if that was not
    the default.
    """
    if name == SMOLLM2:
        from ftlib.engine.models import smollm2_dir
        return smollm2_dir()
    if name not in PRODUCTS:
        raise KeyError(f"unknown product {name!r}: choose one of {', '.join(names())}")
    product, profile = PRODUCTS[name], resolve(profile).name
    wanted = full_params(name, profile, params)
    needs = {n: model_dir(n, profile=profile, seed=seed) for n in product.needs}

    def build(out: Path) -> dict:
        rows = product.build(out, profile=profile, seed=seed, needs=needs, params=wanted)
        return built_with(wanted, rows)

    def built_as_wanted(record: dict) -> bool:          # a variant asked for must be that variant
        return params is None or (record.get("built_with") or {}).get("params") == wanted
    path = cached(_directory(name, profile, seed).name, build, rebuild=rebuild, accept=built_as_wanted,
                  inputs=inputs(name, profile=profile, seed=seed, needs=needs))
    changed = non_default(name, path, profile)
    if changed and params is None:
        said = ", ".join(f"{k}={used!r} (default {default!r})" for k, (used, default) in changed.items())
        warnings.warn(f"{name} ({profile}, seed {seed}) in the cache was built with {said}; "
                      f"model_dir({name!r}, rebuild=True) rebuilds the standard one", NonDefaultProductWarning,
                      stacklevel=2)
    return path


def resolve_model_path(name: str, *, profile: str | None = None, seed: int = 0) -> str:
    """A course name -> its cached directory; anything else (a directory, a hub id) unchanged."""
    if name == SMOLLM2 or name in PRODUCTS:
        return str(model_dir(name, profile=profile, seed=seed))
    return name


def load_tokenizer(name: str = SMOLLM2, *, profile: str | None = None, seed: int = 0):
    from ftlib.engine.models import tokenizer_from
    return tokenizer_from(resolve_model_path(name, profile=profile, seed=seed))


def load_model(name: str = SMOLLM2, *, dtype: torch.dtype | None = None,
               device: torch.device | str | None = None, profile: str | None = None, seed: int = 0):
    """``(model, tokenizer)`` by course name, local directory or hub id (eval mode, fp32 by default).

    A product that is a LoRA adapter comes back merged into its base model, as a plain model.
    """
    from ftlib.engine.models import from_pretrained, tokenizer_from
    if name == ASSISTANT_RM:
        raise ValueError(f"{name} is a reward model (a score head, no LM head): load it with "
                         f"ftlib.products.alignment.load_reward_model({name!r})")
    if name == ASSISTANT_PAIRS:
        raise ValueError("assistant-pairs holds preference pairs, not a model: read them with "
                         "ftlib.products.alignment.load_pairs()")
    if name == ASSISTANT_OVEROPT:
        raise ValueError("assistant-overopt holds measured curves, not a model: read them with "
                         "ftlib.products.alignment.load_overopt()")
    product = PRODUCTS.get(name)
    if product is None or not product.adapter:
        return from_pretrained(resolve_model_path(name, profile=profile, seed=seed), dtype=dtype, device=device)
    from peft import PeftModel
    adapter = model_dir(name, profile=profile, seed=seed)
    model, tokenizer = from_pretrained(resolve_model_path(product.needs[0], profile=profile, seed=seed),
                                       dtype=dtype, device=device)
    model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    model.requires_grad_(True)     # PEFT froze the base weights; a merged model trains like any other
    return model.eval(), tokenizer_from(str(adapter))


def save_product(name: str, write: Callable[[Path], object], *, profile: str | None = None,
                 seed: int = 0, params: dict | None = None, rows=None) -> Path:
    """Store a product a notebook has just trained under its name (replacing the cached one), so
    later chapters load it instead of building their own. ``write(out_dir)`` saves it.

    ``params`` are the product's parameters the notebook used (the defaults where not given) and
    ``rows`` what it trained on (token rows or texts; hashed): both go into the record, so a
    product trained on other data is recorded as such and what depends on it is rebuilt."""
    profile = resolve(profile).name
    used = full_params(name, profile, params)
    # The needed products as they are in the cache now: the ones the notebook trained from. Not
    # model_dir, which could build or rebuild one in the middle of storing this product.
    needs = {n: _directory(n, profile, seed) for n in PRODUCTS[name].needs}
    missing = [n for n, d in needs.items() if read_record(d) is None and n != SMOLLM2]
    if missing:
        raise FileNotFoundError(f"save_product({name!r}): {', '.join(missing)} is not in the cache; "
                                "load it by name first (it is what this product is built from)")

    def store(out: Path) -> dict:
        write(out)
        return built_with(used, rows)
    return cached(_directory(name, profile, seed).name, store, rebuild=True,
                  inputs=inputs(name, profile=profile, seed=seed, needs=needs))


def build_record(name: str, *, profile: str | None = None, seed: int = 0) -> dict:
    """The ``product.json`` of a built product (inputs, built_with, ``build_seconds``), building it if needed."""
    return read_record(model_dir(name, profile=profile, seed=seed))
