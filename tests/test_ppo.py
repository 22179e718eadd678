"""ftlib.engine.ppo: value head, rollout bookkeeping, and PPO raising a toy reward on a tiny Llama."""
import copy

import pytest
import torch

from ftlib.engine.models import TinyConfig, tiny_llama
from ftlib.engine.ppo import PolicyWithValue, PPOConfig, rollout, train_ppo

SPECIAL = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]   # ids 0..4, as ftlib.engine.pretrain
LETTERS = "abcdefgh"                                                 # ids 5..12
PROMPTS = ["bc", "de", "fgh", "c", "hg", "efd", "bb", "gfe"]


@pytest.fixture(scope="module")
def tokenizer():
    """A real transformers tokenizer with one token per letter: 13 tokens in all."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(SPECIAL + list(LETTERS))}, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(SPECIAL)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def tiny_lm(vocab_size: int, seed: int = 0):
    torch.manual_seed(seed)
    return tiny_llama(TinyConfig(vocab_size=vocab_size, hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2,
                                 intermediate_size=64, max_seq_len=64))


def count_a(cfg):
    return lambda prompts, completions: [c.count("a") / cfg.max_new_tokens for c in completions]


def test_value_head_gives_one_value_per_token_and_leaves_logits_alone():
    lm = tiny_lm(13).eval()
    policy = PolicyWithValue(lm)
    torch.nn.init.normal_(policy.value_head.weight)          # zero-initialised: make values non-trivial
    torch.nn.init.normal_(policy.value_head.bias)
    ids = torch.randint(0, 13, (3, 7))
    with torch.no_grad():
        logits, values = policy(ids)
        out = lm(ids, output_hidden_states=True)
    assert values.shape == (3, 7) and logits.shape == (3, 7, 13)
    assert torch.equal(logits, out.logits)
    want = out.hidden_states[-1] @ policy.value_head.weight[0] + policy.value_head.bias
    assert torch.allclose(values, want, atol=1e-6) and values.std() > 0


def test_rollout_masks_stop_tokens_and_places_rewards(tokenizer):
    lm = tiny_lm(len(tokenizer))
    ref = copy.deepcopy(lm)
    with torch.no_grad():                                     # policy != reference: KL penalty != 0
        for p in lm.parameters():
            p.add_(0.05 * torch.randn_like(p))
    policy = PolicyWithValue(lm)
    cfg = PPOConfig(batch_size=16, max_new_tokens=8, kl_coef=0.1)
    scores = [float(i) for i in range(16)]
    torch.manual_seed(1)
    b = rollout(policy, ref, tokenizer, (PROMPTS * 2)[:16], lambda p, c: scores, cfg)

    P, (B, R) = b.prompt_length, b.response_mask.shape
    response = b.input_ids[:, P:]
    stops = torch.isin(response, torch.tensor([tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")]))
    stopped_early = 0
    for i in range(B):
        where = stops[i].nonzero().flatten().tolist()
        n = where[0] + 1 if where else R                      # up to and including the first stop
        assert b.response_mask[i].tolist() == [1] * n + [0] * (R - n)
        assert (response[i, n:] == tokenizer.pad_token_id).all()
        stopped_early += n < R
    assert 0 < stopped_early < B                              # both cases occurred
    assert (response[b.response_mask.bool()] == tokenizer.convert_tokens_to_ids("<|im_end|>")).any()
    assert torch.equal(b.attention_mask[:, P:], b.response_mask)
    assert b.completions[0] == tokenizer.decode(response[0], skip_special_tokens=True)

    mask = b.response_mask.float()
    want = -0.1 * (b.logprobs - b.ref_logprobs) * mask
    want[torch.arange(B), b.response_mask.sum(-1) - 1] += torch.tensor(scores)
    assert torch.allclose(b.rewards, want, atol=1e-6)
    assert (b.rewards[mask == 0] == 0).all()
    assert ((b.logprobs - b.ref_logprobs).abs() * mask).max() > 1e-3

    same = rollout(policy, copy.deepcopy(policy), tokenizer, PROMPTS, lambda p, c: [0.0] * len(c), cfg)
    assert torch.allclose(same.logprobs, same.ref_logprobs, atol=1e-5)
    assert torch.allclose(same.rewards, torch.zeros_like(same.rewards), atol=1e-5)


def test_rollout_logprobs_do_not_depend_on_left_padding(tokenizer):
    policy = PolicyWithValue(tiny_lm(len(tokenizer)))
    torch.nn.init.normal_(policy.value_head.weight, std=0.1)
    cfg = PPOConfig(max_new_tokens=6)
    torch.manual_seed(2)
    b = rollout(policy, policy.lm, tokenizer, ["c", "efdhg"], lambda p, c: [0.0, 0.0], cfg)
    P = b.prompt_length
    for i in range(2):
        real = b.input_ids[i][b.attention_mask[i].bool()].unsqueeze(0)   # the row without any padding
        n = int(b.response_mask[i].sum())
        with torch.no_grad():
            logits, values = policy(real)
        logp = torch.log_softmax(logits[0, -n - 1:-1], -1).gather(-1, real[0, -n:, None]).squeeze(-1)
        assert torch.allclose(b.logprobs[i, :n], logp, atol=1e-5)
        assert torch.allclose(b.values[i, :n], values[0, -n - 1:-1], atol=1e-5)
    assert b.input_ids[0, :P].tolist().count(tokenizer.pad_token_id) > 0          # row 0 was padded


def test_ppo_raises_a_toy_reward_and_changes_the_model(tokenizer):
    """Reward: the share of the 8 completion slots that hold the letter a (about 1/13 at random)."""
    lm = tiny_lm(len(tokenizer))
    ref = copy.deepcopy(lm)
    policy = PolicyWithValue(lm)
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    cfg = PPOConfig(batch_size=16, max_new_tokens=8, ppo_epochs=4, mini_batch_size=8, lr=1e-3, kl_coef=0.01)
    seen = []
    history = train_ppo(policy, ref, tokenizer, PROMPTS, count_a(cfg), cfg, steps=30,
                        on_step=lambda step, stats: seen.append(step))
    scores = [h["score"] for h in history]
    first, last = sum(scores[:5]) / 5, sum(scores[-5:]) / 5
    assert first < 0.2 and last > first + 0.4, scores
    assert seen == list(range(30))
    assert all(h["kl_k3"] >= 0 and 0 <= h["clip_fraction"] <= 1 for h in history)
    assert history[-1]["kl_k1"] > history[0]["kl_k1"]               # it moved away from the reference
    changed = [k for k, v in policy.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("lm.") for k in changed) and any(k.startswith("value_head.") for k in changed)
    assert all(torch.equal(p, q) for p, q in zip(ref.parameters(), tiny_lm(len(tokenizer)).parameters()))
