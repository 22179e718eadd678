"""Checkers for the notebooks' exercises.

``check(name, answer, **context)`` prints ✓ or ✗ with a hint and returns True/False. A wrong or
missing answer never raises, so a learner's half-done notebook still runs top to bottom.
Each chapter adds its checkers to :data:`CHECKS`.
"""
from __future__ import annotations

from typing import Callable


def _chat_prompt(answer, *, tokenizer, messages) -> tuple[bool, str]:
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if answer == expected:
        return True, "your string is exactly what the tokenizer's chat template renders"
    for i, (a, b) in enumerate(zip(answer, expected)):
        if a != b:
            return False, (f"first difference at character {i}: you wrote {answer[i:i+20]!r}, "
                           f"the template gives {expected[i:i+20]!r}")
    return False, f"lengths differ: yours {len(answer)} chars, the template's {len(expected)}"


def _merge_once(answer, *, ids, new_id) -> tuple[bool, str]:
    """02.merge: ``answer`` is ``ids`` after merging its most frequent adjacent pair into ``new_id``."""
    from ftlib.bpe import get_stats, merge
    stats = get_stats(list(ids))
    best = max(stats.values())
    top = [p for p, c in stats.items() if c == best]
    if len(top) > 1:
        return False, f"this exercise needs one most frequent pair, but {top} tie with {best} each"
    expected = merge(list(ids), top[0], new_id)
    answer = list(answer)
    if answer == expected:
        return True, f"pair {top[0]} occurs {best} times; merging it shortens {len(ids)} ids to {len(expected)}"
    if new_id not in answer:
        return False, f"the merged pair should become the new id {new_id}, which your list never contains"
    if answer.count(new_id) != expected.count(new_id):
        return False, (f"the most frequent pair is {top[0]} ({best} times, count with get_stats); "
                       f"your list has {answer.count(new_id)} × {new_id}, expected {expected.count(new_id)}")
    return False, f"right count of {new_id}, but the list differs: expected {expected}"


def _bytes_per_token(answer, *, text, ids) -> tuple[bool, str]:
    """02.bytes_per_token: UTF-8 bytes of ``text`` divided by the number of token ``ids``."""
    expected = len(text.encode("utf-8")) / len(ids)
    if abs(float(answer) - expected) <= 0.01:
        return True, f"{len(text.encode('utf-8'))} bytes / {len(ids)} tokens = {expected:.2f} bytes per token"
    if abs(float(answer) - len(text) / len(ids)) <= 0.01 and len(text) != len(text.encode("utf-8")):
        return False, ("you divided characters, not bytes: use len(text.encode('utf-8')) — "
                       "a Chinese character is 3 bytes")
    if abs(float(answer) - len(ids) / len(text.encode("utf-8"))) <= 0.01:
        return False, "upside down: bytes divided by tokens, so a bigger number means more compression"
    return False, f"expected about {expected:.2f}: UTF-8 bytes of the text divided by the number of token ids"


def _warmup_cosine(answer, **context) -> tuple[bool, str]:
    """``answer(step, steps, lr, warmup_steps, min_lr_ratio)`` must match :func:`ftlib.train.lr_at`."""
    from ftlib.train import TrainConfig, lr_at
    for steps, lr, warmup, floor in [(100, 1.0, 10, 0.1), (50, 3e-4, 5, 0.1), (30, 2e-3, 1, 0.0)]:
        cfg = TrainConfig(steps=steps, lr=lr, warmup_steps=warmup, min_lr_ratio=floor)
        for step in range(steps + 1):
            got, want = answer(step, steps, lr, warmup, floor), lr_at(step, cfg)
            if abs(got - want) > 1e-9 * max(1.0, lr):
                where = "warmup" if step < warmup else "cosine decay"
                return False, (f"steps={steps}, lr={lr}, warmup={warmup}: at step {step} ({where}) you give "
                               f"{got:.6g}, expected {want:.6g}")
    return True, "matches ftlib.train.lr_at on three schedules, every step"


_LINE_CASES = ["", "one line", "a\na\na\nb", "a\n\n  a  \nb\n", "x\ny\nz", "buy now\n" * 5 + "ok",
               "click here\nclick here\nother\nother\nother"]


