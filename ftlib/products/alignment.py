"""The products of chapters 06-07, all grown from the course assistant (``smollm2-sft-lora``, merged).

- ``assistant-pairs``: the assistant's own preference pairs, sampled on prompts it never trained on
  and labelled by the verifiers (:func:`ftlib.data.onpolicy.onpolicy_pairs`); data, not a model.
- ``assistant-rm``: a reward model on the assistant's trunk, trained on those pairs.
- ``assistant-ppo`` and ``assistant-grpo``: the assistant after PPO and after GRPO with the
  verifiers as reward, on one budget (:data:`ftlib.engine.rl_runs.RL_RECIPES`).
- ``assistant-overopt``: reward over-optimisation measured (PPO against a proxy reward model, with
  and without a KL penalty); curves, not a model.

Each builder is the chapter's own code path; the chapters load these by name and measure them.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

from ftlib.products.registry import (ASSISTANT_DPO, ASSISTANT_FRONTIER, ASSISTANT_GRPO, ASSISTANT_OVEROPT,
                                     ASSISTANT_PAIRS, ASSISTANT_PPO, ASSISTANT_RM, ASSISTANT_VARIANTS,
                                     SMOLLM2_SFT_LORA, Product, register, resolve_model_path)


def _assistant(profile: str, seed: int):
    """The merged assistant, on the best device: ``(model, tokenizer)``."""
    from ftlib.engine.hardware import pick_device
    from ftlib.products.registry import load_model
    return load_model(SMOLLM2_SFT_LORA, profile=profile, seed=seed, device=pick_device())


def _assistant_reward_model(model, tokenizer):
    """A reward model on the merged assistant ``model``'s weights: its transformer and a new score head,
    on the best device: ``(reward model, tokenizer)``."""
    from ftlib.engine.hardware import pick_device
    from ftlib.engine.models import save_model
    from ftlib.engine.reward import reward_model_from
    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, tokenizer, tmp)
        rm, rm_tokenizer = reward_model_from(tmp)
    return rm.to(pick_device()), rm_tokenizer


# ---------------------------------------------------------------------------------------------
# assistant-pairs (chapters 06-07): the assistant's own right and wrong answers
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


# ---------------------------------------------------------------------------------------------
# assistant-rm (chapter 06): Bradley-Terry on the assistant's pairs
# ---------------------------------------------------------------------------------------------
def _rm_recipe(profile: str) -> dict:
    from ftlib.engine.reward import RM_RECIPES
    return {"reward_model": asdict(RM_RECIPES[profile])}


def build_assistant_rm(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
    """The assistant's transformer with a score head, trained with
    :func:`ftlib.engine.reward.train_reward_model` on the ``assistant-pairs`` training pairs.
    Returns the pairs' ids."""
    from ftlib.engine.models import save_model
    from ftlib.engine.reward import RM_RECIPES, train_reward_model
    pairs = load_pairs("train", profile=profile, seed=seed)
    rm, rm_tokenizer = _assistant_reward_model(*_assistant(profile, seed))
    history = train_reward_model(rm, rm_tokenizer, pairs, RM_RECIPES[profile], seed=seed, progress=True)
    save_model(rm, rm_tokenizer, out_dir, log_name="reward_model", log=history)
    return [p["id"] for p in pairs]


def load_reward_model(name: str = ASSISTANT_RM, *, profile: str | None = None, seed: int = 0):
    """``(reward model, tokenizer)`` by course name (built if missing) or directory."""
    from ftlib.engine.reward import reward_model_from
    return reward_model_from(resolve_model_path(name, profile=profile, seed=seed))


register(Product(ASSISTANT_RM, "assistant-rm", build_assistant_rm, _rm_recipe, needs=(ASSISTANT_PAIRS,)))


# ---------------------------------------------------------------------------------------------
# assistant-ppo, assistant-grpo (chapter 06): RL with the verifiers as reward, one budget
# ---------------------------------------------------------------------------------------------
def _rl_recipe(profile: str) -> dict:
    from ftlib.data.onpolicy import RL_POOL
    from ftlib.engine.rl_runs import RL_FAMILIES, RL_RECIPES
    return {"rl": asdict(RL_RECIPES[profile]), "families": list(RL_FAMILIES), "pool": list(RL_POOL),
            "reward": "verifier"}


