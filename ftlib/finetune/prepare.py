"""Before any training: can this config run here, and is its data good?

:func:`check_environment` finds the model (a course name, a local folder of safetensors, or a hub id
that must already be in the local hub cache when offline), checks that QLoRA's 4-bit kernels work on
this machine, and picks the chat template. :func:`prepare_data` reads every file with
:mod:`ftlib.finetune.rows` and returns the examples and the :class:`~ftlib.finetune.rows.DataReport`.
Every problem is reported by key path (config) or file:line:field (data), all at once.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from ftlib.finetune.config import ConfigError, DataFile, FinetuneConfig
from ftlib.finetune.rows import DataError, DataReport, Example, FileProblem, cross_checks, read_file, split_validation

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def course_names() -> list[str]:
    """The course's models a run can start from: SmolLM2 and every product that is a full model."""
    from ftlib.products.registry import PRODUCTS, SMOLLM2
    return [SMOLLM2, *(n for n, p in PRODUCTS.items() if not p.adapter and n in MODEL_PRODUCTS)]


MODEL_PRODUCTS = ("course-base", "course-sft", "assistant-ppo", "assistant-grpo", "assistant-dpo")


def locate_model(name: str, base: Path, where: str = "config") -> tuple[str, str]:
    """``(kind, reference)``: ("course", name), ("folder", absolute path) or ("hub", id); ConfigError if none.
    ``where`` names the config file in messages."""
    from ftlib.products.registry import PRODUCTS
    fail = lambda message: ConfigError([(where, "model.name", message)])      # noqa: E731
    if name in course_names():
        return "course", name
    if name in PRODUCTS:
        kind = "a LoRA adapter" if PRODUCTS[name].adapter else "not a model (data or measurements)"
        raise fail(f"{name!r} is {kind}; start from one of {', '.join(course_names())}, or save a merged model "
                   "to a folder (load_model(name) returns it merged) and give the folder")
    folder = (base / Path(name).expanduser())
    if folder.is_dir():
        if not list(folder.glob("*.safetensors")):
            raise fail(f"the folder {name!r} holds no .safetensors weights; the course loads safetensors only "
                       "(never pickled .bin files)")
        return "folder", str(folder.resolve())
    if not HUB_ID.match(name) or name.startswith((".", "~", "/")):
        raise fail(f"{name!r} is not a course name ({', '.join(course_names())}), not a folder beside the config "
                   "and not a hub id (owner/name)")
    from transformers import AutoConfig
    try:
        AutoConfig.from_pretrained(name, trust_remote_code=False)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0][:160]
        raise fail(f"{name!r} is not a folder beside the config, and as a hub id it could not be loaded: it is not "
                   f"in the local hub cache, and the hub could not be reached (the course runs offline) or has no "
                   f"such model. Download it where there is a network (`hf download {name}`), or give a local "
                   f"folder or a course name. ({type(err).__name__}: {first})") from None
    return "hub", name


def qlora_problem(device) -> str | None:
    """Why QLoRA cannot run on ``device`` (None if bitsandbytes' NF4 kernels work there)."""
    try:
        import bitsandbytes.functional as bf
        import torch
        q, state = bf.quantize_4bit(torch.randn(64, 64, device=device), quant_type="nf4")
        bf.dequantize_4bit(q, state)
    except Exception as err:                     # noqa: BLE001 (any failure means: not on this machine)
        return f"bitsandbytes' 4-bit kernels do not run on {device} here ({type(err).__name__}: {err}); use lora"
    return None


def pick_template(tokenizer, choice: str) -> str:
    """The chat template to train with: the course's ChatML, or the model's own with the generation
    markers assistant-only loss needs (for SmolLM2, :func:`~ftlib.engine.sft_data.chatml_template`
    with its system turn renders exactly its own template). ConfigError if the model has none."""
    from ftlib.engine.sft_data import SMOLLM2_SYSTEM, chatml_template
    if choice == "chatml":
        return chatml_template()
    own = getattr(tokenizer, "chat_template", None)
    if not own:
        raise ConfigError([("model.template", "model.template", "the tokenizer has no chat template of its own: "
                            "use template: chatml")])
    if "{% generation %}" in own:
        return own
    probe = [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
             [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
              {"role": "assistant", "content": "Hello"}]]
    for candidate in (chatml_template(SMOLLM2_SYSTEM), chatml_template()):
        if all(tokenizer.apply_chat_template(c, tokenize=False) ==
               tokenizer.apply_chat_template(c, chat_template=candidate, tokenize=False) for c in probe):
            return candidate
    raise ConfigError([("model.template", "model.template", "the tokenizer's own template has no {% generation %} "
                        "markers and is not ChatML, so the answer tokens cannot be found for the loss: use template: chatml")])


