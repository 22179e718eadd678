"""The capstone's data check: every row of every file read, and every bad one reported by file:line:field.

Nothing is dropped silently. A row is bad when it is not JSON, lacks a field, has a field of the
wrong type or an unknown role, has an empty answer, is a pair whose chosen and rejected answers
are the same, is longer than ``data.max_length`` tokens once the chat template has written it, repeats
an earlier row, or asks a prompt that is also in the held-out files (a leak: the evaluation would
then score memory). With ``on_bad_rows: error`` (the default) the run stops and lists them all; with
``drop`` it leaves them out, and the :class:`DataReport` counts each kind.

Each good row becomes an :class:`Example`: the chat (system and user turns, then the assistant's
answer; for a pair, both answers) and where it came from.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ftlib.data.formats import SHAREGPT_TO_ROLE
from ftlib.data.tasks import normalize_prompt

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {**SHAREGPT_TO_ROLE, "user": "user", "assistant": "assistant"}   # both spellings are common
KINDS = ("invalid_json", "missing_field", "wrong_type", "unknown_role", "empty_text", "empty_answer",
         "same_pair", "too_long", "duplicate", "leak")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int           # 1-based
    field: str          # the key path inside the row ("output", "messages[2].role"); "" for the whole line
    kind: str           # one of KINDS
    message: str

    def __str__(self):
        return f"{self.path}:{self.line}: {self.field + ': ' if self.field else ''}{self.message}"


class BadRow(Exception):
    """One row's problem, raised by :func:`parse_row`: its ``kind`` (one of KINDS) and ``field``."""

    def __init__(self, kind: str, field: str, message: str):
        super().__init__(message)
        self.kind, self.field, self.message = kind, field, message


@dataclass
class Example:
    path: str
    line: int
    messages: list[dict]            # the chat without its last answer: system / user / earlier turns
    answer: str                     # the assistant's last answer (for a pair: the chosen one)
    rejected: str | None = None     # pairs only
    row: dict = field(default_factory=dict)       # the row as read (a task row keeps its family for the verifier)
    prompt_field: str = ""          # where the prompt is in the row, for messages about it
    texts: dict = field(default_factory=dict)     # field -> text, to name the longest field of a long row

    @property
    def prompt_key(self) -> str:
        """The prompt as leaks and duplicates are judged: every turn before the answer, normalised."""
        return normalize_prompt("\n".join(m["content"] for m in self.messages if m["role"] != "system"))

    @property
    def key(self) -> tuple:
        return self.prompt_key, self.answer.strip(), (self.rejected or "").strip()

    def chat(self, answer: str | None = None) -> list[dict]:
        return self.messages + [{"role": "assistant", "content": self.answer if answer is None else answer}]


def _text(row: dict, name: str, *, required: bool = True, blank: str | None = "empty_text") -> str:
    if name not in row or (row[name] is None and not required):       # an optional field may be null
        if required:
            raise BadRow("missing_field", name, f"the field {name!r} is missing")
        return ""
    value = row[name]
    if not isinstance(value, str):
        raise BadRow("wrong_type", name, f"should be a string, got {type(value).__name__} {json.dumps(value)[:40]}")
    if blank and not value.strip():
        raise BadRow(blank, name, "is empty" + (": there is no answer to learn" if blank == "empty_answer" else ""))
    return value


def _turns(row: dict, key: str, role_key: str, text_key: str, roles: dict) -> tuple[list[dict], dict]:
    turns = row.get(key)
    if key not in row:
        raise BadRow("missing_field", key, f"the field {key!r} is missing")
    if not isinstance(turns, list) or not turns:
        raise BadRow("wrong_type", key, "should be a non-empty list of turns")
    messages, texts = [], {}
    for i, turn in enumerate(turns):
        where = f"{key}[{i}]"
        if not isinstance(turn, dict):
            raise BadRow("wrong_type", where, f"should be an object {{{role_key}, {text_key}}}")
        if role_key not in turn:
            raise BadRow("missing_field", f"{where}.{role_key}", "the role is missing")
        if turn[role_key] not in roles:
            raise BadRow("unknown_role", f"{where}.{role_key}",
                       f"unknown role {turn[role_key]!r} (expected one of {', '.join(roles)})")
        last_answer = i == len(turns) - 1 and roles[turn[role_key]] == "assistant"
        try:
            content = _text(turn, text_key, blank="empty_answer" if last_answer else "empty_text")
        except BadRow as bad:
            raise BadRow(bad.kind, f"{where}.{bad.field}", bad.message) from None
        messages.append({"role": roles[turn[role_key]], "content": content})
        texts[f"{where}.{text_key}"] = content
    if messages[-1]["role"] != "assistant":
        raise BadRow("missing_field", f"{key}[{len(turns) - 1}].{role_key}", "the last turn must be the assistant's answer")
    if not any(m["role"] == "user" for m in messages):
        raise BadRow("missing_field", key, "no user turn")
    return messages, texts


