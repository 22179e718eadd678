"""ftlib.cores.losses: each objective against a hand computation or an exact reference."""
import math

import pytest
import torch
import torch.nn.functional as F

from ftlib.cores.losses import (IGNORE, bradley_terry_loss, causal_lm_loss, dpo_loss, gae, group_advantages,
                                kl_estimates, ppo_clip_loss, sequence_logprobs)


def test_causal_lm_loss_is_token_weighted_and_skips_ignored_labels():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 5, 7), torch.randint(0, 7, (2, 5))
    labels[0, :3] = IGNORE
    want = F.cross_entropy(logits[:, :-1].reshape(-1, 7), labels[:, 1:].reshape(-1), ignore_index=IGNORE)
    assert torch.allclose(causal_lm_loss(logits, labels), want)
    per_row = [F.cross_entropy(logits[i, :-1], labels[i, 1:], ignore_index=IGNORE) for i in range(2)]
    assert not torch.allclose(causal_lm_loss(logits, labels), sum(per_row) / 2)   # not a mean of means


def test_sequence_logprobs_sum_only_the_labelled_tokens():
    torch.manual_seed(1)
    logits, labels = torch.randn(1, 4, 5), torch.tensor([[IGNORE, IGNORE, 3, 1]])
    logp = torch.log_softmax(logits, -1)
    assert torch.allclose(sequence_logprobs(logits, labels), logp[0, 1, 3] + logp[0, 2, 1])
    unmasked = torch.tensor([[2, 4, 3, 1]])
    assert sequence_logprobs(logits, unmasked) < sequence_logprobs(logits, labels)   # the prompt adds log-probs < 0


def test_bradley_terry_is_logistic_in_the_reward_gap():
    gap = torch.tensor([2.0, -1.0])
    want = torch.tensor([math.log1p(math.exp(-2.0)), math.log1p(math.exp(1.0))]).mean()
    assert torch.allclose(bradley_terry_loss(gap, torch.zeros(2)), want)


def test_dpo_loss_by_hand_and_at_the_reference():
    pc, pr, rc, rr = map(torch.tensor, ([-5.0, -4.0], [-9.0, -3.0], [-6.0, -4.0], [-8.0, -4.0]))
    out = dpo_loss(pc, pr, rc, rr, beta=0.5)
    margins = 0.5 * ((pc - rc) - (pr - rr))                                    # [1.0, -0.5]
    assert torch.allclose(out["loss"], -F.logsigmoid(margins).mean())
    assert out["accuracy"].item() == 0.5 and torch.allclose(out["margin"], margins.mean())
    at_ref = dpo_loss(rc, rr, rc, rr)
    assert torch.allclose(at_ref["loss"], torch.tensor(math.log(2)))           # policy = reference


def test_gae_against_a_hand_computed_example():
    rewards, values = torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.6, 0.7]])
    gamma, lam = 0.9, 0.8
    d2 = 1.0 - 0.7
    d1 = 0.0 + gamma * 0.7 - 0.6
    d0 = 0.0 + gamma * 0.6 - 0.5
    a2 = d2
    a1 = d1 + gamma * lam * a2
    a0 = d0 + gamma * lam * a1
    adv, ret = gae(rewards, values, gamma, lam)
    assert torch.allclose(adv, torch.tensor([[a0, a1, a2]]))
    assert torch.allclose(ret, adv + values)
    adv1, _ = gae(rewards, values, gamma=1.0, lam=1.0)                        # λ=1: returns minus values
    assert torch.allclose(adv1, torch.tensor([[1.0, 1.0, 1.0]]) - values)


def test_ppo_clip_on_known_ratios():
    old = torch.zeros(4)
    new = torch.log(torch.tensor([0.5, 1.0, 1.5, 1.1]))
    adv = torch.tensor([1.0, 1.0, 1.0, -1.0])
    loss, frac = ppo_clip_loss(new, old, adv, clip=0.2)
    # min(r·A, clip(r)·A): 0.5 (unclipped is lower), 1.0, 1.2 (clipped), -1.1 (unclipped is lower)
    assert torch.allclose(loss, -torch.tensor([0.5, 1.0, 1.2, -1.1]).mean())
    assert frac.item() == 0.25