def _build_rl(kind: str, **change):
    """The builder of an RL product: ``kind`` ("ppo" or "grpo") on :data:`ftlib.engine.rl_runs.RL_RECIPES`
    with the fields in ``change`` replaced (e.g. ``kl_coef``)."""
    def build(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
        """The assistant after PPO (:func:`ftlib.engine.rl_runs.run_ppo`) or GRPO
        (:func:`ftlib.engine.rl_runs.run_grpo`) with the verifiers as reward; the log of every
        rollout is saved beside it. Returns the ids of the RL prompts."""
        from ftlib.engine.models import save_model
        from ftlib.engine.reward import verifier_reward
        from ftlib.engine.rl_runs import RL_RECIPES, rl_rows, run_grpo, run_ppo
        model, tokenizer = _assistant(profile, seed)
        rows = rl_rows("train", seed=seed)
        recipe = replace(RL_RECIPES[profile], **change)
        if kind == "ppo":
            history = run_ppo(model, tokenizer, rows, verifier_reward(rows), recipe, seed=seed, progress=True)
        else:
            history = run_grpo(model, tokenizer, rows, {"verifier": verifier_reward(rows)}, recipe, seed=seed,
                               progress=True)
        save_model(model, tokenizer, out_dir, log_name=kind, log=history)
        return [r["id"] for r in rows]
    build.__name__ = f"build_assistant_{kind}"
    return build


build_assistant_ppo, build_assistant_grpo = _build_rl("ppo"), _build_rl("grpo")
register(Product(ASSISTANT_PPO, "assistant-ppo", build_assistant_ppo, _rl_recipe, data=("tasks_train.jsonl",),
                 needs=(SMOLLM2_SFT_LORA,)))
register(Product(ASSISTANT_GRPO, "assistant-grpo", build_assistant_grpo, _rl_recipe, data=("tasks_train.jsonl",),
                 needs=(SMOLLM2_SFT_LORA,)))


# ---------------------------------------------------------------------------------------------
# assistant-overopt (chapter 06): reward over-optimisation, the KL coefficient the only difference
# ---------------------------------------------------------------------------------------------
def _overopt_recipe(profile: str) -> dict:
    from ftlib.engine.reward import RM_RECIPES
    from ftlib.engine.rl_runs import OVEROPT_RECIPES, RL_RECIPES
    return {"overopt": asdict(OVEROPT_RECIPES[profile]), "rl": asdict(RL_RECIPES[profile]),
            "proxy_rm": asdict(RM_RECIPES[profile])}


def build_assistant_overopt(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
    """A proxy reward model trained on the first ``proxy_pairs`` training pairs of the RL families (as
    many of each), then PPO from the assistant against it once per KL coefficient, with the same
    prompts, learning rate and updates. Every ``probe_every`` rollouts the policy answers fixed held-out prompts once
    (same seed each time) and the proxy and the verifier score the same answers. Writes
    ``overopt.json`` (the proxy's held-out pairwise accuracy, each run's probe curve and rollout
    log); no model is kept. Returns the ids of the pairs and prompts used."""
    from ftlib.engine.models import fresh_copy
    from ftlib.engine.reward import RM_RECIPES, model_reward, pairwise, train_reward_model, verifier_reward
    from ftlib.engine.rl_runs import OVEROPT_RECIPES, RL_FAMILIES, RL_RECIPES, probe, rl_rows, run_ppo
    recipe, rl = OVEROPT_RECIPES[profile], RL_RECIPES[profile]
    train = load_pairs("train", profile=profile, seed=seed)
    per_family = recipe.proxy_pairs // len(RL_FAMILIES)
    proxy_pairs = [p for f in RL_FAMILIES for p in [q for q in train if q["family"] == f][:per_family]]
    held_out = [p for p in load_pairs("test", profile=profile, seed=seed) if p["family"] in RL_FAMILIES]
    start, tokenizer = _assistant(profile, seed)
    proxy, proxy_tokenizer = _assistant_reward_model(start, tokenizer)
    train_reward_model(proxy, proxy_tokenizer, proxy_pairs, replace(RM_RECIPES[profile], max_pairs=0), seed=seed)
    record = {"proxy": {"pairs": len(proxy_pairs), "held_out": [{"id": p["id"], "correct": c} for p, c in
                                                                zip(held_out, pairwise(proxy, proxy_tokenizer, held_out)["correct"])]},
              "runs": {}}
    rows, probe_rows = rl_rows("train", seed=seed), rl_rows("test", per_family=recipe.probe_per_family, seed=seed)
    rewards = {"proxy": model_reward(proxy, proxy_tokenizer), "gold": verifier_reward(probe_rows)}
    ref = fresh_copy(start).eval()
    for beta in recipe.kl_coefs:
        policy = fresh_copy(start)
        look = lambda step: {"rollout": step, **probe(policy, ref, tokenizer, probe_rows, rewards,   # noqa: E731
                                                       max_new_tokens=rl.max_new_tokens, seed=seed + 1)}
        curve = [look(0)]

        def every(step, stats, curve=curve, look=look):
            if (step + 1) % recipe.probe_every == 0 or step + 1 == recipe.rollouts:
                curve.append(look(step + 1))
        history = run_ppo(policy, tokenizer, rows, rewards["proxy"],
                          replace(rl, rollouts=recipe.rollouts, lr=recipe.lr, kl_coef=beta), seed=seed,
                          on_step=every, progress=True)
        record["runs"][str(beta)] = {"kl_coef": beta, "curve": curve, "history": history}
    (Path(out_dir) / "overopt.json").write_text(json.dumps(record))
    return [p["id"] for p in proxy_pairs] + [r["id"] for r in rows]


def load_overopt(*, profile: str | None = None, seed: int = 0) -> dict:
    """``assistant-overopt``'s record (built if missing): the proxy and each KL coefficient's curve."""
    return json.loads((Path(resolve_model_path(ASSISTANT_OVEROPT, profile=profile, seed=seed)) / "overopt.json")
                      .read_text())


register(Product(ASSISTANT_OVEROPT, "assistant-overopt", build_assistant_overopt, _overopt_recipe,
                 data=("tasks_train.jsonl",), needs=(ASSISTANT_PAIRS,)))


# ---------------------------------------------------------------------------------------------
# assistant-dpo (chapter 07): DPO on the assistant's own pairs
# ---------------------------------------------------------------------------------------------
def _dpo_recipe(profile: str) -> dict:
    from ftlib.engine.dpo import ASSISTANT_DPO_RECIPES
    return {"dpo": asdict(ASSISTANT_DPO_RECIPES[profile])}


def _train_preference(method: str, start, tokenizer, pairs, recipe, seed: int):
    """A fresh copy of ``start`` trained with ``method`` ("dpo", "ipo", "orpo", "kto") through TRL on
    ``pairs`` (reference: a frozen copy of ``start``): ``(policy in eval mode, TRL's log, seconds)``."""
    import time

    from ftlib.engine.dpo import preference_trainer
    from ftlib.engine.models import fresh_copy
    policy = fresh_copy(start)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = preference_trainer(method, policy, tokenizer, pairs, recipe, tmp, seed=seed)
        began = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - began
    return policy.eval(), trainer.state.log_history, seconds


def _build_preference(method: str, **change):
    """The builder of a preference product: ``method`` on :data:`ftlib.engine.dpo.ASSISTANT_DPO_RECIPES`
    with the fields in ``change`` replaced (e.g. ``beta``, ``sft_weight``)."""
    def build(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
        """The assistant after ``method`` through TRL on the ``assistant-pairs`` training pairs; TRL's
        log is saved beside it. Returns the pairs' ids."""
        from ftlib.engine.dpo import ASSISTANT_DPO_RECIPES
        from ftlib.engine.models import save_model
        pairs = load_pairs("train", profile=profile, seed=seed)
        start, tokenizer = _assistant(profile, seed)
        policy, log, _ = _train_preference(method, start, tokenizer, pairs,
                                           replace(ASSISTANT_DPO_RECIPES[profile], **change), seed)
        save_model(policy, tokenizer, out_dir, log_name=method, log=log)
        return [p["id"] for p in pairs]
    return build


build_assistant_dpo = _build_preference("dpo")
build_assistant_dpo.__name__ = "build_assistant_dpo"
register(Product(ASSISTANT_DPO, "assistant-dpo", build_assistant_dpo, _dpo_recipe, needs=(ASSISTANT_PAIRS,)))


# ---------------------------------------------------------------------------------------------
# The frontier's and the variants' policies (chapter 07): one product each, one knob changed
# ---------------------------------------------------------------------------------------------
def dpo_name(beta: float) -> str:
    """The product of DPO at ``beta`` on assistant-dpo's budget (``assistant-dpo`` itself at its own β)."""
    from ftlib.engine.dpo import ASSISTANT_DPO_RECIPES
    return ASSISTANT_DPO if beta == ASSISTANT_DPO_RECIPES["cpu"].beta else f"assistant-dpo-beta{beta:g}"


def ppo_name(kl_coef: float) -> str:
    """The product of PPO at KL coefficient ``kl_coef`` on assistant-ppo's budget."""
    from ftlib.engine.rl_runs import RL_RECIPES
    return ASSISTANT_PPO if kl_coef == RL_RECIPES["cpu"].kl_coef else f"assistant-ppo-kl{kl_coef:g}"


def variant_name(method: str) -> str:
    """The product of a preference method without the SFT term, on assistant-dpo's budget
    (``assistant-dpo-nosft`` for DPO itself)."""
    return "assistant-dpo-nosft" if method == "dpo" else f"assistant-{method}"


def _register_dpo(name: str, method: str, **change):
    """Register ``name``: the assistant after ``method`` on the assistant-dpo recipe with ``change``."""
    def recipe(profile: str) -> dict:
        from ftlib.engine.dpo import ASSISTANT_DPO_RECIPES
        return {"method": method, "dpo": asdict(replace(ASSISTANT_DPO_RECIPES[profile], **change))}

    build = _build_preference(method, **change)
    build.__name__ = f"build_{name.replace('-', '_').replace('.', '_')}"
    register(Product(name, name, build, recipe, needs=(ASSISTANT_PAIRS,)))


def _register_ppo(name: str, kl_coef: float):
    """Register ``name``: assistant-ppo's run with only the KL coefficient changed."""
    def recipe(profile: str) -> dict:
        return {**_rl_recipe(profile), "rl": {**_rl_recipe(profile)["rl"], "kl_coef": kl_coef}}

    build = _build_rl("ppo", kl_coef=kl_coef)
    build.__name__ = f"build_{name.replace('-', '_').replace('.', '_')}"
    register(Product(name, name, build, recipe, data=("tasks_train.jsonl",), needs=(SMOLLM2_SFT_LORA,)))


def _register_policies():
    from ftlib.engine.dpo import FRONTIER_BETAS, FRONTIER_KL_COEFS, VARIANTS
    for beta in FRONTIER_BETAS:
        _register_dpo(dpo_name(beta), "dpo", beta=beta)
    for coef in FRONTIER_KL_COEFS:
        _register_ppo(ppo_name(coef), coef)
    for method in VARIANTS:
        _register_dpo(variant_name(method), method, sft_weight=0.0)


_register_policies()


# ---------------------------------------------------------------------------------------------
# assistant-frontier, assistant-variants (chapter 07): those policies scored alike, stored
# ---------------------------------------------------------------------------------------------
def frontier_rows(profile: str, seed: int = 0) -> list[dict]:
    """The frontier's items: test items of the RL families (all of them; 4 each in ``smoke``), where
    PPO and DPO both trained."""
    from ftlib.engine.rl_runs import rl_rows
    return rl_rows("test", per_family=4 if profile == "smoke" else None, seed=seed)


def variant_rows(profile: str) -> list[dict]:
    """Chapter 07's held-out items: test items of every skill family (all of them; 2 each in ``smoke``)."""
    from ftlib.data import first_per_family
    from ftlib.data.tasks import SKILL_FAMILIES
    return first_per_family("test", 2 if profile == "smoke" else None, SKILL_FAMILIES)


def _frontier_points() -> list[tuple[str, str, str, float]]:
    """(product, method, knob, value) of every frontier point, the assistant first."""
    from ftlib.engine.dpo import ASSISTANT_DPO_RECIPES, FRONTIER_BETAS, FRONTIER_KL_COEFS
    from ftlib.engine.rl_runs import RL_RECIPES
    betas = sorted({ASSISTANT_DPO_RECIPES["cpu"].beta, *FRONTIER_BETAS})
    coefs = sorted({RL_RECIPES["cpu"].kl_coef, *FRONTIER_KL_COEFS})
    return ([(SMOLLM2_SFT_LORA, "start", "", 0.0)] + [(dpo_name(b), "DPO", "beta", b) for b in betas]
            + [(ppo_name(c), "PPO", "kl_coef", c) for c in coefs])


def _score_products(names, profile: str, seed: int, rows, pairs=None) -> dict:
    """:func:`~ftlib.metrics.policy.score_policy` of each product in ``names`` against the assistant,
    on ``rows`` (and ``pairs``), with the same sampling seed: {name: scores as JSON}."""
    from ftlib.engine.dpo import ASSISTANT_DPO_RECIPES
    from ftlib.engine.models import fresh_copy
    from ftlib.metrics.policy import score_policy
    from ftlib.products.registry import load_model
    start, tokenizer = _assistant(profile, seed)
    ref, out = fresh_copy(start).eval(), {}
    for name in names:
        model = start if name == SMOLLM2_SFT_LORA else load_model(name, profile=profile, seed=seed, device=ref.device)[0]
        out[name] = score_policy(model, ref, tokenizer, rows, pairs=pairs, beta=ASSISTANT_DPO_RECIPES[profile].beta,
                                 seed=seed + 1).to_json()
    return out


def _frontier_recipe(profile: str) -> dict:
    return {"points": [list(p) for p in _frontier_points()], "rows": "test items of the RL families"}


def build_assistant_frontier(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
    """Every frontier policy scored alike on :func:`frontier_rows`: greedy and sampled accuracy and
    the sample's KL to the assistant. Writes ``frontier.json``; trains nothing."""
    rows = frontier_rows(profile, seed)
    scores = _score_products([p[0] for p in _frontier_points()], profile, seed, rows)
    points = [{"product": name, "method": method, "knob": knob, "value": value, "scores": scores[name]}
              for name, method, knob, value in _frontier_points()]
    (Path(out_dir) / "frontier.json").write_text(json.dumps({"rows": [r["id"] for r in rows], "points": points}))
    return [r["id"] for r in rows]


def load_frontier(*, profile: str | None = None, seed: int = 0) -> dict:
    """``assistant-frontier``'s record (built if missing): ``rows`` (item ids) and ``points``, each
    with its product, method, knob, value and :class:`~ftlib.metrics.policy.PolicyScores` as JSON."""
    return json.loads((Path(resolve_model_path(ASSISTANT_FRONTIER, profile=profile, seed=seed)) / "frontier.json")
                      .read_text())


register(Product(ASSISTANT_FRONTIER, "assistant-frontier", build_assistant_frontier, _frontier_recipe,
                 data=("tasks_test.jsonl",), needs=tuple(p[0] for p in _frontier_points())))


def _variant_products() -> list[tuple[str, str]]:
    """(method, product) of the variants table: the assistant, assistant-dpo (DPO with the SFT term),
    then each variant without it."""
    from ftlib.engine.dpo import VARIANTS
    return [("start", SMOLLM2_SFT_LORA), ("dpo+sft", ASSISTANT_DPO)] + [(m, variant_name(m)) for m in VARIANTS]


def build_assistant_variants(out_dir, *, profile: str, seed: int, needs: dict, params: dict):
    """The variants' policies scored alike on :func:`variant_rows` and the held-out pairs. Writes
    ``variants.json``; trains nothing."""
    rows, pairs = variant_rows(profile), load_pairs("test", profile=profile, seed=seed)
    scores = _score_products([name for _, name in _variant_products()], profile, seed, rows, pairs)
    runs = {method: {"product": name, "scores": scores[name]} for method, name in _variant_products()}
    (Path(out_dir) / "variants.json").write_text(json.dumps({"rows": [r["id"] for r in rows], "runs": runs}))
    return [r["id"] for r in rows]


def load_variants(*, profile: str | None = None, seed: int = 0) -> dict:
    """``assistant-variants``' record (built if missing): ``rows`` (item ids) and, per method, its
    product and :class:`~ftlib.metrics.policy.PolicyScores` as JSON."""
    return json.loads((Path(resolve_model_path(ASSISTANT_VARIANTS, profile=profile, seed=seed)) / "variants.json")
                      .read_text())


register(Product(ASSISTANT_VARIANTS, "assistant-variants", build_assistant_variants,
                 lambda profile: {"runs": [list(v) for v in _variant_products()]}, data=("tasks_test.jsonl",),
                 needs=tuple(name for _, name in _variant_products())))
