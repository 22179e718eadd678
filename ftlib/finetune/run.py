"""One fine-tuning run from one config: check, score the start, train, merge, export, score the result.

:func:`finetune` is what ``python -m ftlib.finetune my.yaml`` calls. Its run directory holds::

    config.resolved.yaml   every setting, defaults filled in, with the data files' hashes and versions
    data_report.json       rows read, kept and dropped per file, every problem by file:line:field
    log_history.json       the trainer's log: loss per step, validation loss, learning rate
    loss.png               the loss curves
    results.json           the before/after comparison (n, 95% intervals, paired test) and timings
    report.md              the same, for people
    merged/                the fine-tuned model as safetensors with its tokenizer (what the server loads)
    adapter/               the LoRA adapter alone (lora, qlora, dpo with an adapter)
    model-<FORMAT>.gguf    when output.export has gguf
    checkpoints/           the last checkpoint, for --resume
"""
from __future__ import annotations

import gc
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ftlib.finetune import evaluate, prepare
from ftlib.finetune.config import ConfigError, FinetuneConfig, load_config, resolve
from ftlib.finetune.rows import DataError
from ftlib.finetune.train import build_trainer, last_checkpoint, load_start, run_training


@dataclass
class RunResult:
    dir: Path
    config: FinetuneConfig
    comparison: dict
    data: dict              # the data report
    timings: dict           # seconds per phase
    serve_command: str