def _repeated_line_ratio(answer, **context) -> tuple[bool, str]:
    """``answer(text)`` must match :func:`ftlib.cleaning.repeated_line_ratio` (blank lines ignored)."""
    from ftlib.cleaning import repeated_line_ratio
    for text in _LINE_CASES:
        got, want = answer(text), repeated_line_ratio(text)
        if abs(got - want) > 1e-9:
            return False, f"for {text!r} you give {got:.4f}, expected {want:.4f} (strip lines, skip blank ones)"
    return True, f"matches ftlib.cleaning.repeated_line_ratio on {len(_LINE_CASES)} texts"


def _quantize_block(answer, *, block) -> tuple[bool, str]:
    """04.quantize_block: ``answer`` is the list of NF4 codes (0..15) of one ``block`` of weights."""
    import torch
    from ftlib.nf4 import nf4_levels, quantize_blockwise
    block = torch.as_tensor(block, dtype=torch.float32).flatten()
    expected, absmax = quantize_blockwise(block, nf4_levels(), blocksize=block.numel())
    expected = expected.flatten().tolist()
    answer = [int(a) for a in answer]
    if answer == expected:
        return True, f"absmax {absmax.item():.4f}; every weight coded to its nearest NF4 level"
    if len(answer) != len(expected):
        return False, f"expected {len(expected)} codes, one per weight; you gave {len(answer)}"
    if answer == [15 - c for c in expected]:
        return False, "upside down: code 0 is the most negative level (-1.0), code 15 is +1.0"
    wrong = [i for i, (a, b) in enumerate(zip(answer, expected)) if a != b]
    i = wrong[0]
    return False, (f"{len(wrong)} code(s) differ; weight {i} = {block[i].item():.4f} is "
                   f"{(block[i] / absmax).item():+.4f} after dividing by absmax {absmax.item():.4f}: "
                   f"nearest level is code {expected[i]}, you gave {answer[i]}")


def _bits_per_param(answer, *, blocksize, dq_blocksize) -> tuple[bool, str]:
    """04.bits_per_param: storage per weight with double quantization (8-bit absmax, fp32 second level)."""
    expected = 4 + 8 / blocksize + 32 / (blocksize * dq_blocksize)
    if abs(float(answer) - expected) < 1e-3:
        return True, f"4 + 8/{blocksize} + 32/({blocksize}·{dq_blocksize}) = {expected:.4f} bits per weight"
    if abs(float(answer) - (4 + 32 / blocksize)) < 1e-3:
        return False, "that is without double quantization: the absmax constants are stored in 8 bits, not 32"
    if abs(float(answer) - (4 + 8 / blocksize)) < 1e-3:
        return False, "almost: each block of absmax values also needs one fp32 constant of its own"
    return False, f"expected about {expected:.3f}: 4 bits + the 8-bit absmax per block + the fp32 constant per absmax block"


def _qlora_weights_gb(answer, *, shape) -> tuple[bool, str]:
    """04.qlora_weights_gb: GB (1e9 bytes) of a QLoRA base: linear layers at 4.127 bits, the rest bf16."""
    from ftlib.memory import training_memory
    expected = training_memory(shape, "qlora", weight_bytes=2)["weights"] / 1e9
    if abs(float(answer) - expected) <= 0.02 * expected:
        return True, f"{expected:.2f} GB: linear layers in NF4, embeddings and norms in bf16"
    all4 = shape.n_params * 4.127 / 8 / 1e9
    if abs(float(answer) - all4) <= 0.02 * all4:
        return False, "you quantized every parameter: the embeddings (and an untied lm_head) stay in bf16"
    return False, f"expected about {expected:.2f} GB (use shape.linear_params and shape.n_params)"


