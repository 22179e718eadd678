"""ftlib.engine.rl_runs (chapter 06's runs) and ppo.kl_to_reference: PPO and GRPO get one budget, GRPO through TRL
moves the policy against the policy as its reference, KL is 0 to itself, GRPO's loss matches TRL's."""
import copy

import pytest
import torch

from ftlib.engine.ppo import kl_to_reference
from ftlib.products.registry import PRODUCTS, inputs
from ftlib.engine.rl_runs import RL_FAMILIES, RL_RECIPES, RLRecipe, grpo_trainer, rl_rows, run_grpo, run_ppo


def test_rl_rows_are_the_chosen_families_shuffled_and_disjoint_from_test():
    train, test = rl_rows("train"), rl_rows("test", per_family=5)
    assert {r["family"] for r in train} == set(RL_FAMILIES) and len(test) == 5 * len(RL_FAMILIES)
    assert len(train) == 250 * len(RL_FAMILIES) and all("-train-" in r["id"] for r in train)
    assert len({r["family"] for r in train[:6]}) > 1                       # shuffled, not family by family
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in rl_rows("test") + rl_rows("val")}


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_ppo_and_grpo_budgets_split_into_whole_groups_and_mini_batches(profile):
    recipe = RL_RECIPES[profile]
    assert recipe.samples % recipe.group == 0 and recipe.samples % recipe.mini_batches == 0 and recipe.group > 1
    assert recipe.updates == recipe.rollouts * recipe.epochs * recipe.mini_batches


def test_kl_to_reference_is_zero_for_the_model_itself_and_positive_for_another(tok, tiny_chat_lm):
    model, other = tiny_chat_lm(), tiny_chat_lm(seed=1)
    texts = [tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False, add_generation_prompt=True)
             for r in rl_rows("val", per_family=2)]
    same = kl_to_reference(model, copy.deepcopy(model), tok, texts, max_new_tokens=8)
    assert same["k1"] == pytest.approx(0.0, abs=1e-5) and same["k3"] == pytest.approx(0.0, abs=1e-5)
    diff = kl_to_reference(model, other, tok, texts, max_new_tokens=8)
    assert diff["k3"] > 0.01         # two random tiny models are both near uniform: small, but not 0


def test_grpo_and_ppo_runs_change_the_policy_and_log_the_reward(tok, tiny_chat_lm):
    rows = rl_rows("val", per_family=4)
    length_reward = lambda prompts, completions: [-len(c) / 50 for c in completions]   # noqa: E731
    recipe = RLRecipe(rollouts=2, samples=8, group=4, lr=1e-3, kl_coef=0.02, max_new_tokens=8)
    model = tiny_chat_lm()
    model.config._name_or_path = "/nonexistent"     # TRL must not load its reference from here
    before = copy.deepcopy(model.state_dict())
    log = run_grpo(model, tok, rows, {"short": length_reward}, recipe)
    assert len(log) == recipe.updates and sum("rewards/short/mean" in h for h in log) == recipe.rollouts
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert model.config._name_or_path == "/nonexistent"
    model = tiny_chat_lm()
    history = run_ppo(model, tok, rows, length_reward, recipe)
    assert len(history) == recipe.rollouts and all(h["seconds"] > 0 for h in history)
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_grpo_reference_is_the_policy_as_it_starts_not_what_its_config_names(tok, tmp_path, tiny_chat_lm):
    model, other = tiny_chat_lm(), tiny_chat_lm(seed=1)
    other.save_pretrained(tmp_path / "other")
    model.config._name_or_path = str(tmp_path / "other")    # like a merged adapter: the config names its base
    recipe = RLRecipe(rollouts=1, samples=8, group=4, lr=1e-3, kl_coef=0.02, max_new_tokens=8)
    trainer = grpo_trainer(model, tok, rl_rows("val", per_family=2), {"r": lambda p, c: [0.0] * len(c)}, recipe,
                           tmp_path / "out")
    ref, elsewhere = dict(trainer.ref_model.named_parameters()), dict(other.named_parameters())
    assert all(torch.equal(p, ref[name]) for name, p in model.named_parameters())
    assert any(not torch.equal(p, elsewhere[name]) for name, p in model.named_parameters())


def test_the_reward_model_is_not_loaded_as_a_language_model():
    from ftlib.products.registry import load_model
    with pytest.raises(ValueError, match="load_reward_model"):
        load_model("assistant-rm", profile="smoke")


def test_chapter_06_products_are_registered_from_the_assistant():
    assert PRODUCTS["assistant-rm"].needs == ("assistant-pairs",)
    for name in ("assistant-ppo", "assistant-grpo"):
        assert PRODUCTS[name].needs == ("smollm2-sft-lora",)
        recipe = inputs(name, profile="smoke", needs={"smollm2-sft-lora": "/nonexistent"})["recipe"]
        assert recipe["rl"] == {**vars(RL_RECIPES["smoke"])} and recipe["families"] == list(RL_FAMILIES)


def test_group_advantages_and_grpo_loss_match_trls_grpo_trainer_on_one_batch(tok, tmp_path, tiny_chat_lm):
    from transformers import AutoModelForCausalLM

    from ftlib.cores.losses import group_advantages, grpo_loss
    from ftlib.engine.ppo import forward_response
    rows = rl_rows("val", per_family=2)[:2]
    given: list[float] = []

    def varied(prompts, completions):         # rewards that differ within a group, remembered as TRL receives them
        out = [float(len(c) % 3) for c in completions]
        given.extend(out)
        return out
    recipe = RLRecipe(rollouts=1, samples=8, group=4, lr=1e-3, kl_coef=0.05, epochs=1, mini_batches=1, max_new_tokens=8)
    tiny_chat_lm().save_pretrained(tmp_path / "policy")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "policy")
    trainer = grpo_trainer(model, tok, rows, {"varied": varied}, recipe, tmp_path / "out")
    trainer.current_gradient_accumulation_steps = 1          # set by train(); one batch here
    batch = [trainer.train_dataset[i] for i in range(2) for _ in range(recipe.group)]   # TRL's sampler: each prompt `group` times
    torch.manual_seed(0)
    out = trainer._generate_and_score_completions(batch)
    assert len(given) == 8 and len(set(given)) > 1
    assert torch.allclose(out["advantages"], group_advantages(torch.tensor(given), recipe.group), atol=1e-5)
    out["completion_mask"][0, 3:] = 0                  # completions of different lengths: a per-completion mean
    out["completion_mask"][1, 5:] = 0                  # (GRPO) and a token mean (TRL's default, DAPO) now differ

    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
    attn = torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1)
    model.train()
    logprobs, _, _ = forward_response(model, ids, attn, out["completion_ids"].shape[1], temperature=1.0)
    old = logprobs.detach() + 0.3 * torch.randn_like(logprobs)       # an older policy, so clipping is active
    out["old_per_token_logps"] = old
    ours = grpo_loss(logprobs, old, out["advantages"], out["completion_mask"], ref_logprobs=out["ref_per_token_logps"],
                     beta=recipe.kl_coef)
    theirs = trainer._compute_loss(model, out)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-4, abs=1e-6)
    wrong = grpo_loss(logprobs, old, out["advantages"], out["completion_mask"], ref_logprobs=out["ref_per_token_logps"],
                      beta=recipe.kl_coef, clip=10.0)                  # no clipping: a different loss
    assert wrong.item() != pytest.approx(theirs.item(), rel=1e-3)
