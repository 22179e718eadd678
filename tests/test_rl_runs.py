"""ftlib.engine.rl_runs (chapter 06's runs) and ppo.kl_to_reference: GRPO through TRL moves the policy; KL is 0 to itself."""
import copy

import pytest
import torch

from ftlib.engine.ppo import kl_to_reference
from ftlib.products.registry import PRODUCTS, inputs
from ftlib.engine.rl_runs import (GRPO_RECIPES, PPO_RECIPES, RL_FAMILIES, RLRecipe, grpo_trainer, rl_rows, run_grpo,
                                   run_ppo)


def test_rl_rows_are_the_chosen_families_shuffled_and_disjoint_from_test():
    val, test = rl_rows("val"), rl_rows("test", per_family=5)
    assert {r["family"] for r in val} == set(RL_FAMILIES) and len(test) == 5 * len(RL_FAMILIES)
    assert [r["family"] for r in val[:6]] != sorted(r["family"] for r in val[:6]) or len(set(r["family"] for r in val[:6])) > 1
    assert not {r["prompt"] for r in val} & {r["prompt"] for r in rl_rows("test")}


def test_ppo_and_grpo_see_the_same_number_of_completions_per_step():
    for profile in ("smoke", "cpu", "gpu"):
        ppo, grpo = PPO_RECIPES[profile], GRPO_RECIPES[profile]
        assert ppo.prompts_per_step * ppo.group == grpo.prompts_per_step * grpo.group
        assert ppo.steps == grpo.steps and grpo.group > 1


def test_kl_to_reference_is_zero_for_the_model_itself_and_positive_for_another(tok, tiny_chat_lm):
    model, other = tiny_chat_lm(), tiny_chat_lm(seed=1)
    texts = [tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False, add_generation_prompt=True)
             for r in rl_rows("val", per_family=2)]
    same = kl_to_reference(model, copy.deepcopy(model), tok, texts, max_new_tokens=8)
    assert same["k1"] == pytest.approx(0.0, abs=1e-5) and same["k3"] == pytest.approx(0.0, abs=1e-5)
    diff = kl_to_reference(model, other, tok, texts, max_new_tokens=8)
    assert diff["k3"] > 0.01         # two random tiny models are both near uniform: small, but not 0


def test_grpo_and_ppo_runs_change_the_policy_and_log_the_reward(tok, tmp_path, tiny_chat_lm):
    from transformers import AutoModelForCausalLM
    rows = rl_rows("val", per_family=4)
    length_reward = lambda prompts, completions: [-len(c) / 50 for c in completions]   # noqa: E731
    recipe = RLRecipe(steps=2, prompts_per_step=2, group=4, lr=1e-3, kl_coef=0.02, max_new_tokens=8)
    tiny_chat_lm().save_pretrained(tmp_path)          # TRL loads GRPO's reference model from the policy's folder
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    before = copy.deepcopy(model.state_dict())
    log = run_grpo(model, tok, rows, {"short": length_reward}, recipe)
    assert len(log) == 2 and all("rewards/short/mean" in h for h in log)
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())
    model = tiny_chat_lm()
    history = run_ppo(model, tok, rows, length_reward, RLRecipe(steps=2, prompts_per_step=4, group=1, lr=1e-3,
                                                                kl_coef=0.02, max_new_tokens=8))
    assert len(history) == 2 and all(h["seconds"] > 0 for h in history)
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_the_reward_model_is_not_loaded_as_a_language_model():
    from ftlib.products.registry import load_model
    with pytest.raises(ValueError, match="load_reward_model"):
        load_model("course-rm", profile="smoke")


def test_chapter_06_products_are_registered_from_course_sft():
    for name in ("course-rm", "course-ppo", "course-grpo"):
        assert PRODUCTS[name].needs == ("course-sft",)
    assert inputs("course-ppo", profile="smoke", needs={"course-sft": "/nonexistent"})["recipe"]["ppo"] == \
        vars(PPO_RECIPES["smoke"])


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
    recipe = RLRecipe(steps=1, prompts_per_step=2, group=4, lr=1e-3, kl_coef=0.05, max_new_tokens=8)
    tiny_chat_lm().save_pretrained(tmp_path / "policy")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "policy")
    trainer = grpo_trainer(model, tok, rows, {"varied": varied}, recipe, tmp_path / "out")
    trainer.current_gradient_accumulation_steps = 1          # set by train(); one batch here
    batch = [trainer.train_dataset[i] for i in range(2) for _ in range(recipe.group)]   # TRL's sampler: each prompt `group` times
    torch.manual_seed(0)
    out = trainer._generate_and_score_completions(batch)
    assert len(given) == 8 and len(set(given)) > 1
    assert torch.allclose(out["advantages"], group_advantages(torch.tensor(given), recipe.group), atol=1e-5)

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