def _delta_weight(answer, **context) -> tuple[bool, str]:
    """03.delta_weight: ``answer(A, B, alpha, r)`` returns LoRA's update ``(alpha / r) * B @ A``, shape (out, in)."""
    import torch
    g = torch.Generator().manual_seed(0)
    for n_out, n_in, r, alpha in [(5, 7, 2, 4.0), (6, 3, 1, 1.0), (4, 9, 3, 12.0)]:
        A, B = torch.randn(r, n_in, generator=g), torch.randn(n_out, r, generator=g)
        want = (alpha / r) * B @ A
        got = answer(A.clone(), B.clone(), alpha, r)
        if got is None:
            return False, "your function returns None: replace the placeholder with the formula"
        got = torch.as_tensor(got)
        if got.shape != want.shape:
            hint = " (A @ B is r x r or fails; the update is B @ A)" if got.shape == (r, r) else ""
            return False, f"shape {tuple(got.shape)}, expected (out, in) = {tuple(want.shape)}{hint}"
        if torch.allclose(got, want, atol=1e-5):
            continue
        if torch.allclose(got, B @ A, atol=1e-5):
            return False, "right matrix product, but you forgot the scaling alpha / r"
        if torch.allclose(got, (r / alpha) * B @ A, atol=1e-5):
            return False, "the scaling is upside down: alpha / r, not r / alpha"
        return False, f"for out={n_out}, in={n_in}, r={r}, alpha={alpha} your values differ from (alpha / r) * B @ A"
    return True, "(alpha / r) * B @ A: a rank-r matrix the size of W0, which merge adds to it"


def _trainable_count(answer, *, shapes, r) -> tuple[bool, str]:
    """03.trainable_count: LoRA of rank ``r`` on linear layers of ``(out, in)`` ``shapes`` trains ``r*(in+out)`` each."""
    want = sum(r * (n_in + n_out) for n_out, n_in in shapes)
    answer = int(answer)
    if answer == want:
        return True, f"{len(shapes)} layers x r*(in + out) = {want:,} trainable numbers"
    if answer == sum(n_in * n_out for n_out, n_in in shapes):
        return False, "that is the full-fine-tuning count (in x out per layer); LoRA trains A (r x in) and B (out x r)"
    if answer in (sum(r * n_in for _, n_in in shapes), sum(r * n_out for n_out, _ in shapes)):
        return False, "you counted only one of A (r x in) and B (out x r); LoRA trains both"
    per_layer = {s: r * (s[0] + s[1]) for s in set(shapes)}
    if answer in per_layer.values() or answer == sum(per_layer.values()):
        return False, f"that is one layer's worth; there are {len(shapes)} wrapped layers in total"
    if all(o == i for o, i in shapes) is False and answer == sum(r * 2 * n_in for _, n_in in shapes):
        return False, "not every projection is square: v_proj maps 576 -> 192 (grouped-query attention)"
    return False, f"expected {want:,}: sum over the wrapped layers of r*(in + out)"


_MASK_CASES = [([1, 15, 27, 2, 3, 42, 43, 44, 4], [0, 0, 0, 0, 0, 1, 1, 1, 0]),                   # one reply
               ([1, 15, 2, 3, 31, 32, 4, 15, 2, 3, 61, 62, 63, 4], [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1]),
               ([1, 15, 27, 2], [0, 0, 0, 0])]                                                   # no reply at all


def _label_mask(answer, **context) -> tuple[bool, str]:
    """05.label_mask: ``answer(input_ids, assistant_mask)`` keeps the id where the mask is 1, -100 elsewhere."""
    from ftlib.sft import IGNORE
    for ids, mask in _MASK_CASES:
        want = [t if m else IGNORE for t, m in zip(ids, mask)]
        got = answer(list(ids), list(mask))
        if got is None:
            return False, "your function returns None: return the list of labels"
        got = [int(x) for x in got]
        if got == want:
            continue
        if got == ids:
            return False, ("you return input_ids unchanged, which labels the prompt too: the model would learn to "
                           "write the user's turns; put -100 where assistant_mask is 0")
        if got == [IGNORE if m else t for t, m in zip(ids, mask)]:
            return False, "inverted: you label the non-assistant tokens; keep the id where assistant_mask is 1"
        if got == [t if m else 0 for t, m in zip(ids, mask)]:
            return False, ("use -100, not 0, where the mask is 0: cross-entropy's ignore_index is -100 "
                           "(ftlib.sft.IGNORE), while 0 is a real token id the loss would train on")
        if got in (want[1:] + [IGNORE], [IGNORE] + want[:-1], want[1:]):
            return False, ("shifted by one: labels stay aligned with input_ids (labels[i] is input_ids[i] or -100); "
                           "the model shifts them itself so that position i predicts token i + 1")
        case = f"input_ids={ids}, assistant_mask={mask}"
        if len(got) != len(ids):
            return False, f"{case}: you give {len(got)} labels, expected {len(ids)}, one per token"
        return False, f"{case}: you give {got}, expected {want}"
    return True, f"the token id under the assistant mask, -100 elsewhere, on {len(_MASK_CASES)} examples"


