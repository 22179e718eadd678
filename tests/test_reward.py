"""ftlib.engine.reward: the reward model (last-token score, Bradley-Terry training) and the reward functions."""
import pytest
import torch

from ftlib.data import load_tasks
from ftlib.engine.models import TinyConfig, tiny_llama
from ftlib.engine.reward import (RMRecipe, for_trl, model_reward, pairwise, reward_model_from, rewards,
                                 train_reward_model, verifier_reward)


@pytest.fixture(scope="module")
def tiny_rm(tmp_path_factory, tok):
    """A tiny Llama saved as a causal LM, reloaded by reward_model_from with a fresh score head."""
    torch.manual_seed(0)
    lm = tiny_llama(TinyConfig(vocab_size=len(tok), hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2,
                               intermediate_size=48, max_seq_len=256), pad_token_id=tok.pad_token_id,
                    bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    path = tmp_path_factory.mktemp("lm")
    lm.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def test_reward_reads_the_last_real_token_whatever_the_padding(tiny_rm):
    model, tok = reward_model_from(tiny_rm)
    assert model.config.num_labels == 1 and model.config.pad_token_id == tok.pad_token_id
    prompts, answers = ["Spell 'cat' backwards.", "Count to three."], ["tac", "one, two, three, and that is all of it"]
    with torch.no_grad():
        together = rewards(model, tok, prompts, answers)           # the short one is right-padded
        alone = torch.cat([rewards(model, tok, [p], [a]) for p, a in zip(prompts, answers)])
        other_answer = rewards(model, tok, prompts[:1], ["cat"])
    assert together.shape == (2,)
    assert torch.allclose(together, alone, atol=1e-5)
    assert abs(other_answer.item() - alone[0].item()) > 1e-6       # the score depends on the answer


def test_bradley_terry_training_learns_a_visible_preference(tiny_rm):
    """Chosen: the bare answer; rejected: the same answer in chatter. Easy to see, so it must be learned."""
    model, tok = reward_model_from(tiny_rm)
    rows = load_tasks("train", ["arithmetic"])[:64]
    pairs = [{"prompt": r["prompt"], "chosen": r["answer"],
              "rejected": f"Great question! I thought about it carefully, and the answer is {r['answer']}. Hope it helps!"}
             for r in rows]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = train_reward_model(model, tok, pairs[:48], RMRecipe(epochs=4, batch_size=8, lr=3e-3, warmup_steps=2))
    assert len(history) == 4 * 6
    first, last = sum(h["loss"] for h in history[:4]) / 4, sum(h["loss"] for h in history[-4:]) / 4
    assert last < first - 0.3, (first, last)
    held_out = pairwise(model, tok, pairs[48:])
    assert sum(held_out["correct"]) >= 14, held_out["correct"]     # of 16 unseen pairs
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items() if k.startswith("score"))
    with torch.no_grad():
        one = rewards(model, tok, [pairs[0]["prompt"]], [pairs[0]["chosen"]]).item()
    assert model_reward(model, tok)([pairs[0]["prompt"]], [pairs[0]["chosen"]]) == pytest.approx([one], abs=1e-6)


def test_verifier_reward_and_trl_adapter():
    rows = load_tasks("val", ["count_letter"])[:3]
    reward = verifier_reward(rows)
    assert reward([r["prompt"] for r in rows], [r["answer"] for r in rows]) == [1.0, 1.0, 1.0]
    assert reward([rows[0]["prompt"]], ["no idea"]) == [0.0]
    with pytest.raises(KeyError):
        reward(["a prompt nobody asked"], ["1"])
    trl_fn = for_trl(reward, "verifier")
    assert trl_fn.__name__ == "verifier"
    chats = [[{"role": "assistant", "content": rows[0]["answer"]}], [{"role": "assistant", "content": "x"}]]
    assert trl_fn(prompts=[[{"role": "user", "content": "rendered"}]] * 2, completions=chats,
                  task=[rows[0]["prompt"]] * 2, trainer_state=None) == [1.0, 0.0]
