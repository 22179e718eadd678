"""Making instruction data with a local model: a small Self-Instruct round, and chain-of-thought answers.

Self-Instruct (Wang et al. 2022) in four steps, each a short function:

1. :func:`self_instruct_prompt`: show the generator a few seed tasks of one family, numbered, to continue;
2. :func:`parse_task`: keep a candidate only if it has the family's form, so its answer can be computed;
3. filters: length, ROUGE-L similarity to every existing task (:func:`rouge_l_max`, with ``rouge-score``),
   and the verifier: the generator answers its own task, and the answer the code computes decides;
4. :func:`self_instruct_round` runs them and counts how many candidates survive each filter.

:func:`cot_answer` writes an arithmetic answer as a worked chain of thought ending in the number, and
:func:`final_number` reads the number back, so the family's verifier can score it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# count_words is the family whose tasks the generator can invent and the code can solve exactly
_COUNT_FORMS = [re.compile(p, re.I | re.S) for p in (
    r'^how many words are in this sentence:\s*"([^"]+)"\?$', r"^count the words in:\s*(.+)$",
    r'^how many words does "([^"]+)" have\?$')]


def self_instruct_prompt(seeds: list[str]) -> str:
    """A numbered list of seed tasks, ending where the next task should start. A small model
    continues a list more reliably than it follows an instruction to write one, so the generator
    gets this as plain text, without a chat template."""
    listed = "".join(f"{i + 1}. {s}\n" for i, s in enumerate(seeds))
    return f"Tasks about counting words:\n{listed}{len(seeds) + 1}."


def parse_task(text: str) -> tuple[str, str] | None:
    """``(task, sentence)`` if the candidate has a count_words form, else None (no computable answer)."""
    task = text.strip().splitlines()[0].strip() if text.strip() else ""
    task = re.sub(r"^\d+[.)]\s*", "", task).strip()
    for form in _COUNT_FORMS:
        m = form.match(task)
        if m:
            return task, m.group(1).strip()
    return None


def rouge_l_max(candidate: str, existing: list[str], scorer=None) -> float:
    """Highest ROUGE-L F1 between ``candidate`` and any of ``existing`` (0 if there are none)."""
    from rouge_score import rouge_scorer
    scorer = scorer or rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return max((scorer.score(e, candidate)["rougeL"].fmeasure for e in existing), default=0.0)


@dataclass
class RoundReport:
    counts: dict[str, int] = field(default_factory=dict)    # filter -> candidates still alive after it
    survivors: list[dict] = field(default_factory=list)     # new task rows (prompt, answer, family, meta)
    rejected: dict[str, list[str]] = field(default_factory=dict)


def self_instruct_round(candidates: list[str], answer, existing: list[str], *, min_words: int = 4,
                        max_words: int = 14, max_rouge: float = 0.7, relabel: bool = False) -> RoundReport:
    """Filter the generator's ``candidates`` (its replies to :func:`self_instruct_prompt`) in order:
    form, length, ROUGE-L against ``existing`` and the survivors so far, and the verifier:
    ``answer(tasks) -> replies`` is the generator answering its own tasks, and a reply must equal
    the count the code computes. Returns the survivors and how many candidates pass each filter.

    With ``relabel`` the verifier does not drop a task whose reply is wrong: it replaces the reply
    by the computed answer (possible because the code can solve every task of this form), and
    ``counts["verifier"]`` is then the number of replies that were right.
    """
    from rouge_score import rouge_scorer

    from ftlib.data import verify
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    report = RoundReport(rejected={k: [] for k in ("form", "length", "rouge_l", "verifier")})
    report.counts["generated"] = len(candidates)
    parsed = []
    for c in candidates:
        p = parse_task(c)
        (parsed.append(p) if p else report.rejected["form"].append(c))
    report.counts["form"] = len(parsed)
    sized = [p for p in parsed if min_words <= len(p[1].split()) <= max_words]
    report.rejected["length"] = [p[0] for p in parsed if p not in sized]
    report.counts["length"] = len(sized)
    novel, seen = [], list(existing)
    for task, sentence in sized:
        if rouge_l_max(task, seen, scorer) < max_rouge:
            novel.append((task, sentence))
            seen.append(task)
        else:
            report.rejected["rouge_l"].append(task)
    report.counts["rouge_l"] = len(novel)
    replies = answer([task for task, _ in novel]) if novel else []
    for (task, sentence), reply in zip(novel, replies):
        row = {"prompt": task, "answer": str(len(sentence.split())), "family": "count_words",
               "meta": {"key": sentence, "source": "self-instruct"}}
        right = bool(verify(row, reply))
        if not right:
            report.rejected["verifier"].append(task)
        if right or relabel:
            report.survivors.append(row)
    report.counts["verifier"] = len(novel) - len(report.rejected["verifier"])
    return report


# ---------------------------------------------------------------------------------------------
# Chain of thought for arithmetic
# ---------------------------------------------------------------------------------------------
_KEY = re.compile(r"^(\d+)([+\-*])(\d+)$")


def cot_answer(row: dict) -> str:
    """A worked answer for an arithmetic row (from its ``meta["key"]``, e.g. ``"83-25"``), digit
    group by digit group, ending in ``= <number>``: the model writes the steps, then the result.

    >>> cot_answer({"meta": {"key": "47+38"}, "answer": "85"})
    '47 + 30 = 77, 77 + 8 = 85. Answer: 85'
    >>> cot_answer({"meta": {"key": "7*16"}, "answer": "112"})
    '7 * 10 = 70, 7 * 6 = 42, 70 + 42 = 112. Answer: 112'
    """
    a, op, b = _KEY.match(row["meta"]["key"]).groups()
    a, b = int(a), int(b)
    tens, ones = b - b % 10, b % 10
    if op == "*":
        steps = [f"{a} * {tens} = {a * tens}", f"{a} * {ones} = {a * ones}", f"{a * tens} + {a * ones} = {a * b}"]
    else:
        sign = 1 if op == "+" else -1
        mid = a + sign * tens
        steps = [f"{a} {op} {tens} = {mid}", f"{mid} {op} {ones} = {mid + sign * ones}"]
    if not tens or not ones:      # one step is enough: 47 + 8, 7 * 10
        steps = [f"{a} {op} {b} = {row['answer']}"]
    return ", ".join(steps) + f". Answer: {row['answer']}"


def final_number(text: str) -> str:
    """What a chain-of-thought answer concludes: the text after the last "Answer:", else the last number."""
    if "Answer:" in text:
        return text.rsplit("Answer:", 1)[1].strip()
    numbers = re.findall(r"-?\d+", text)
    return numbers[-1] if numbers else text


_STEP = re.compile(r"(-?\d+)\s*([-+*])\s*(-?\d+)\s*=\s*(-?\d+)")


def checked_steps(text: str) -> tuple[int, int]:
    """(right, all) worked steps ``a op b = c`` in a chain-of-thought answer, each checked by
    computing it: does the model get the single steps right, whatever its final answer?

    >>> checked_steps("47 + 30 = 77, 77 + 8 = 85. Answer: 85"), checked_steps("6 * 5 = 40. Answer: 40")
    ((2, 2), (0, 1))
    """
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
    steps = _STEP.findall(text)
    return sum(ops[op](int(a), int(b)) == int(c) for a, op, b, c in steps), len(steps)