_SHAREGPT_CASES = [
    {"conversations": [{"from": "human", "value": "Add 2 and 3."}, {"from": "gpt", "value": "5"}]},
    {"conversations": [{"from": "system", "value": "Answer in one word."},
                       {"from": "human", "value": "Opposite of cold?"}, {"from": "gpt", "value": "Hot"}]},
    {"conversations": [{"from": "system", "value": "You are terse."}, {"from": "human", "value": "Reverse 'otter'."},
                       {"from": "gpt", "value": "retto"}, {"from": "human", "value": "And 'lemon'?"},
                       {"from": "gpt", "value": "nomel"}]},
]


def _sharegpt_to_messages(answer, **context) -> tuple[bool, str]:
    """05.sharegpt_to_messages: ``answer(row)`` must match :func:`ftlib.data.sharegpt_to_messages`."""
    import copy
    from ftlib.data import sharegpt_to_messages
    for row in _SHAREGPT_CASES:
        want = sharegpt_to_messages(row)
        try:
            got = answer(copy.deepcopy(row))
        except KeyError as e:
            return False, (f"KeyError {e} on a row with turns {[t['from'] for t in row['conversations']]}: "
                           "map every ShareGPT role (system, human, gpt)")
        if got is None:
            return False, "your function returns None: return the list of messages"
        got = list(got)
        if got == want:
            continue
        if not all(isinstance(m, dict) for m in got):
            return False, f"each message is a dict {{'role': ..., 'content': ...}}; yours are {type(got[0]).__name__}"
        if any(m.get("role") in ("human", "gpt") for m in got):
            return False, "you kept ShareGPT's role names: 'human' becomes 'user' and 'gpt' becomes 'assistant'"
        if any("from" in m or "value" in m for m in got):
            return False, "a message's keys are 'role' and 'content', not ShareGPT's 'from' and 'value'"
        if got == [{"role": m["content"], "content": m["role"]} for m in want]:
            return False, "role and content are swapped: 'role' says who speaks, 'content' holds the text"
        if got == [m for m in want if m["role"] != "system"] != want:
            return False, "you dropped the system turn: it becomes the first message, {'role': 'system', ...}"
        if len(got) == len(want) and all(m in want for m in got) and all(m in got for m in want):
            return False, "right messages in the wrong order: keep the conversation's order"
        if len(got) != len(want):
            return False, f"{len(want)} turns should give {len(want)} messages; you give {len(got)}"
        i = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
        return False, f"message {i}: you give {got[i]!r}, expected {want[i]!r}"
    return True, f"matches ftlib.data.sharegpt_to_messages on {len(_SHAREGPT_CASES)} conversations"


def leaky_split(seed: int = 0) -> tuple[list[dict], list[dict]]:
    """``(train, test)`` task rows for exercise 05.find_leak, with leaks planted. Deterministic in ``seed``.

    From the committed task suite: 300 train rows and 60 test rows. 5 test rows are exact copies of
    train rows, 5 reword a train row's item (same family and ``meta["key"]``, another prompt), and 3
    only share a key with a train row of another family (reverse "horse" vs translate "horse": not
    a leak). Test ids are renumbered ``test-000`` ... so that an id gives nothing away.
    """
    import copy
    import random
    from ftlib.data import load_tasks
    rng = random.Random(seed)
    train_all, test_all = load_tasks("train"), load_tasks("test")
    groups: dict[tuple, list[dict]] = {}
    for r in train_all:
        groups.setdefault((r["family"], r["meta"]["key"]), []).append(r)
    reworded = [rng.sample(g, 2) for g in rng.sample([g for g in groups.values() if len(g) > 1], 5)]
    moved = {(g[0]["family"], g[0]["meta"]["key"]) for g in reworded}
    rest = [r for r in train_all if (r["family"], r["meta"]["key"]) not in moved]
    by_key: dict[str, list[dict]] = {}
    for r in rest:
        by_key.setdefault(r["meta"]["key"], []).append(r)
    decoys = rng.sample([r for r in test_all if r["meta"]["key"] in by_key], 3)
    decoy_train = {t["id"]: t for t in (rng.choice(by_key[r["meta"]["key"]]) for r in decoys)}
    pool = [r for r in rest if r["id"] not in decoy_train]
    sampled = rng.sample(pool, 300 - len(reworded) - len(decoy_train))
    train = sampled + [kept for kept, _ in reworded] + list(decoy_train.values())
    decoy_ids = {r["id"] for r in decoys}
    clean = rng.sample([r for r in test_all if r["id"] not in decoy_ids], 60 - 13)
    test = rng.sample(sampled, 5) + [other for _, other in reworded] + decoys + clean
    rng.shuffle(train)
    rng.shuffle(test)
    test = [dict(copy.deepcopy(r), id=f"test-{i:03d}", split="test") for i, r in enumerate(test)]
    return copy.deepcopy(train), test