def parse_row(row, fmt: str, path: str, line: int) -> Example:
    """One JSON value as an :class:`Example` of format ``fmt``, or :class:`BadRow` naming the field."""
    if not isinstance(row, dict):
        raise BadRow("wrong_type", "", f"expected a JSON object, got {type(row).__name__}")
    if fmt == "alpaca":
        instruction, extra = _text(row, "instruction"), _text(row, "input", required=False, blank=None)
        answer, system = _text(row, "output", blank="empty_answer"), _text(row, "system", required=False, blank=None)
        user = instruction + (f"\n\n{extra}" if extra.strip() else "")
        messages = ([{"role": "system", "content": system}] if system.strip() else []) + [{"role": "user", "content": user}]
        return Example(path, line, messages, answer, row=row, prompt_field="input" if extra.strip() else "instruction",
                       texts={"instruction": instruction, "input": extra, "output": answer})
    if fmt in ("sharegpt", "messages"):
        key, role_key, text_key, roles = (("conversations", "from", "value", SHAREGPT_ROLES) if fmt == "sharegpt"
                                          else ("messages", "role", "content", {r: r for r in ROLES}))
        messages, texts = _turns(row, key, role_key, text_key, roles)
        first_user = next(i for i, m in enumerate(messages) if m["role"] == "user")
        return Example(path, line, messages[:-1], messages[-1]["content"], row=row,
                       prompt_field=f"{key}[{first_user}].{text_key}", texts=texts)
    if fmt == "task":
        prompt, answer = _text(row, "prompt"), _text(row, "answer", blank="empty_answer")
        return Example(path, line, [{"role": "user", "content": prompt}], answer, row=row, prompt_field="prompt",
                       texts={"prompt": prompt, "answer": answer})
    if fmt == "preference":
        prompt = _text(row, "prompt")
        chosen, rejected = _text(row, "chosen", blank="empty_answer"), _text(row, "rejected", blank="empty_answer")
        if chosen.strip() == rejected.strip():
            raise BadRow("same_pair", "rejected", "is the same as 'chosen': the pair teaches nothing")
        return Example(path, line, [{"role": "user", "content": prompt}], chosen, rejected, row=row, prompt_field="prompt",
                       texts={"prompt": prompt, "chosen": chosen, "rejected": rejected})
    raise ValueError(f"unknown format {fmt!r}")


class FileProblem(ValueError):
    """A data file that cannot be read as JSON Lines at all (missing, not UTF-8, a JSON array)."""


