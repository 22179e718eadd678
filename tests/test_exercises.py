import math

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
        "09.stream_text": (lambda raw: raw.replace("data: ", ""), {}),
        "09.psi": (lambda reference, live: sum(b - a for a, b in zip(reference, live)), {}),
        "10.zero_bytes": (lambda psi, n, stage: {"params": 2 * psi / n, "grads": 2 * psi / n, "optimizer": 12 * psi / n}, {}),
        "10.collectives": ({"ddp gradients": "all-reduce", "zero2 gradients": "all-reduce",
                            "zero3 weights before a layer runs": "broadcast", "zero3 gradients": "all-reduce",
                            "zero1 updated weights": "broadcast"}, {}),
        "11.leaked_lines": (_exact_leaks, {}),
        "11.from_llama_factory": ({**FROM_LLAMA_FACTORY, "method": {**FROM_LLAMA_FACTORY["method"], "target_modules": "all"}},
                                  {}),
    }


# chapter 11: the right config for ch11_capstone.LLAMA_FACTORY, and leaks found by exact string comparison
FROM_LLAMA_FACTORY = {
    "model": {"name": "smollm2-135m"},
    "data": {"train": {"path": "data/train.jsonl", "format": "alpaca"}, "validation": 0.1, "max_length": 128},
    "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.05, "target_modules": "all-linear"},
    "train": {"steps": 60, "batch_size": 4, "grad_accum": 2, "lr": 2.0e-4, "schedule": "linear", "warmup": 0.05, "seed": 7},
    "output": {"dir": "runs/from_llama_factory"},
}


def _exact_leaks(lines, test_rows):
    import json
    held = {(r["instruction"], r["input"]) for r in test_rows}
    out = []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and (row.get("instruction"), row.get("input")) in held:
            out.append(number)
    return out


def test_every_checker_has_a_wrong_answer_here():
    from ftlib.course.exercises import CHECKS
    assert set(_wrong_answers()) == set(CHECKS)


@pytest.mark.parametrize("name", sorted(_wrong_answers()))
def test_every_checker_rejects_a_wrong_answer(name, capsys):
    answer, context = _wrong_answers()[name]
    assert not check(name, answer, **context)
    assert f"✗ {name}" in capsys.readouterr().out


def _reference_functions():
    """The right function for each function exercise, to know the outputs a hint must not reveal."""
    import math

    from ftlib.cores.cleaning import repeated_line_ratio
    from ftlib.cores.losses import dpo_loss, gae, kl_estimates
    from ftlib.cores.stats import kappa
    from ftlib.data import sharegpt_to_messages
    from ftlib.engine.train import TrainConfig, lr_at
    return {
        "01.warmup_cosine": lambda s, n, lr, w, f: lr_at(s, TrainConfig(steps=n, lr=lr, warmup_steps=w, min_lr_ratio=f)),
        "01.repeated_line_ratio": repeated_line_ratio,
        "03.delta_weight": lambda A, B, alpha, r: (alpha / r) * B @ A,
        "05.label_mask": lambda ids, mask: [t if m else -100 for t, m in zip(ids, mask)],
        "05.sharegpt_to_messages": sharegpt_to_messages,
        "06.gae": gae,
        "06.kl_k3": lambda lp, ref: kl_estimates(lp, ref)["k3"],
        "07.dpo_loss": lambda pc, pr, rc, rr, beta: dpo_loss(pc, pr, rc, rr, beta=beta)["loss"],
        "08.corpus_perplexity": lambda nlls: math.exp(sum(map(sum, nlls)) / sum(map(len, nlls))),
        "08.kappa": kappa,
        "09.stream_text": _stream_text,
        "09.psi": lambda reference, live: __import__("ftlib.metrics.drift", fromlist=["x"]).psi_from_counts(
            [float(x) for x in reference], [float(x) for x in live]),
        "10.zero_bytes": lambda psi, n, stage: __import__("ftlib.cores.memory", fromlist=["x"]).zero_state_bytes(psi, n, stage),
        "11.leaked_lines": __import__("ftlib.course.exercises.ch11_capstone", fromlist=["x"]).leaked_lines,
    }


def _stream_text(raw):
    import json
    events = [e[6:] for e in raw.split("\n\n") if e.startswith("data: ") and e != "data: [DONE]"]
    return "".join(c["delta"].get("content") or "" for e in events for c in json.loads(e)["choices"])


