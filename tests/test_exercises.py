import pytest

from ftlib.course.exercises import check


class FakeTokenizer:
    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


MESSAGES = [{"role": "user", "content": "hi"}]


def test_chat_prompt_checker_accepts_exact_and_rejects_near_misses(capsys):
    tok = FakeTokenizer()
    assert check("00.chat_prompt", "<user>hi<assistant>", tokenizer=tok, messages=MESSAGES)
    assert not check("00.chat_prompt", "<user>hi <assistant>", tokenizer=tok, messages=MESSAGES)
    assert "first difference at character 8" in capsys.readouterr().out
    assert not check("00.chat_prompt", None, tokenizer=tok, messages=MESSAGES)
    assert not check("00.chat_prompt", 42, tokenizer=tok, messages=MESSAGES)  # wrong type: a hint, no crash


def test_unknown_exercise_is_an_error():
    with pytest.raises(KeyError, match="known"):
        check("99.nothing", 1)


# One typical wrong answer per checker. Every checker must reject its wrong answer here and accept
# its solution in the instructor notebook (test_solutions.py): a checker that accepts anything fails.
def _wrong_answers():
    import torch
    from ftlib.course.exercises.ch07_dpo import label_sample
    from ftlib.course.exercises.ch06_rlhf import reward_hack_sample
    from ftlib.cores.memory import LLAMA2_7B
    row = {"family": "arithmetic", "answer": "5", "meta": {"key": "2+3"}}
    train = [dict(row, id="arithmetic-train-0001", prompt="What is 2 + 3?")]
    test = [dict(row, id="test-000", prompt="Compute 2 + 3."),                  # the same item, reworded: a leak
            dict(row, id="test-001", prompt="What is 4 + 4?", meta={"key": "4+4"})]
    sample, label_rows = reward_hack_sample(0), label_sample(0)
    return {
        "00.chat_prompt": ("<user>hi<assistant>\n", {"tokenizer": FakeTokenizer(), "messages": MESSAGES}),
        "01.warmup_cosine": (lambda step, steps, lr, warmup_steps, min_lr_ratio: lr, {}),
        "01.repeated_line_ratio": (lambda text: 0.0, {}),
        "02.merge": ([5, 6, 7, 5, 6, 8, 5, 6], {"ids": [5, 6, 7, 5, 6, 8, 5, 6], "new_id": 9}),
        "02.bytes_per_token": (5 / 3, {"text": "猫 cat", "ids": [1, 2, 3]}),
        "03.delta_weight": (lambda A, B, alpha, r: B @ A, {}),
        "03.trainable_count": (3 * (576 * 576 + 192 * 576), {"shapes": [(576, 576), (192, 576)] * 3, "r": 4}),
        "04.quantize_block": ([7] * 8, {"block": torch.linspace(-1, 1, 8).tolist()}),
        "04.bits_per_param": (4.5, {"blocksize": 64, "dq_blocksize": 256}),
        "04.qlora_weights_gb": (14.0, {"shape": LLAMA2_7B}),
        "05.label_mask": (lambda input_ids, assistant_mask: list(input_ids), {}),
        "05.sharegpt_to_messages": (lambda row: [{"role": t["from"], "content": t["value"]}
                                                 for t in row["conversations"]], {}),
        "05.find_leak": ({"test-001"}, {"train": train, "test": test}),
        "06.gae": (lambda rewards, values, gamma, lam: (rewards, rewards + values), {}),
        "06.kl_k3": (lambda logprobs, ref_logprobs: logprobs - ref_logprobs, {}),
        "06.reward_hack": ({r["id"] for r in sample if r["reward"] > 0}, {"sample": sample}),
        "07.dpo_loss": (lambda policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta:
                        -torch.nn.functional.logsigmoid(policy_chosen - policy_rejected).mean(), {}),
        "07.unmasked_prompt": ({r["id"] for r in label_rows if r["labels"][0] != -100}, {"sample": label_rows}),
        "08.corpus_perplexity": (lambda nlls: sum(2.718281828 ** (sum(t) / len(t)) for t in nlls) / len(nlls), {}),
        "08.kappa": (lambda a, b: sum(x == y for x, y in zip(a, b)) / len(a), {}),
    }


def test_every_checker_has_a_wrong_answer_here():
    from ftlib.course.exercises import CHECKS
    assert set(_wrong_answers()) == set(CHECKS)


@pytest.mark.parametrize("name", sorted(_wrong_answers()))
def test_every_checker_rejects_a_wrong_answer(name, capsys):
    answer, context = _wrong_answers()[name]
    assert not check(name, answer, **context)
    assert f"✗ {name}" in capsys.readouterr().out
