"""The capstone's config file: one YAML, checked with pydantic before any work starts.

Six sections, in the order a fine-tuning job is thought through (the keys follow LLaMA-Factory and
Axolotl; chapter 11 tables the mapping)::

    model:  {name, template}                       what to start from, how chats are written
    data:   {train, validation, max_length, on_bad_rows}
    method: {name: sft | lora | qlora | dpo, r, alpha, dropout, target_modules, beta, sft_weight}
    train:  {steps | epochs, batch_size, grad_accum, lr, schedule, warmup, seed, precision, save_every}
    eval:   {file, verifier, max_items, perplexity}
    output: {dir, export, gguf_format}

Every mistake is reported at once, by key path and by the line of the YAML file it is on:
unknown keys, wrong types, values out of range and combinations that cannot work (DPO without
preference pairs, steps *and* epochs). What is left unset comes from the course profile
(:data:`PROFILE_DEFAULTS`); :func:`resolve` fills it in, and the run saves the result.
Relative paths are read from the config file's folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SFT_FORMATS = ("alpaca", "sharegpt", "messages", "task")
FORMATS = SFT_FORMATS + ("preference",)


class ConfigError(ValueError):
    """A config that cannot run: ``problems`` is a list of ``(where, key path, message)``."""

    def __init__(self, problems: list[tuple[str, str, str]]):
        self.problems = problems
        lines = [f"{where}: {key}: {message}" if key else f"{where}: {message}" for where, key, message in problems]
        super().__init__(f"{len(problems)} problem(s) in the config:\n  " + "\n  ".join(lines))


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSection(Section):
    name: str = Field("smollm2-135m", description="a course name (smollm2-135m, course-sft, ...), a local "
                      "folder with safetensors, or a hub id (needs the hub, or its files in the local hub cache)")
    template: Literal["model", "chatml"] = Field(
        "model", description="'model': the tokenizer's own chat template (it must have one); 'chatml': "
        "the course's ChatML, for a base model without one")


class DataFile(Section):
    path: str = Field(description="a JSON Lines file, relative to the config file's folder")
    format: Literal["alpaca", "sharegpt", "messages", "task", "preference"] = Field(
        description="alpaca {instruction, input, output}; sharegpt {conversations: [{from, value}]}; "
        "messages {messages: [{role, content}]}; task {prompt, answer, family}; preference {prompt, chosen, rejected}")
    families: list[str] | None = Field(None, description="task format only: keep these course task families")
    max_rows: int | None = Field(None, gt=0, description="read at most this many rows (after the family filter)")

    @model_validator(mode="after")
    def _families_need_tasks(self):
        if self.families is not None and self.format != "task":
            raise ValueError("'families' filters course task rows: it needs format: task")
        return self


class DataSection(Section):
    train: DataFile
    validation: Annotated[float, Field(ge=0, le=0.5)] | DataFile = Field(
        0.1, description="a share of the train rows held out for the validation loss (0 to 0.5; at most "
        "eval.max_items rows), or a file")
    max_length: int | None = Field(None, gt=8, description="tokens per example, template included; a longer "
                                   "row is an error (or dropped, with on_bad_rows: drop)")
    on_bad_rows: Literal["error", "drop"] = Field("error", description="'error': stop and list every bad row; "
                                                  "'drop': leave them out, counted in the data report")


class MethodSection(Section):
    name: Literal["sft", "lora", "qlora", "dpo"] = Field(description="sft: every weight (chapter 05); lora "
                                                        "(03); qlora: LoRA on a 4-bit base (04); dpo: preference pairs (07)")
    r: int = Field(16, gt=0, description="LoRA rank")
    alpha: float | None = Field(None, gt=0, description="LoRA alpha (default 2 r)")
    dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout")
    target_modules: list[str] | Literal["all-linear"] = Field("all-linear", description="LoRA targets")
    adapter: Literal["lora", "none"] = Field("lora", description="dpo only: train a LoRA adapter (the reference "
                                             "model is the base, adapter off) or every weight")
    beta: float = Field(0.1, gt=0, description="dpo: how far the policy may move from the reference")
    sft_weight: float = Field(0.0, ge=0, description="dpo: weight of the chosen answers' NLL added to the loss (07)")


class TrainSection(Section):
    steps: int | None = Field(None, gt=0, description="optimizer steps (default: by profile)")
    epochs: float | None = Field(None, gt=0, description="passes over the train rows, instead of steps")
    batch_size: int | None = Field(None, gt=0, description="examples per device step (default: by profile)")
    grad_accum: int = Field(1, gt=0, description="device steps per optimizer step")
    lr: float | None = Field(None, gt=0, lt=1, description="peak learning rate (default: by method)")
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup: float = Field(0.1, ge=0, le=0.5, description="share of the steps spent warming up")
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 on a GPU, fp32 on a CPU")
    save_every: int | None = Field(None, gt=0, description="checkpoint every this many steps, for --resume "
                                   "(default: a quarter of the steps)")

    @model_validator(mode="after")
    def _one_length(self):
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give steps or epochs, not both")
        return self


class EvalSection(Section):
    file: DataFile | None = Field(None, description="held-out items (never trained on); default: the validation rows")
    verifier: Literal["exact", "family", "none"] = Field(
        "exact", description="exact: the answer equals the reference, ignoring case, spacing and wrapping (quotes, "
        "a final period, 'Answer:'); family: the course verifier of each task row")
    max_items: int | None = Field(None, gt=0, description="items scored (default: by profile)")
    perplexity: bool = Field(True, description="also the reference answers' perplexity, before and after")


class OutputSection(Section):
    dir: str = Field("runs/finetune", description="the run directory, relative to the config file's folder")
    export: list[Literal["gguf"]] = Field([], description="formats besides safetensors (always written to "
                                          "merged/: the server loads it): gguf")
    gguf_format: Literal["F32", "F16", "Q8_0", "Q4_0"] = "Q8_0"
    overwrite: bool = Field(False, description="replace an earlier run in dir (otherwise: an error, or --resume)")


class FinetuneConfig(Section):
    profile: Literal["smoke", "cpu", "gpu"] | None = Field(None, description="course profile for the defaults "
                                                          "(default: $FTLIB_PROFILE, else cpu)")
    model: ModelSection = ModelSection()
    data: DataSection
    method: MethodSection
    train: TrainSection = TrainSection()
    eval: EvalSection = EvalSection()
    output: OutputSection = OutputSection()

    def data_files(self) -> dict[str, DataFile]:
        """The data files the config names, by key path: data.train, and data.validation and eval.file
        where they are files."""
        named = {"data.train": self.data.train, "data.validation": self.data.validation, "eval.file": self.eval.file}
        return {key: spec for key, spec in named.items() if isinstance(spec, DataFile)}

    @model_validator(mode="after")
    def _combinations(self):
        pairs = self.data.train.format == "preference"
        if self.method.name == "dpo" and not pairs:
            raise ValueError(f"method dpo learns from preference pairs, but data.train.format is "
                             f"{self.data.train.format!r}: use format: preference ({{prompt, chosen, rejected}})")
        if self.method.name != "dpo" and pairs:
            raise ValueError(f"method {self.method.name} learns from answers, but data.train.format is preference: "
                             "use method: {name: dpo} for pairs")
        if isinstance(self.data.validation, DataFile) and (self.data.validation.format == "preference") != pairs:
            raise ValueError("data.validation must hold the same kind of rows as data.train (pairs or answers)")
        if self.eval.verifier == "family" and (self.eval.file is None or self.eval.file.format != "task"):
            raise ValueError("eval.verifier family scores course task rows: give eval.file with format: task")
        if self.eval.file is not None and (self.eval.file.format == "preference") != pairs:
            raise ValueError("eval.file must hold the same kind of rows as data.train (pairs for dpo, answers otherwise)")
        if self.eval.file is None and self.data.validation == 0:
            raise ValueError("nothing to evaluate on: give eval.file, or a data.validation share above 0")
        return self


# What the profile decides when the file does not: (smoke, cpu, gpu)
PROFILE_DEFAULTS = {
    "smoke": {"steps": 2, "batch_size": 2, "max_length": 256, "max_items": 4},
    "cpu": {"steps": 150, "batch_size": 8, "max_length": 256, "max_items": 200},
    "gpu": {"steps": 600, "batch_size": 16, "max_length": 512, "max_items": 500},
}
DEFAULT_LR = {"sft": 2e-5, "lora": 1e-3, "qlora": 1e-3, "dpo": 5e-6}   # dpo with a LoRA adapter: 10x (see resolve)


# ---------------------------------------------------------------------------------------------
# Reading the file: YAML with line numbers, then pydantic
# ---------------------------------------------------------------------------------------------
def _key_lines(node, prefix=(), out=None) -> dict[tuple, int]:
    """Key path -> 1-based line, for every key and list item of a composed YAML node."""
    import yaml
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = prefix + (key.value,)
            out[path] = key.start_mark.line + 1
            _key_lines(value, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[prefix + (i,)] = item.start_mark.line + 1
            _key_lines(item, prefix + (i,), out)
    return out


def _where(path: Path, lines: dict, loc: tuple) -> str:
    for n in range(len(loc), 0, -1):               # the deepest part of the path that is in the file
        if loc[:n] in lines:
            return f"{path}:{lines[loc[:n]]}"
    return str(path)


_BRANCHES = ("DataFile", "float", "constrained-float")   # the two shapes of data.validation, as pydantic names them


def _key(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if p not in _BRANCHES and not str(p).startswith(("function-", "literal[")))


def _other_branch(e: dict) -> bool:
    """An error from the branch of a float-or-file union that the value did not mean to take."""
    is_map = isinstance(e.get("input"), dict)
    return (any("DataFile" in str(p) for p in e["loc"]) and not is_map) or (is_map and any("float" in str(p) for p in e["loc"]))


def _combination_problems(raw: dict) -> list[tuple[tuple, str]]:
    """The cross-key rules of the models' "after" validators, checked on the raw mapping, so that they are
    reported beside field errors (pydantic runs those validators only when every field is valid)."""
    get = lambda *keys: _dig(raw, keys)                        # noqa: E731
    out = []
    if get("train", "steps") is not None and get("train", "epochs") is not None:
        out.append((("train",), "give steps or epochs, not both"))
    fmt, method = get("data", "train", "format"), get("method", "name")
    if method == "dpo" and fmt not in (None, "preference"):
        out.append((("method", "name"), f"method dpo learns from preference pairs, but data.train.format is {fmt!r}: "
                    "use format: preference ({prompt, chosen, rejected})"))
    if method not in (None, "dpo") and fmt == "preference":
        out.append((("method", "name"), f"method {method} learns from answers, but data.train.format is preference: "
                    "use method: {name: dpo} for pairs"))
    return out


def _dig(raw, keys):
    for key in keys:
        if not isinstance(raw, dict):
            return None
        raw = raw.get(key)
    return raw


def parse(text: str, path: str | Path = "<config>") -> FinetuneConfig:
    """A :class:`FinetuneConfig` from YAML ``text``, or a :class:`ConfigError` listing every problem."""
    import yaml
    path = Path(path)
    try:
        raw = yaml.safe_load(text)
        lines = _key_lines(yaml.compose(text)) if raw is not None else {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError([(where, "", f"not valid YAML ({getattr(err, 'problem', err)})")]) from None
    if not isinstance(raw, dict):
        raise ConfigError([(str(path), "", "the config must be a mapping of sections (model, data, method, ...)")])
    try:
        return FinetuneConfig.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            if _other_branch(e):
                continue
            loc = tuple(e["loc"])
            message = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                message = "unknown key (see python -m ftlib.finetune --schema for the keys)"
            elif isinstance(e.get("input"), (str, int, float, bool)):
                message += f" (got {e['input']!r})"
            problems.append((_where(path, lines, loc), _key(loc), message))
        for loc, message in _combination_problems(raw):
            if not any(message == m for _, _, m in problems):
                problems.append((_where(path, lines, loc), _key(loc), message))
        line = lambda where: int(where.rsplit(":", 1)[1]) if where.rsplit(":", 1)[-1].isdigit() else 0   # noqa: E731
        raise ConfigError(sorted(problems, key=lambda p: line(p[0]))) from None


def load_config(path: str | Path) -> FinetuneConfig:
    """Read and check the YAML file at ``path`` (see :func:`parse`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([(str(path), "", "no such file")])
    return parse(path.read_text(encoding="utf-8"), path)


def resolve(cfg: FinetuneConfig, profile: str | None = None) -> FinetuneConfig:
    """A copy with every unset value filled from the profile and the method's defaults."""
    from ftlib.engine.profiles import resolve as resolve_profile
    name = resolve_profile(profile or cfg.profile).name
    d = PROFILE_DEFAULTS[name]
    lr = DEFAULT_LR[cfg.method.name] * (10 if cfg.method.name == "dpo" and cfg.method.adapter == "lora" else 1)
    steps = None if cfg.train.epochs else (cfg.train.steps or d["steps"])
    train = cfg.train.model_copy(update={
        "steps": steps, "batch_size": cfg.train.batch_size or d["batch_size"],
        "lr": cfg.train.lr or lr, "save_every": cfg.train.save_every or (max(1, steps // 4) if steps else None)})
    return cfg.model_copy(update={
        "profile": name, "train": train,
        "method": cfg.method.model_copy(update={"alpha": cfg.method.alpha or 2 * cfg.method.r}),
        "data": cfg.data.model_copy(update={"max_length": cfg.data.max_length or d["max_length"]}),
        "eval": cfg.eval.model_copy(update={"max_items": cfg.eval.max_items or d["max_items"]})})


def schema() -> dict:
    """The JSON Schema of the config file (editors complete the keys from it)."""
    return FinetuneConfig.model_json_schema()