def _right_values(context_of):
    """The right answer of each value exercise, in the context _wrong_answers gives it."""
    import torch
    from ftlib.cores.bpe import merge
    from ftlib.cores.memory import training_memory
    from ftlib.cores.nf4 import nf4_levels, quantize_blockwise
    import statistics

    from ftlib.data import verify
    block = torch.tensor(context_of["04.quantize_block"]["block"])
    sample = context_of["06.reward_hack"]["sample"]
    accepted = {r["id"] for r in sample if verify(r["task"], r["completion"])}
    bar = statistics.median(r["reward"] for r in sample if r["id"] in accepted)
    rows = context_of["07.unmasked_prompt"]["sample"]
    right_labels = lambda r: [i for i, x in enumerate(r["labels"]) if x != -100] == list(   # noqa: E731
        range(len(r["prompt"].split()), len(r["tokens"])))
    return {
        "05.find_leak": {"test-000"},
        "06.reward_hack": {r["id"] for r in sample if r["reward"] > bar} - accepted,
        "07.unmasked_prompt": {r["id"] for r in rows if not right_labels(r)},
        "00.chat_prompt": "<user>hi<assistant>",
        "02.merge": merge([5, 6, 7, 5, 6, 8, 5, 6], (5, 6), 9),
        "02.bytes_per_token": 7 / 3,
        "03.trainable_count": 3 * (4 * (576 + 576) + 4 * (576 + 192)),
        "04.quantize_block": quantize_blockwise(block, nf4_levels(), blocksize=block.numel())[0].flatten().tolist(),
        "04.bits_per_param": 4 + 8 / 64 + 32 / (64 * 256),
        "04.qlora_weights_gb": training_memory(context_of["04.qlora_weights_gb"]["shape"], "qlora", weight_bytes=2)["weights"] / 1e9,
        "10.collectives": {"ddp gradients": "all-reduce", "zero2 gradients": "reduce-scatter",
                           "zero3 weights before a layer runs": "all-gather", "zero3 gradients": "reduce-scatter",
                           "zero1 updated weights": "all-gather"},
        "11.from_llama_factory": FROM_LLAMA_FACTORY,
    }


def _shown(value) -> set[str]:
    """The ways a hint could print ``value``: its numbers at the precisions checkers use, or its repr."""
    import torch
    if isinstance(value, torch.Tensor):
        value = value.flatten().tolist()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {f"{value:.4f}", f"{value:.6g}", f"{value:.3f}", f"{value:.2f}", f"{value:,}"}
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return {repr(list(value))} | set().union(*(_shown(v) for v in value if isinstance(v, float)))
    if isinstance(value, (set, frozenset)):
        return {repr(v) for v in value} | {str(v) for v in value}
    return {repr(value)} if value not in ("", [], None) else set()


@pytest.mark.parametrize("name", sorted(_wrong_answers()))
def test_no_hint_reveals_the_right_answer(name, capsys):
    """A wrong answer's hint names the mistake but never prints the right value (for a function: its
    right outputs on the checker's inputs), except where the learner's own answer or input shows it."""
    wrong, context = _wrong_answers()[name]
    right = _reference_functions().get(name)
    calls = []
    if right is not None:                        # a function exercise: spy on the inputs the checker uses
        def spy(*args, _wrong=wrong):
            calls.append(args)
            return _wrong(*args)
        answer, secrets = spy, set()
    else:
        answer = wrong
        secrets = _shown(_right_values({n: c for n, (_, c) in _wrong_answers().items()})[name])
        secrets -= _shown(wrong)
    for variant in ([answer] if right else [answer, _far_off(answer)]):
        assert not check(name, variant, **context)
    hint = capsys.readouterr().out
    for args in calls:
        mine = _shown(wrong(*args)) | set().union(*(_shown(a) for a in args))
        secrets |= _shown(right(*args)) - mine
    if name == "00.chat_prompt":
        secrets = {"<user>hi<assistant>"}
    secrets = {s for s in secrets if s.strip("0.-,") != ""}     # a right value of 0 shows up in any list of counts
    leaked = sorted(s for s in secrets if s in hint)
    assert not leaked, f"{name}: the hint shows {leaked}:\n{hint}"


def _far_off(answer):
    """A wrong answer no checker recognises as a typical mistake (its last, generic hint)."""
    if isinstance(answer, (int, float)):
        return answer * 1.37 + 1
    if isinstance(answer, list) and answer and isinstance(answer[0], int):
        return [a + 1 for a in answer]
    return answer


def test_under_the_runner_each_check_is_recorded_for_the_report(tmp_path, monkeypatch, capsys):
    from ftlib.metrics.record import load_records
    monkeypatch.setenv("FTLIB_RECORDS", str(tmp_path / "03_lora.json"))
    shapes = [(576, 576), (192, 576)] * 3
    assert check("03.trainable_count", sum(4 * (i + o) for o, i in shapes), shapes=shapes, r=4)
    assert not check("02.bytes_per_token", None, text="猫 cat", ids=[1, 2, 3])
    assert load_records(tmp_path / "03_lora.json") == {"exercises/03.trainable_count": True,
                                                       "exercises/02.bytes_per_token": False}


def test_under_the_autograder_a_wrong_answer_raises(monkeypatch, capsys):
    from ftlib.course.exercises import GRADING_ENV, NotPassed
    monkeypatch.setenv(GRADING_ENV, "1")
    assert check("02.bytes_per_token", 7 / 3, text="猫 cat", ids=[1, 2, 3])
    for wrong in (None, 5 / 3):
        with pytest.raises(NotPassed, match="02.bytes_per_token"):
            check("02.bytes_per_token", wrong, text="猫 cat", ids=[1, 2, 3])