def test_kl_estimators_are_unbiased_and_k3_is_nonnegative():
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(6, generator=g), 0)
    q = torch.softmax(torch.randn(6, generator=g), 0)
    exact = (p * (p / q).log()).sum()
    samples = torch.multinomial(p, 200_000, replacement=True, generator=g)
    est = kl_estimates(p.log()[samples], q.log()[samples])
    assert abs(est["k1"].mean() - exact) < 0.02 and abs(est["k3"].mean() - exact) < 0.02
    assert (est["k3"] >= 0).all() and (est["k1"] < 0).any()
    assert est["k3"].std() < est["k1"].std()


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")  # TRL's own deprecations
def test_dpo_loss_and_metrics_match_trl_dpo_trainer(tmp_path):
    """The same policy, reference and batch: TRL's DPOTrainer loss and logged rewards equal
    ftlib.cores.losses.dpo_loss on sequence_logprobs with the prompt masked."""
    import copy

    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from ftlib.data import load_preferences
    from ftlib.engine.models import TinyConfig, tiny_llama
    from ftlib.products.registry import load_tokenizer

    tok = load_tokenizer("smollm2-135m")
    torch.manual_seed(0)
    ref = tiny_llama(TinyConfig(vocab_size=len(tok), hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2,
                                intermediate_size=48, max_seq_len=256),
                     pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    policy = copy.deepcopy(ref)
    with torch.no_grad():                                   # policy != reference, or every reward is 0
        for p in policy.parameters():
            p.add_(0.02 * torch.randn_like(p))
    pairs = load_preferences("train")[:4]
    data = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    cfg = DPOConfig(output_dir=str(tmp_path), beta=0.1, per_device_train_batch_size=4, use_cpu=True,
                    report_to=[], max_steps=1, save_strategy="no", disable_tqdm=True)
    trainer = DPOTrainer(model=policy, ref_model=ref, args=cfg, train_dataset=data, processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))      # 4 chosen rows, then their 4 rejected rows
    policy.train()
    with torch.no_grad():
        trl_loss = trainer.compute_loss(policy, batch)
        labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, IGNORE)   # prompt masked
        lp = sequence_logprobs(policy(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, labels)
        lr = sequence_logprobs(ref(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, labels)
    ours = dpo_loss(lp[:4], lp[4:], lr[:4], lr[4:], beta=0.1)
    logged = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    assert abs(ours["margin"].item()) > 1e-4                               # not trivially equal
    assert ours["loss"].item() == pytest.approx(trl_loss.item(), abs=1e-5)
    assert ours["chosen_reward"].item() == pytest.approx(logged["rewards/chosen"], abs=1e-5)
    assert ours["rejected_reward"].item() == pytest.approx(logged["rewards/rejected"], abs=1e-5)
    assert ours["accuracy"].item() == pytest.approx(logged["rewards/accuracies"], abs=1e-6)
    assert lp[:4].mean().item() == pytest.approx(logged["logps/chosen"], abs=1e-3)


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
def test_bradley_terry_matches_trl_reward_trainer(tmp_path):
    """A reward model (sequence-classification head, last-token reward) on the same batch: TRL's
    RewardTrainer loss equals ftlib.cores.losses.bradley_terry_loss on the model's rewards."""
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    from ftlib.data import load_preferences
    from ftlib.products.registry import load_tokenizer

    tok = load_tokenizer("smollm2-135m")
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_labels=1, pad_token_id=tok.pad_token_id, max_position_embeddings=256))
    pairs = load_preferences("train")[:4]
    data = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    cfg = RewardConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, use_cpu=True, report_to=[],
                       max_steps=1, save_strategy="no", disable_tqdm=True)
    trainer = RewardTrainer(model=model, args=cfg, train_dataset=data, processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))      # 4 chosen rows, then their 4 rejected rows
    model.train()
    with torch.no_grad():
        trl_loss = trainer.compute_loss(model, batch)
        rewards = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
    assert abs((rewards[:4] - rewards[4:]).mean().item()) > 1e-4
    assert bradley_terry_loss(rewards[:4], rewards[4:]).item() == pytest.approx(trl_loss.item(), abs=1e-6)
    logged = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    assert (rewards[:4] > rewards[4:]).float().mean().item() == pytest.approx(logged["accuracy"])


def test_group_advantages_are_zero_mean_unit_spread_per_group_and_zero_for_a_flat_group():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 3.0, 1.0, 2.0, 0.0])
    adv = group_advantages(rewards, group=4).view(3, 4)
    assert torch.allclose(adv.mean(dim=1), torch.zeros(3), atol=1e-6)
    assert torch.equal(adv[1], torch.zeros(4))                            # all alike: nothing to learn
    assert adv[0].std().item() == pytest.approx(1.0, abs=1e-3) and adv[2].argmax() == 0
    with pytest.raises(ValueError, match="multiple of group=4"):
        group_advantages(torch.ones(6), group=4)
