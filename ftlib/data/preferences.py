"""Preference pairs for reward models and DPO: a correct concise answer against a worse one.

`reason` says what is worse about `rejected`:
  wrong       plausible but incorrect (off by one, a near-miss word, another town's fact)
  verbose     the right content buried in chatter
  off_format  the right content in the wrong shape (number in words, invalid JSON, commas not a list)
By construction `verify(task, chosen)` is True and, for wrong and off_format, `verify(task, rejected)`
is False; build_preferences checks both and raises if either ever fails.

>>> spell_number(42), spell_number(1240)
('forty-two', 'one thousand two hundred and forty')
"""
import json

from . import verifiers as v
from .tasks import FACTS, SIZES, verify
from .world import LEXICON, rng_for

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "- - twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMERIC = {"arithmetic", "count_letter", "count_words"}
PER_FAMILY = {"train": 150, "test": 30}
POOL = SIZES["train"]   # pairs are drawn from a family's first 400 items of a split (its size before the skill families grew)


def spell_number(n):
    """English words for an integer below a million."""
    if n < 0:
        return "minus " + spell_number(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("-" + _ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return _ONES[n // 100] + " hundred" + (" and " + spell_number(n % 100) if n % 100 else "")
    rest = n % 1000
    joiner = " and " if rest < 100 else " "
    return spell_number(n // 1000) + " thousand" + (joiner + spell_number(rest) if rest else "")


def _as_int(answer):
    return int(answer.replace(",", ""))


def _swap_adjacent(items, rng):
    """Swap one pair of neighbouring, different items: [1, 2, 3] -> [2, 1, 3] or [1, 3, 2]."""
    pairs = [i for i in range(len(items) - 1) if items[i] != items[i + 1]]
    i = rng.choice(pairs)
    return items[:i] + [items[i + 1], items[i]] + items[i + 2:]


def wrong_answer(row, rng):
    """A plausible but incorrect answer for task `row`."""
    family, answer = row["family"], row["answer"]
    if family in NUMERIC:
        n = _as_int(answer)
        return str(n + (1 if n == 0 else rng.choice([-1, 1])))
    if family == "reverse_word":
        letters = list(answer)
        return "".join(_swap_adjacent(letters, rng)) if len(set(letters)) > 1 else answer + answer[-1]
    if family in ("sort_numbers", "sort_words"):
        return ", ".join(_swap_adjacent(answer.split(", "), rng))
    if family == "fact_lookup":
        subject, attr = row["meta"]["key"].split("/")
        if not row["meta"]["accept"]:
            return f"{_as_int(answer) + rng.choice([-100, -10, 10, 100]):,}"
        others = sorted({a for s, at, a, _ in FACTS if at == attr and v.normalize_name(a) not in row["meta"]["accept"]})
        return rng.choice(others)
    if family in ("translate_en_zh", "translate_zh_en"):
        field = "zh" if family == "translate_en_zh" else "en"
        word = next(w for w in LEXICON if row["meta"]["key"] in (w.en, w.zh))
        others = [getattr(w, field) for w in LEXICON if w.category == word.category and w != word
                  and getattr(w, field) not in row["meta"]["accept"]]
        return rng.choice(others)
    if family == "extract_json":
        obj = json.loads(answer)
        obj["age"] += rng.choice([-2, -1, 1, 2])
        return json.dumps(obj, ensure_ascii=False)
    if family == "format_upper":
        words = answer.split()
        i = rng.choice([i for i, w in enumerate(words) if w.lower() != w])
        return " ".join(words[:i] + [words[i].lower()] + words[i + 1:])
    if family == "format_list":
        lines = answer.split("\n")
        return "\n".join(lines[:-1] if rng.random() < 0.5 else lines[1:])
    raise KeyError(family)


FACT_SENTENCES = {"river": "{x} lies on {a}.", "crop": "{x} is known for {a}.",
                  "animal": "Most families in {x} keep {a}.",
                  "founder": "{x} was founded by {a}.", "festival": "The festival in {x} is held in {a}.",
                  "source": "The {x} rises on {a}.", "lake": "The {x} flows into {a}."}


def off_format_answer(row, rng):
    """The right content in the wrong shape, or None where the verifier cannot tell shapes apart."""
    family, answer = row["family"], row["answer"]
    if family in NUMERIC or (family == "fact_lookup" and not row["meta"]["accept"]):
        return spell_number(_as_int(answer))
    if family == "fact_lookup":
        subject, attr = row["meta"]["key"].split("/")
        return FACT_SENTENCES[attr].format(x=subject, a=answer)
    if family == "reverse_word":
        return "-".join(answer)
    if family == "sort_numbers":
        return ", ".join(spell_number(int(x)) for x in answer.split(", "))
    if family == "translate_en_zh":
        return f"The Chinese word for {row['meta']['key']} is {answer}."
    if family == "translate_zh_en":
        return f'It means "{answer}" in English.'
    if family == "extract_json":
        obj = json.loads(answer)
        if rng.random() < 0.5:
            return str(obj)  # Python's repr: single quotes, not JSON
        return "\n".join(f"{k}: {val}" for k, val in obj.items())
    if family == "format_upper":
        return answer.title()
    if family == "format_list":
        return ", ".join(line[2:] for line in answer.split("\n"))
    return None  # sort_words: its verifier accepts any separator


def verbose_answer(row, rng):
    """The correct answer wrapped in filler a concise assistant would leave out."""
    answer = row["answer"]
    if "\n" in answer or row["family"] == "extract_json":
        return rng.choice(["Sure! Here is what you asked for:\n{a}\nI hope this is the format you wanted!",
                           "Of course. I read the request carefully, and here is the result:\n{a}\n"
                           "Let me know if you would like any changes."]).format(a=answer)
    return rng.choice([
        "Great question! After thinking about it carefully, the answer is {a}. I hope this helps, and feel free "
        "to ask if you have any other questions.",
        "Let me think about this step by step. Having considered it, I am confident the answer is {a}. "
        "Please let me know if anything is unclear!",
        "Sure, happy to help with that. The answer you are looking for is {a}. It is always a good idea to "
        "double-check, so feel free to verify it yourself.",
    ]).format(a=answer)


def make_pair(row, rng):
    """(rejected, reason) for one task row; checked against the verifier."""
    off = off_format_answer(row, rng)
    reasons, weights = (["wrong", "verbose", "off_format"], [5, 2, 3]) if off else (["wrong", "verbose"], [7, 3])
    reason = rng.choices(reasons, weights=weights)[0]
    rejected = {"wrong": lambda: wrong_answer(row, rng), "verbose": lambda: verbose_answer(row, rng),
                "off_format": lambda: off}[reason]()
    if not verify(row, row["answer"]) or (reason != "verbose" and verify(row, rejected)):
        raise AssertionError(f"bad {reason} pair for {row['id']}: {rejected!r}")
    return rejected, reason


def build_preferences(tasks, seed=0, per_family=None):
    """{"train", "test"} -> rows {"id", "task_id", "family", "prompt", "chosen", "rejected", "reason"}.

    tasks: the output of build_tasks; pairs for split s come from tasks[s] only.
    """
    per_family = per_family or PER_FAMILY
    out = {}
    for split, k in per_family.items():
        rng, rows = rng_for(seed, "preferences:" + split), []
        for family in dict.fromkeys(r["family"] for r in tasks[split]):
            pool = [r for r in tasks[split] if r["family"] == family][:POOL]
            for i in sorted(rng.sample(range(len(pool)), min(k, len(pool)))):
                rejected, reason = make_pair(pool[i], rng)
                rows.append({"id": f"pref-{split}-{len(rows) + 1:05d}", "task_id": pool[i]["id"], "family": family,
                             "prompt": pool[i]["prompt"], "chosen": pool[i]["answer"], "rejected": rejected,
                             "reason": reason})
        out[split] = rows
    return out
