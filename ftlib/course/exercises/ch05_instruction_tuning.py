"""Chapter 05 (instruction tuning): the exercises' checkers. Each returns ``(ok, hint)``; :func:`ftlib.course.exercises.check`
prints the verdict."""
from __future__ import annotations

from typing import Callable

from ftlib.course.exercises.core import id_set_problem


_MASK_CASES = [([1, 15, 27, 2, 3, 42, 43, 44, 4], [0, 0, 0, 0, 0, 1, 1, 1, 0]),                   # one reply
               ([1, 15, 2, 3, 31, 32, 4, 15, 2, 3, 61, 62, 63, 4], [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1]),
               ([1, 15, 27, 2], [0, 0, 0, 0])]                                                   # no reply at all


def _label_mask(answer, **context) -> tuple[bool, str]:
    """05.label_mask: ``answer(input_ids, assistant_mask)`` keeps the id where the mask is 1, -100 elsewhere."""
    from ftlib.engine.sft_data import IGNORE
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
                           "(ftlib.engine.sft_data.IGNORE), while 0 is a real token id the loss would train on")
        if got in (want[1:] + [IGNORE], [IGNORE] + want[:-1], want[1:]):
            return False, ("shifted by one: labels stay aligned with input_ids (labels[i] is input_ids[i] or -100); "
                           "the model shifts them itself so that position i predicts token i + 1")
        case = f"input_ids={ids}, assistant_mask={mask}"
        if len(got) != len(ids):
            return False, f"{case}: you give {len(got)} labels, expected {len(ids)}, one per token"
        i = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
        return False, (f"{case}: label {i} is wrong (you give {got[i]}): keep the id where assistant_mask is 1, "
                       "-100 elsewhere")
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
        return False, (f"message {i} is wrong (you give {got[i]!r}): one message per turn, role mapped "
                       "(system, human -> user, gpt -> assistant), content copied as it is")
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
    "05.label_mask": _label_mask,
    "05.sharegpt_to_messages": _sharegpt_to_messages,
    "05.find_leak": _find_leak,
}