def read_text(path: Path, shown: str) -> str:
    """The file's text (a UTF-8 byte-order mark dropped), or :class:`FileProblem` saying what to do."""
    if not path.is_file():
        raise FileProblem(f"{shown}: no such file (paths are read from the config file's folder)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise FileProblem(f"{shown}: not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    if text.lstrip().startswith("["):
        raise FileProblem(f"{shown}: a JSON array, not JSON Lines (one object per line): convert it, e.g. "
                          "with ftlib.data.write_jsonl(path, json.load(open(old)))")
    return text


def read_file(path: Path, fmt: str, *, shown: str, families=None, max_rows=None) -> tuple[list[Example], list[Problem]]:
    """Every line of a JSONL file as an :class:`Example` or a :class:`Problem` (``shown``: the path as
    messages print it). ``families`` keeps only those course task rows; ``max_rows`` stops early."""
    text = read_text(path, shown)
    examples, problems = [], []
    for number, raw in enumerate(text.split("\n"), start=1):
        if max_rows is not None and len(examples) >= max_rows:
            break
        if not raw.strip():                     # a blank line holds no row (a final newline leaves one)
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as err:
            problems.append(Problem(shown, number, "", "invalid_json", f"not valid JSON ({err.msg} at column {err.colno})"))
            continue
        if families is not None and isinstance(row, dict) and row.get("family") not in families:
            continue
        try:
            examples.append(parse_row(row, fmt, shown, number))
        except BadRow as bad:
            problems.append(Problem(shown, number, bad.field, bad.kind, bad.message))
    return examples, problems


def token_length(tokenizer, template: str | None, example: Example) -> int:
    """Tokens of the example as training sees it: the whole chat, its longer answer for a pair."""
    answers = [example.answer] + ([example.rejected] if example.rejected is not None else [])
    return max(len(tokenizer.apply_chat_template(example.chat(a), chat_template=template, tokenize=True,
                                                 return_dict=True)["input_ids"]) for a in answers)


def cross_checks(train: list[Example], held_out: list[Example], *, tokenizer, template, max_length: int) -> list[Problem]:
    """Problems that need more than one row: too long (with the template), duplicates, leaks."""
    problems, seen = [], {}
    held = {}
    for e in held_out:
        held.setdefault(e.prompt_key, e)
    for e in train:
        n = token_length(tokenizer, template, e)
        if n > max_length:
            longest = max(e.texts, key=lambda k: len(e.texts[k]))
            problems.append(Problem(e.path, e.line, longest, "too_long",
                                    f"the example is {n} tokens with the chat template, over data.max_length {max_length}"))
        if e.key in seen:
            problems.append(Problem(e.path, e.line, e.prompt_field, "duplicate",
                                    f"repeats line {seen[e.key].line} (same prompt and answer)"))
        else:
            seen[e.key] = e
        if e.prompt_key in held:
            h = held[e.prompt_key]
            problems.append(Problem(e.path, e.line, e.prompt_field, "leak",
                                    f"the same prompt is held out at {h.path}:{h.line}: scoring it would measure memory"))
    return problems


@dataclass
class DataReport:
    """What the check found: rows read and kept per file, every problem, and what was dropped."""
    files: dict[str, dict]                      # shown path -> {"rows": read, "kept": kept}
    problems: list[Problem]
    on_bad_rows: str
    split: dict[str, int] = field(default_factory=dict)     # train / validation / eval -> examples

    @property
    def dropped(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems)) if self.on_bad_rows == "drop" else {}

    def lines(self, limit: int | None = None) -> list[str]:
        shown = self.problems if limit is None else self.problems[:limit]
        more = len(self.problems) - len(shown)
        return [str(p) for p in shown] + ([f"... and {more} more (all in data_report.json)"] if more > 0 else [])

    def to_dict(self) -> dict:
        return {"files": self.files, "on_bad_rows": self.on_bad_rows, "split": self.split,
                "problems_by_kind": dict(Counter(p.kind for p in self.problems)), "dropped": self.dropped,
                "problems": [{"path": p.path, "line": p.line, "field": p.field, "kind": p.kind, "message": p.message}
                             for p in self.problems]}


class DataError(ValueError):
    """Bad rows with ``on_bad_rows: error``: the message lists every one; ``report`` holds them."""

    def __init__(self, report: DataReport):
        self.report = report
        rows = len({(p.path, p.line) for p in report.problems})
        super().__init__(f"{rows} bad row(s), {len(report.problems)} problem(s); nothing was trained (set data.on_bad_rows: drop to "
                         "leave them out, counted):\n  " + "\n  ".join(report.lines(limit=50)))


def split_validation(examples: list[Example], share: float, seed: int,
                     limit: int | None = None) -> tuple[list[Example], list[Example]]:
    """A seeded share of the examples held out (at least one when the share is above 0, at most ``limit``)."""
    if share <= 0:
        return examples, []
    order = list(range(len(examples)))
    random.Random(f"validation/{seed}").shuffle(order)
    n = min(max(1, round(share * len(examples))), limit or len(examples))
    held = set(order[:n])
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]