def _find_leak(answer, *, train, test) -> tuple[bool, str]:
    """05.find_leak: ``answer`` holds the ids of the ``test`` rows whose item (family, meta["key"]) is in ``train``."""
    from ftlib.exercises_rl import id_set_problem
    problem = id_set_problem(answer, test, source="test", noun="test row")
    if problem:
        return False, problem
    by_id = {r["id"]: r for r in test}
    items = {(t["family"], t["meta"]["key"]) for t in train}
    expected = {r["id"] for r in test if (r["family"], r["meta"]["key"]) in items}
    prompts = {t["prompt"] for t in train}
    verbatim = {r["id"] for r in test if r["prompt"] in prompts}
    got = set(answer)
    if got == expected:
        return True, (f"{len(expected)} leaks: {len(verbatim & expected)} verbatim copies and "
                      f"{len(expected - verbatim)} rewordings of a training item")
    if got == verbatim < expected:
        return False, (f"you found only the verbatim copies; {len(expected - verbatim)} reworded ones about the "
                       "same item remain — compare meta['key'] (per family)")
    if got - expected:
        r = by_id[sorted(got - expected)[0]]
        other = sorted({t["family"] for t in train if t["meta"]["key"] == r["meta"]["key"]})
        why = (f"its key {r['meta']['key']!r} occurs in train only for {', '.join(other)}, and an item is "
               "(family, meta['key'])" if other else f"its item ({r['family']}, {r['meta']['key']!r}) is not in train")
        return False, f"{r['id']} is not a leak: {why}"
    return False, (f"you found {len(got)} of the {len(expected)} leaks: a test row leaks when its "
                   "(family, meta['key']) occurs in train, whatever the wording")


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "00.chat_prompt": _chat_prompt,
    "01.warmup_cosine": _warmup_cosine,
    "01.repeated_line_ratio": _repeated_line_ratio,
    "02.merge": _merge_once,
    "02.bytes_per_token": _bytes_per_token,
    "03.delta_weight": _delta_weight,
    "03.trainable_count": _trainable_count,
    "04.quantize_block": _quantize_block,
    "04.bits_per_param": _bits_per_param,
    "04.qlora_weights_gb": _qlora_weights_gb,
    "05.label_mask": _label_mask,
    "05.sharegpt_to_messages": _sharegpt_to_messages,
    "05.find_leak": _find_leak,
}


def check(name: str, answer, **context) -> bool:
    """Run the checker ``name`` on ``answer``; print the verdict and return it."""
    if name not in CHECKS:
        raise KeyError(f"no exercise named {name!r}; known: {', '.join(sorted(CHECKS))}")
    if answer is None or answer is ...:
        print(f"✗ {name}: not attempted yet. Replace the placeholder and run the cell again.")
        return False
    try:
        ok, message = CHECKS[name](answer, **context)
    except NotImplementedError:  # the stub of a function the learner has not written yet
        print(f"✗ {name}: not attempted yet. Write the code where it says YOUR CODE HERE and run the cell again.")
        return False
    except Exception as e:  # a learner's answer of the wrong type should get a hint, not a traceback
        ok, message = False, f"could not check your answer: {type(e).__name__}: {e}"
    print(f"{'✓' if ok else '✗'} {name}: {message}")
    return ok


from ftlib.exercises_rl import CHECKS_06  # noqa: E402  (chapter 06's checkers live in their own module)
CHECKS.update(CHECKS_06)
from ftlib.exercises_dpo import CHECKS_07  # noqa: E402  (and chapter 07's in theirs)
CHECKS.update(CHECKS_07)
from ftlib.exercises_eval import CHECKS_08  # noqa: E402  (and chapter 08's)
CHECKS.update(CHECKS_08)