def shown(path: Path, base: Path) -> str:
    """``path`` as printed: relative to ``base`` (the config's folder) when inside it, never absolute."""
    from ftlib.engine.cache import display_path
    try:
        return str(Path(path).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return display_path(path)


def command_path(path: Path, base: Path) -> str:
    """``path`` for a command line: relative to the working directory when inside it, else to the
    config's folder (where the command is then to be run)."""
    for root in (Path(os.getcwd()), base):
        try:
            return str(Path(path).resolve().relative_to(root.resolve()))
        except ValueError:
            continue
    return shown(path, base)


def check(config: str | Path, *, profile: str | None = None):
    """Check a config and every row of its data without training: the :class:`~ftlib.finetune.prepare.Data`
    (its ``report`` says what was found), or ConfigError / DataError listing every problem."""
    cfg = resolve(load_config(config), profile)
    base = Path(config).parent
    start = prepare.start_model(cfg, base, str(config))
    return prepare.prepare_data(cfg, base, start.tokenizer, start.template)


def _versions() -> dict:
    from ftlib.engine.cache import package_versions
    return package_versions(("torch", "transformers", "peft", "trl", "bitsandbytes", "datasets", "pydantic"))


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _inputs(cfg: FinetuneConfig, base: Path, start: prepare.Start, device) -> dict:
    """Everything the run depends on beyond the settings: the data files' hashes, the model, the machine."""
    from ftlib.engine.cache import file_hash
    files = cfg.data_files().values()
    reference = shown(Path(start.reference), base) if start.kind == "folder" else start.reference
    return {"model": {"kind": start.kind, "reference": reference},
            "data_sha256": {f.path: file_hash(base / f.path) for f in files},
            "device": device.type, "packages": _versions()}


def check_output(cfg: FinetuneConfig, base: Path, out: Path, where: str, resume: bool) -> None:
    """An earlier run (one with a checkpoint or results) is continued with ``resume`` or replaced with
    ``output.overwrite``, never both and never silently; a folder holding the config or data is never removed."""
    if resume:
        if last_checkpoint(out / "checkpoints") is None:
            raise ConfigError([(where, "output.dir", f"--resume: no checkpoint in {shown(out / 'checkpoints', base)} "
                                "(a run saves one every train.save_every steps)")])
        return
    earlier = (out / "results.json").exists() or last_checkpoint(out / "checkpoints") is not None
    if not earlier:
        return                                  # empty, or only the report of a run that stopped at the data check
    if not cfg.output.overwrite:
        raise ConfigError([(where, "output.dir", f"{shown(out, base)} holds an earlier run: continue it with --resume, "
                            "choose another output.dir, or set output.overwrite: true")])
    inputs = [base / spec.path for spec in cfg.data_files().values()]
    for path in [base, *inputs]:
        if path.resolve() == out.resolve() or out.resolve() in path.resolve().parents:
            raise ConfigError([(where, "output.dir", "output.overwrite would delete the config's folder or a data "
                                "file inside it: choose an output.dir of its own")])
    shutil.rmtree(out)


def same_as_before(out: Path, resolved: dict, where: str) -> None:
    """--resume continues the same run: the settings and the data must be those the checkpoint was made with."""
    import yaml
    saved = yaml.safe_load((out / "config.resolved.yaml").read_text(encoding="utf-8")) if (out / "config.resolved.yaml").exists() else None
    if saved is None:
        return
    changed = [key for key in sorted(set(saved) | set(resolved)) if key not in ("inputs", "output")
               and saved.get(key) != resolved.get(key)]
    if saved.get("inputs", {}).get("data_sha256") != resolved["inputs"]["data_sha256"]:
        changed.append("the data files")
    if changed:
        raise ConfigError([(where, "", f"--resume continues the same run, but {', '.join(changed)} changed since its "
                            "checkpoint: start a new run (another output.dir) instead")])


def plot_losses(log: list[dict], path: Path, title: str) -> None:
    """Training loss per step and validation loss where it was measured, on an axis from 0."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    train = [(r["step"], r["loss"]) for r in log if "loss" in r]
    val = [(r["step"], r["eval_loss"]) for r in log if "eval_loss" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if train:
        ax.plot(*zip(*train), label="training batch", lw=1)
    if val:
        ax.plot(*zip(*val), "o-", label="validation rows")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats per answer token)")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def merged_model(cfg: FinetuneConfig, trainer, model_path: str, out: Path):
    """The trained model as one plain fp32 model; the adapter, if any, is saved to ``out/adapter`` first.
    QLoRA's adapter is merged into the full-precision base (the NF4 base is only for training)."""
    from peft import PeftModel

    from ftlib.engine.models import from_pretrained
    model = trainer.model
    if not isinstance(model, PeftModel):
        return model.float().eval()
    model.save_pretrained(out / "adapter")
    if cfg.method.name == "qlora":
        base, _ = from_pretrained(model_path)
        return PeftModel.from_pretrained(base, str(out / "adapter")).merge_and_unload().eval()
    return model.merge_and_unload().float().eval()


def finetune(config: str | Path | FinetuneConfig, *, profile: str | None = None, resume: bool = False,
             progress: bool = True, stop_after: int | None = None, base: str | Path | None = None,
             say=print) -> RunResult:
    """Run the config (a YAML path, or a :class:`FinetuneConfig` with ``base`` its folder).

    ``resume`` continues from the run directory's last checkpoint; ``stop_after`` interrupts after
    the checkpoint of that step (to show resuming). Raises :class:`ConfigError` or
    :class:`~ftlib.finetune.rows.DataError` before any training when something is wrong.
    """
    from ftlib.engine.hardware import pick_device, seed_everything
    from ftlib.engine.models import from_pretrained, save_model

    t0 = time.perf_counter()
    if isinstance(config, FinetuneConfig):
        cfg, base, where = config, Path(base or "."), "config"
    else:
        cfg, base, where = load_config(config), Path(base or Path(config).parent), str(config)
    cfg = resolve(cfg, profile)
    out = base / cfg.output.dir
    check_output(cfg, base, out, where, resume)
    device = pick_device(cfg.profile)
    if cfg.method.name == "qlora" and (why := prepare.qlora_problem(device)):
        raise ConfigError([(where, "method.name", why)])
    start = prepare.start_model(cfg, base, where)
    model_path, tokenizer, template = start.path, start.tokenizer, start.template
    out.mkdir(parents=True, exist_ok=True)
    try:
        data = prepare.prepare_data(cfg, base, tokenizer, template)
    except DataError as err:
        _write_json(out / "data_report.json", err.report.to_dict())
        raise
    _write_json(out / "data_report.json", data.report.to_dict())
    import yaml
    resolved = {**cfg.model_dump(mode="json"), "inputs": _inputs(cfg, base, start, device)}
    if resume:
        same_as_before(out, resolved, where)
    (out / "config.resolved.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True), encoding="utf-8")
    say(f"data: {data.report.split['train']} train, {data.report.split['validation']} validation and "
        f"{data.report.split['eval']} eval examples; {len(data.report.problems)} bad rows"
        + (f" dropped ({', '.join(f'{k} {v}' for k, v in data.report.dropped.items())})" if data.report.problems else ""))
    timings = {"check_s": time.perf_counter() - t0}

    pairs = cfg.method.name == "dpo"
    verifier = "none" if pairs else cfg.eval.verifier
    budget = evaluate.answer_budget(tokenizer, data.eval) if verifier != "none" else 0
    kw = dict(verifier=verifier, pairs=pairs, perplexity=cfg.eval.perplexity, budget=budget)
    t = time.perf_counter()
    start, _ = from_pretrained(model_path, device=device)
    before = evaluate.score(start, tokenizer, template, data.eval, **kw)
    del start
    gc.collect()
    timings["start_eval_s"] = time.perf_counter() - t

    t = time.perf_counter()
    seed_everything(cfg.train.seed)
    tokenizer.chat_template = template
    ckpts = out / "checkpoints"
    trainer = build_trainer(cfg, load_start(cfg, model_path, device), tokenizer, data, ckpts, device=device,
                            progress=progress)
    say(f"training: {cfg.method.name}, {trainer.args.max_steps} steps of {cfg.train.batch_size} x {cfg.train.grad_accum}"
        + (f", resuming from {shown(Path(last_checkpoint(ckpts)), base)}" if resume and last_checkpoint(ckpts) else ""))
    trained = run_training(trainer, ckpts, resume=resume, stop_after=stop_after)
    _write_json(out / "log_history.json", trained["log"])
    timings["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    model = merged_model(cfg, trainer, model_path, out)
    del trainer
    gc.collect()
    save_model(model, tokenizer, out / "merged")
    if "gguf" in cfg.output.export:
        from ftlib.engine.gguf_export import write_gguf
        write_gguf(model, tokenizer, out / f"model-{cfg.output.gguf_format}.gguf", cfg.output.gguf_format)
    timings["export_s"] = time.perf_counter() - t

    t = time.perf_counter()
    after = evaluate.score(model, tokenizer, template, data.eval, **kw)
    timings["final_eval_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    comparison = evaluate.comparison(before, after, pairs=pairs)
    plot_losses(trained["log"], out / "loss.png", f"{cfg.method.name} on {Path(cfg.data.train.path).name}")
    serve = f"python -m ftlib.serving.server --model {command_path(out / 'merged', base)}"
    none = [None] * len(data.eval)
    items = [{"messages": e.messages, "reference": e.answer, "before": b, "after": a, "correct_before": cb,
              "correct_after": ca}
             for e, b, a, cb, ca in zip(data.eval, before.answers or none, after.answers or none, before.correct or none,
                                         after.correct or none)]
    _write_json(out / "results.json", {"comparison": comparison, "timings_s": timings, "resumed_from": trained["resumed_from"],
                                       "items": items})
    (out / "report.md").write_text(f"# {cfg.method.name} run\n\n{evaluate.table(comparison, len(data.eval))}\n\n"
                                   f"Timings (s): {json.dumps({k: round(v, 1) for k, v in timings.items()})}\n\n"
                                   f"Serve it: `{serve}`\n", encoding="utf-8")
    say(f"done in {timings['total_s']:.0f} s; the run directory is {command_path(out, base)}")
    say(f"serve it: {serve}")
    return RunResult(out, cfg, comparison, data.report.to_dict(), timings, serve)
