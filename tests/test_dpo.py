"""ftlib.engine.dpo: answer-only log-probs of preference pairs, and the from-scratch DPO loss = TRL's DPOTrainer on chats."""
import copy

import pytest
import torch

from ftlib.data import load_preferences
from ftlib.engine.dpo import (DPORecipe, batch_dpo_loss, dpo_trainer, pair_batch, pair_logprobs,
                              preference_scores)
from ftlib.cores.losses import IGNORE


def test_pair_batch_labels_only_the_answer(tok):
    pairs = load_preferences("train")[:3]
    batch = pair_batch(tok, pairs)
    assert batch["input_ids"].shape[0] == 6                        # 3 chosen rows, then 3 rejected rows
    for i, (p, key) in enumerate([(p, "chosen") for p in pairs] + [(p, "rejected") for p in pairs]):
        labelled = batch["labels"][i][batch["labels"][i] != IGNORE].tolist()
        answer = tok.decode(labelled)
        assert answer.startswith(p[key]) and "<|im_end|>" in answer
        assert p["prompt"] not in answer                              # the prompt is masked
        n = int(batch["attention_mask"][i].sum())
        assert (batch["labels"][i, n:] == IGNORE).all()                # so is the padding


@pytest.mark.parametrize("sft_weight", [0.0, 0.5])
def test_dpo_loss_on_our_batch_equals_trl_on_its_own(tok, tmp_path, tiny_chat_lm, sft_weight):
    """Same pairs, model and reference: our tokenization, log-probs and loss give TRL's numbers, with
    and without the SFT term on the chosen answers (TRL's loss_type=["sigmoid", "sft"])."""
    ref = tiny_chat_lm()
    policy = copy.deepcopy(ref)
    with torch.no_grad():                                             # policy != reference, or the loss is ln 2
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    pairs = load_preferences("train")[:4]
    recipe = DPORecipe(steps=1, batch_size=4, lr=1e-4, beta=0.1, sft_weight=sft_weight)
    trainer = dpo_trainer(policy, tok, pairs, recipe, tmp_path, ref_model=ref)
    trl_batch = next(iter(trainer.get_train_dataloader()))
    policy.train()
    with torch.no_grad():
        trl_loss = trainer.compute_loss(policy, trl_batch)
        ours = batch_dpo_loss(policy, ref, pair_batch(tok, pairs), beta=0.1, sft_weight=sft_weight)
        chosen, rejected = pair_logprobs(policy, pair_batch(tok, pairs))
    logged = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    assert abs(ours["margin"].item()) > 1e-4
    if sft_weight:                                                    # the SFT term is large: it must be there
        assert ours["sft"].item() > 1.0 and ours["loss"].item() > sft_weight * ours["sft"].item()
    assert ours["loss"].item() == pytest.approx(trl_loss.item(), abs=1e-5)
    assert chosen.mean().item() == pytest.approx(logged["logps/chosen"], abs=1e-3)
    assert rejected.mean().item() == pytest.approx(logged["logps/rejected"], abs=1e-3)
    scores = preference_scores(policy, ref, tok, pairs, beta=0.1)
    assert sum(scores["correct"]) / 4 == pytest.approx(logged["rewards/accuracies"], abs=1e-6)


def test_dpo_trainer_lowers_the_loss_and_changes_the_policy(tok, tmp_path, tiny_chat_lm):
    policy = tiny_chat_lm()
    before = copy.deepcopy(policy.state_dict())
    pairs = load_preferences("train")[:32]
    trainer = dpo_trainer(policy, tok, pairs, DPORecipe(steps=8, batch_size=8, lr=3e-3, beta=0.1), tmp_path)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.05, losses
    assert any(not torch.equal(v, before[k]) for k, v in policy.state_dict().items())


@pytest.mark.parametrize("method", ["ipo", "orpo", "kto"])
def test_each_variant_trains_through_trl(tok, tmp_path, method, tiny_chat_lm):
    from ftlib.engine.dpo import preference_trainer
    policy = tiny_chat_lm()
    before = copy.deepcopy(policy.state_dict())
    trainer = preference_trainer(method, policy, tok, load_preferences("train")[:8],
                                 DPORecipe(steps=8, batch_size=8, lr=3e-3, beta=0.1), tmp_path)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 8 and all(l == l for l in losses)           # finite losses, one per step
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.01, losses  # the same 8 pairs each step: it must fall
    assert any(not torch.equal(v, before[k]) for k, v in policy.state_dict().items())


def test_unknown_preference_method_is_named(tok, tmp_path, tiny_chat_lm):
    from ftlib.engine.dpo import preference_trainer
    with pytest.raises(ValueError, match="dpo, ipo, orpo or kto"):
        preference_trainer("ppo", tiny_chat_lm(), tok, load_preferences("train")[:4], DPORecipe(steps=1, batch_size=4, lr=1e-4), tmp_path)


def test_a_fresh_copy_of_a_model_a_trainer_used_runs_its_own_weights(tok, tmp_path, tiny_chat_lm):
    """accelerate patches ``forward`` on the models a trainer was given; a deepcopy of the reference
    afterwards trains and evaluates with the reference's weights. ftlib.engine.models.fresh_copy does not."""
    from ftlib.engine.models import fresh_copy
    reference = tiny_chat_lm()
    dpo_trainer(copy.deepcopy(reference), tok, load_preferences("train")[:4],
                DPORecipe(steps=1, batch_size=4, lr=1e-4), tmp_path / "a", ref_model=reference).train()
    x = torch.tensor([[1, 5, 6, 7]])
    for make, own_weights in [(copy.deepcopy, False), (fresh_copy, True)]:
        policy = make(reference)
        dpo_trainer(policy, tok, load_preferences("train")[:16], DPORecipe(steps=2, batch_size=8, lr=3e-3),
                    tmp_path / make.__name__, ref_model=reference).train()
        with torch.no_grad():
            same = torch.allclose(policy(x).logits, reference(x).logits)
        assert same != own_weights, make.__name__      # deepcopy: the pitfall, pinned; fresh_copy: fixed
