"""Chapter 11 (capstone): the exercises' checkers. Each returns ``(ok, hint)``; :func:`ftlib.course.exercises.check`
prints the verdict."""
from __future__ import annotations

import json
from typing import Callable

from ftlib.course.exercises.core import call_answer


def _cases() -> list[tuple[str, list[str], list[dict]]]:
    """(what, training lines, test rows): a learner's file with every planted mistake, and one whose leak
    differs from the test row in case and punctuation only."""
    from ftlib.data.capstone import date_rows, with_mistakes
    from ftlib.data.jsonl import dumps_row
    train, test = date_rows(40, seed=3), date_rows(8, seed=3, offset=40)
    planted, _ = with_mistakes(train, test, seed=3)
    reworded = dict(test[2], input=test[2]["input"].upper() + ".")
    lines = [dumps_row(r) for r in train[:12]] + [dumps_row(reworded)] + [dumps_row(r) for r in train[12:20]]
    return [("the planted file", planted, test), ("a leak in other case and punctuation", lines, test)]


def leaked_lines(lines: list[str], test_rows: list[dict]) -> list[int]:
    """The library's answer: lines whose prompt, normalised, is a test row's (ftlib.finetune.rows)."""
    from ftlib.finetune.rows import BadRow, parse_row
    held = {parse_row(r, "alpaca", "test", i).prompt_key for i, r in enumerate(test_rows, 1)}
    out = []
    for number, line in enumerate(lines, start=1):
        try:
            if parse_row(json.loads(line), "alpaca", "train", number).prompt_key in held:
                out.append(number)
        except (ValueError, BadRow):
            continue
    return out


def _leaked_lines(answer, **context) -> tuple[bool, str]:
    """11.leaked_lines: ``answer(train_lines, test_rows)`` lists the 1-based numbers of the training lines
    (Alpaca JSON) whose prompt is a test row's prompt, compared as the data check compares them."""
    for what, lines, test in _cases():
        got, problem = call_answer(answer, "my_leaked_lines(train_lines, test_rows)", lines, test)
        if problem:
            return False, problem
        if not isinstance(got, (list, tuple)) or not all(isinstance(n, int) and not isinstance(n, bool) for n in got):
            return False, f"return a list of line numbers (ints); you return {type(got).__name__}"
        want = leaked_lines(lines, test)
        if sorted(got) == want:
            continue
        if sorted(n + 1 for n in got) == want:
            return False, f"{what}: your numbers are one too small: files count lines from 1"
        if len(got) < len(want):
            return False, (f"{what}: you find {len(got)} leaked line(s), the check finds {len(want)}: compare prompts "
                           "after normalising them (case, punctuation and spacing do not make a new question)")
        return False, (f"{what}: you flag {len(got)} line(s), the check {len(want)}: a leak is a training prompt that "
                       "is also a test prompt (the instruction and the input); skip lines that are not valid rows")
    return True, "the same rule the data check applies to every training row before a run"


# A LLaMA-Factory training config (its keys), with the dataset entry of its dataset_info.json folded in.
LLAMA_FACTORY = {
    "model_name_or_path": "smollm2-135m", "stage": "sft", "do_train": True, "finetuning_type": "lora",
    "lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.05, "lora_target": "all",
    "dataset": "dates", "dataset_info": {"dates": {"file_name": "data/train.jsonl", "formatting": "alpaca"}},
    "cutoff_len": 128, "val_size": 0.1, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
    "learning_rate": 2.0e-4, "max_steps": 60, "lr_scheduler_type": "linear", "warmup_ratio": 0.05, "seed": 7,
    "output_dir": "runs/from_llama_factory",
}
# (key path in this course's config, the value it must have, where it comes from in LLAMA_FACTORY)
_SAME = [("model.name", "smollm2-135m", "model_name_or_path"), ("method.name", "lora", "finetuning_type"),
         ("method.r", 8, "lora_rank"), ("method.alpha", 16, "lora_alpha"), ("method.dropout", 0.05, "lora_dropout"),
         ("method.target_modules", "all-linear", "lora_target: all (every linear layer)"),
         ("data.train.path", "data/train.jsonl", "dataset_info's file_name"),
         ("data.train.format", "alpaca", "dataset_info's formatting"), ("data.max_length", 128, "cutoff_len"),
         ("data.validation", 0.1, "val_size"), ("train.batch_size", 4, "per_device_train_batch_size"),
         ("train.grad_accum", 2, "gradient_accumulation_steps"), ("train.lr", 2.0e-4, "learning_rate"),
         ("train.steps", 60, "max_steps"), ("train.schedule", "linear", "lr_scheduler_type"),
         ("train.warmup", 0.05, "warmup_ratio"), ("train.seed", 7, "seed"), ("output.dir", "runs/from_llama_factory",
                                                                            "output_dir")]


def _at(config, path: str):
    for part in path.split("."):
        config = getattr(config, part)
    return config


def _from_llama_factory(answer, **context) -> tuple[bool, str]:
    """11.from_llama_factory: ``answer`` is this course's config (a dict, as the YAML file would load) for the
    job :data:`LLAMA_FACTORY` describes."""
    from pydantic import ValidationError

    from ftlib.finetune.config import FinetuneConfig
    if not isinstance(answer, dict):
        return False, f"write the config as a dict of sections (model, data, method, ...); you have a {type(answer).__name__}"
    try:
        cfg = FinetuneConfig.model_validate(answer)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"] if "[" not in str(p) and not str(p).startswith(("function-", "constrained-")))
        why = "unknown key: it is LLaMA-Factory's name or a typo" if first["type"] == "extra_forbidden" else first["msg"]
        return False, f"the config does not validate ({len(err.errors())} problem(s)); the first: {key}: {why}"
    wrong = []
    for path, want, source in _SAME:
        got = _at(cfg, path)
        same = abs(got - want) < 1e-12 if isinstance(want, float) and isinstance(got, (int, float)) else got == want
        if not same:
            wrong.append((path, source))
    if cfg.train.epochs is not None:
        wrong.insert(0, ("train.epochs", "max_steps: the run is counted in steps"))
    if not wrong:
        return True, "the same job in this course's keys: it runs with python -m ftlib.finetune"
    path, source = wrong[0]
    return False, f"{len(wrong)} setting(s) differ from the LLaMA-Factory job; the first: {path} (from {source})"


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "11.leaked_lines": _leaked_lines,
    "11.from_llama_factory": _from_llama_factory,
}