def sample(examples: list[Example], n: int) -> list[Example]:
    """A fixed random ``n`` of ``examples`` in file order (files often keep rewordings of one item together,
    so the first ``n`` rows would be few items asked several times). The same for every training seed, so
    runs with different seeds are scored on the same items."""
    if len(examples) <= n:
        return examples
    keep = set(random.Random("eval").sample(range(len(examples)), n))
    return [e for i, e in enumerate(examples) if i in keep]


@dataclass
class Start:
    """The model a run starts from: how it was named, where its weights are, its tokenizer and chat template."""
    kind: str                # "course", "folder" or "hub"
    reference: str           # the course name, the absolute folder or the hub id
    path: str                # what from_pretrained loads
    tokenizer: object
    template: str


def start_model(cfg: FinetuneConfig, base: Path, where: str = "config") -> Start:
    """Find the model (a course product is built if needed), load its tokenizer and pick the template."""
    from ftlib.engine.models import tokenizer_from
    from ftlib.products.registry import resolve_model_path
    kind, ref = locate_model(cfg.model.name, base, where)
    path = resolve_model_path(ref, profile=cfg.profile, seed=cfg.train.seed)
    tokenizer = tokenizer_from(path)
    return Start(kind, ref, path, tokenizer, pick_template(tokenizer, cfg.model.template))


@dataclass
class Data:
    train: list[Example]
    validation: list[Example]
    eval: list[Example]             # what the before/after comparison scores
    report: DataReport


def _read(spec: DataFile, base: Path, key: str) -> tuple[list[Example], list]:
    path = base / Path(spec.path).expanduser()
    try:
        return read_file(path, spec.format, shown=spec.path, families=spec.families, max_rows=spec.max_rows)
    except FileProblem as err:                  # the whole file: a config problem, whatever on_bad_rows says
        raise ConfigError([("config", f"{key}.path", str(err))]) from None


ROLES = {"data.train": "train", "data.validation": "validation", "eval.file": "eval"}


def prepare_data(cfg: FinetuneConfig, base: Path, tokenizer, template: str) -> Data:
    """Read and check every data file of ``cfg`` (paths relative to ``base``). Raises DataError with
    ``on_bad_rows: error`` if any row is bad; with ``drop`` the bad rows are left out and counted."""
    read, files, problems = {}, {}, []
    for key, spec in cfg.data_files().items():
        read[key], p = _read(spec, base, key)
        problems += p
        files[spec.path] = {"role": ROLES[key], "format": spec.format, "rows": len(read[key]) + len(p)}
    train, validation_file, eval_file = (read.get(key, []) for key in ROLES)
    problems += cross_checks(train, validation_file + eval_file, tokenizer=tokenizer, template=template,
                             max_length=cfg.data.max_length)
    bad = {(q.path, q.line) for q in problems}
    for spec in files:
        files[spec]["bad"] = len({line for path, line in bad if path == spec})
    report = DataReport(files, problems, cfg.data.on_bad_rows)
    if problems and cfg.data.on_bad_rows == "error":
        raise DataError(report)
    keep = lambda rows: [e for e in rows if (e.path, e.line) not in bad]   # noqa: E731
    train, validation_file, eval_file = keep(train), keep(validation_file), keep(eval_file)
    if isinstance(cfg.data.validation, float):
        train, validation = split_validation(train, cfg.data.validation, cfg.train.seed, limit=cfg.eval.max_items)
    else:
        validation = validation_file
    evaluation = sample(eval_file or validation, cfg.eval.max_items)
    report.split = {"train": len(train), "validation": len(validation), "eval": len(evaluation)}
    if not train:
        raise DataError(report) if problems else ConfigError([("config", "data.train", "no rows to train on")])
    if not evaluation:
        raise ConfigError([("config", "eval.file", "no rows to evaluate on")])
    return Data(train, validation, evaluation, report)
