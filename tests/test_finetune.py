"""The capstone's command (ftlib.finetune): every config and data error is reported by key path or
file:line:field before any work; each example config runs in smoke and writes its run directory;
an interrupted run resumes from its checkpoint with the same losses; a hub id fails offline clearly."""
import json
from pathlib import Path

import pytest

from ftlib.data.capstone import MISTAKES, date_rows, write_learner_dataset
from ftlib.data.jsonl import write_jsonl
from ftlib.finetune import ConfigError, DataError, parse
from ftlib.finetune.__main__ import main
from ftlib.finetune.config import resolve
from ftlib.finetune.prepare import locate_model, pick_template, prepare_data, qlora_problem
from ftlib.finetune.rows import KINDS

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "finetune").glob("*.yaml"))
GOOD = """\
model: {name: smollm2-135m}
data:
  train: {path: train.jsonl, format: alpaca}
method: {name: lora}
"""


def problems_of(text: str) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigError) as err:
        parse(text, "my.yaml")
    return err.value.problems


# ---------------------------------------------------------------------------------------------
# The config: every problem at once, by line and key path
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, where, key, says", [
    (GOOD + "trian: {steps: 3}\n", "my.yaml:5", "trian", "unknown key"),
    (GOOD.replace("{name: lora}", "{name: lora, rank: 8}"), "my.yaml:4", "method.rank", "unknown key"),
    (GOOD.replace("{name: lora}", "{name: lora, r: sixteen}"), "my.yaml:4", "method.r", "valid integer"),
    (GOOD.replace("{name: lora}", "{name: lora, r: 0}"), "my.yaml:4", "method.r", "greater than 0"),
    (GOOD.replace("{name: lora}", "{name: lorra}"), "my.yaml:4", "method.name", "'sft', 'lora', 'qlora' or 'dpo'"),
    (GOOD.replace("format: alpaca", "format: csv"), "my.yaml:3", "data.train.format", "'alpaca'"),
    (GOOD.replace("format: alpaca}", "format: alpaca}\n  validation: 0.7"), "my.yaml:4", "data.validation", "0.5"),
    (GOOD + "train: {steps: 10, epochs: 2}\n", "my.yaml:5", "train", "steps or epochs, not both"),
    (GOOD.replace("{name: lora}", "{name: dpo}"), "my.yaml", "", "dpo learns from preference pairs"),
    (GOOD.replace("format: alpaca", "format: preference"), "my.yaml", "", "use method: {name: dpo}"),
    (GOOD + "eval: {verifier: family}\n", "my.yaml", "", "eval.verifier family"),
    (GOOD.replace("format: alpaca}", "format: alpaca, families: [arithmetic]}"), "my.yaml:3", "data.train",
     "needs format: task"),
    ("model: [oops\n", "my.yaml:2", "", "not valid YAML"),
    ("- just a list\n", "my.yaml", "", "mapping of sections"),
])
def test_each_config_mistake_is_named_by_line_and_key_path(text, where, key, says):
    found = problems_of(text)
    assert any(w == where and k == key and says in m for w, k, m in found), found


def test_a_rule_across_keys_is_reported_beside_field_errors():
    text = GOOD.replace("{name: lora}", "{name: lora, lora_rank: 8}") + "train: {steps: 10, epochs: 2, lr: fast}\n"
    found = {(k, m.split(" (")[0]) for _, k, m in problems_of(text)}
    assert ("train", "give steps or epochs, not both") in found
    assert {"method.lora_rank", "train.lr", "train"} <= {k for k, _ in found}


@pytest.mark.parametrize("extra, says", [
    ("eval: {file: {path: test.jsonl, format: preference}}\n", "eval.file must hold the same kind of rows"),
    ("  validation: 0\n", "nothing to evaluate on"),
])
def test_settings_that_leave_nothing_sound_to_evaluate_are_refused(extra, says):
    text = GOOD.replace("format: alpaca}\n", "format: alpaca}\n" + extra) if extra.startswith("  ") else GOOD + extra
    assert any(says in m for _, _, m in problems_of(text))


def test_all_config_mistakes_are_listed_at_once():
    text = ("model: {name: smollm2-135m, tempalte: chatml}\ndata:\n  train: {path: t.jsonl, format: alpacca}\n"
            "method: {name: lora, r: -1}\ntrain: {lr: fast}\n")
    keys = {k for _, k, _ in problems_of(text)}
    assert keys == {"model.tempalte", "data.train.format", "method.r", "train.lr"}


def test_a_float_written_the_yaml_1_1_way_is_still_a_float():
    cfg = parse(GOOD + "train: {lr: 1e-4}\n")        # PyYAML reads 1e-4 as a string; pydantic converts it
    assert cfg.train.lr == 1e-4


def test_the_profile_fills_what_the_file_leaves_unset():
    cfg = resolve(parse(GOOD), "smoke")
    assert (cfg.train.steps, cfg.train.batch_size, cfg.eval.max_items, cfg.method.alpha) == (2, 2, 4, 32)
    assert resolve(parse(GOOD + "train: {steps: 7}\n"), "cpu").train.steps == 7


def test_schema_is_published(capsys):
    assert main(["--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"model", "data", "method", "train", "eval", "output"} <= set(schema["properties"])
    assert schema["$defs"]["MethodSection"]["properties"]["name"]["enum"] == ["sft", "lora", "qlora", "dpo"]


def test_every_example_config_is_valid():
    assert len(CONFIGS) >= 5
    for path in CONFIGS:
        if "flawed" not in path.name:
            parse(path.read_text(), path)


# ---------------------------------------------------------------------------------------------
# The environment: model, QLoRA kernels, template
# ---------------------------------------------------------------------------------------------
def test_a_hub_id_fails_offline_with_a_clear_message(tmp_path, capsys):
    with pytest.raises(ConfigError, match="offline.*hf download HuggingFaceTB/SmolLM2-360M"):
        locate_model("HuggingFaceTB/SmolLM2-360M", tmp_path)
    (tmp_path / "hub.yaml").write_text(GOOD.replace("smollm2-135m", "HuggingFaceTB/SmolLM2-360M"))
    write_jsonl(tmp_path / "train.jsonl", date_rows(4))
    assert main([str(tmp_path / "hub.yaml"), "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "model.name" in err and "offline" in err and "Traceback" not in err


def test_a_folder_without_safetensors_and_a_name_that_is_nothing_are_refused(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ConfigError, match="safetensors only"):
        locate_model("weights", tmp_path)
    with pytest.raises(ConfigError, match="not a course name"):
        locate_model("no such model", tmp_path)


def test_qlora_is_refused_where_the_4bit_kernels_fail(monkeypatch):
    import bitsandbytes.functional as bf
    import torch
    assert qlora_problem(torch.device("cpu")) is None                # they work on this CPU

    def broken(*args, **kwargs):
        raise RuntimeError("no 4-bit kernel for this device")
    monkeypatch.setattr(bf, "quantize_4bit", broken)
    assert "use lora" in qlora_problem(torch.device("cpu"))


@pytest.fixture(scope="module")
def smol_tok():
    from ftlib.products.registry import load_tokenizer
    return load_tokenizer("smollm2-135m")


def test_the_template_is_the_models_own_with_generation_markers(smol_tok):
    from ftlib.engine.sft_data import SMOLLM2_SYSTEM, chatml_template
    assert pick_template(smol_tok, "model") == chatml_template(SMOLLM2_SYSTEM)
    assert pick_template(smol_tok, "chatml") == chatml_template()
    saved = smol_tok.chat_template
    try:
        smol_tok.chat_template = None
        with pytest.raises(ConfigError, match="model.template: the tokenizer has no chat template"):
            pick_template(smol_tok, "model")
        smol_tok.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
        with pytest.raises(ConfigError, match="no {% generation %} markers"):
            pick_template(smol_tok, "model")
    finally:
        smol_tok.chat_template = saved


# ---------------------------------------------------------------------------------------------
# The data: every bad row by file:line:field, nothing dropped silently
# ---------------------------------------------------------------------------------------------
def check(tmp_path, smol_tok, yaml_text):
    cfg = resolve(parse(yaml_text), "smoke")
    return prepare_data(cfg, tmp_path, smol_tok, pick_template(smol_tok, "model"))


def test_the_planted_mistakes_are_each_reported_by_line_and_field(tmp_path, smol_tok):
    planted = write_learner_dataset(tmp_path, 60, 10, mistakes=True)
    assert [kind for _, kind, _ in planted] == list(MISTAKES)
    text = GOOD + "eval:\n  file: {path: test.jsonl, format: alpaca}\n"
    with pytest.raises(DataError) as err:
        check(tmp_path, smol_tok, text)
    found = {(p.line, p.kind): p for p in err.value.report.problems}
    assert set(found) == {(line, kind) for line, kind, _ in planted}
    for line, kind, field in planted:
        assert field is None or found[line, kind].field == field
        assert f"train.jsonl:{line}: " in str(err.value)
    assert "repeats line 4" in str(found[planted[4][0], "duplicate"].message)
    assert "test.jsonl:1" in found[planted[6][0], "leak"].message
    assert found[planted[5][0], "too_long"].field == "input"
    # with drop, the same rows are left out and counted; the rest are kept
    data = check(tmp_path, smol_tok, text.replace("format: alpaca}\n", "format: alpaca}\n  on_bad_rows: drop\n", 1))
    assert data.report.dropped == {kind: 1 for kind in MISTAKES}
    assert data.report.split["train"] + data.report.split["validation"] == 60        # the clean rows, the duplicated one once
    assert data.report.split["eval"] == 4
    assert set(data.report.to_dict()["problems_by_kind"]) == set(MISTAKES)


@pytest.mark.parametrize("fmt, row, field, kind", [
    ("messages", {"messages": [{"content": "hi"}, {"role": "assistant", "content": "yo"}]}, "messages[0].role",
     "missing_field"),
    ("messages", {"messages": [{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
     "messages[0].role", "unknown_role"),
    ("messages", {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]},
     "messages[1].content", "empty_answer"),
    ("messages", {"messages": [{"role": "user", "content": "hi"}]}, "messages[0].role", "missing_field"),
    ("sharegpt", {"conversations": [{"from": "bot", "value": "hi"}, {"from": "gpt", "value": "yo"}]},
     "conversations[0].from", "unknown_role"),
    ("sharegpt", {"conversations": [{"from": "human", "value": 3}, {"from": "gpt", "value": "yo"}]},
     "conversations[0].value", "wrong_type"),
    ("preference", {"prompt": "2+2?", "chosen": "4", "rejected": " 4 "}, "rejected", "same_pair"),
    ("preference", {"prompt": "2+2?", "chosen": "4"}, "rejected", "missing_field"),
    ("task", {"prompt": "2+2?", "answer": ""}, "answer", "empty_answer"),
    ("alpaca", ["instruction", "output"], "", "wrong_type"),
])
def test_each_format_names_the_bad_field(tmp_path, smol_tok, fmt, row, field, kind):
    good = {"messages": {"messages": [{"role": "user", "content": "Say yes."}, {"role": "assistant", "content": "yes"}]},
            "sharegpt": {"conversations": [{"from": "human", "value": "Say yes."}, {"from": "gpt", "value": "yes"}]},
            "preference": {"prompt": "Say yes.", "chosen": "yes", "rejected": "no"},
            "task": {"prompt": "Say yes.", "answer": "yes"},
            "alpaca": {"instruction": "Say yes.", "input": "", "output": "yes"}}[fmt]
    (tmp_path / "train.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    method = "dpo" if fmt == "preference" else "lora"
    text = GOOD.replace("alpaca", fmt).replace("{name: lora}", f"{{name: {method}}}")
    with pytest.raises(DataError) as err:
        check(tmp_path, smol_tok, text)
    [problem] = err.value.report.problems
    assert (problem.line, problem.field, problem.kind) == (2, field, kind)
    assert kind in KINDS and str(problem).startswith(f"train.jsonl:2: {field + ': ' if field else ''}")


def test_files_that_are_not_json_lines_are_config_errors_and_common_variants_are_read(tmp_path, smol_tok):
    rows = date_rows(6)
    write_jsonl(tmp_path / "train.jsonl", rows)
    text = GOOD + "eval: {file: {path: missing.jsonl, format: alpaca}}\n"
    for mode in ("error", "drop"):                    # a missing file is never a dropped row
        with pytest.raises(ConfigError, match="eval.file.path: missing.jsonl: no such file"):
            check(tmp_path, smol_tok, text.replace("format: alpaca}\n", f"format: alpaca}}\n  on_bad_rows: {mode}\n", 1))
    (tmp_path / "array.jsonl").write_text(json.dumps(rows))
    with pytest.raises(ConfigError, match="a JSON array, not JSON Lines"):
        check(tmp_path, smol_tok, GOOD.replace("train.jsonl", "array.jsonl"))
    (tmp_path / "latin1.jsonl").write_bytes(json.dumps(dict(rows[0], input="5 M\u00e4rz 2021"), ensure_ascii=False)
                                            .encode("latin-1") + b"\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        check(tmp_path, smol_tok, GOOD.replace("train.jsonl", "latin1.jsonl"))
    # a byte-order mark, blank lines, a null input, ShareGPT written with user/assistant: all read
    lines = [json.dumps(dict(r, input=None) if i == 0 else r) for i, r in enumerate(rows)]
    (tmp_path / "bom.jsonl").write_text("\ufeff" + "\n\n".join(lines) + "\n", encoding="utf-8")
    assert check(tmp_path, smol_tok, GOOD.replace("train.jsonl", "bom.jsonl")).report.problems == []
    chats = [{"conversations": [{"from": "user", "value": r["input"]}, {"from": "assistant", "value": r["output"]}]}
             for r in rows]
    write_jsonl(tmp_path / "chats.jsonl", chats)
    data = check(tmp_path, smol_tok, GOOD.replace("train.jsonl, format: alpaca", "chats.jsonl, format: sharegpt"))
    assert data.report.problems == [] and data.train[0].messages[0]["role"] == "user"


def test_products_that_are_not_full_models_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="is a LoRA adapter"):
        locate_model("smollm2-sft-lora", tmp_path)
    with pytest.raises(ConfigError, match="not a model"):
        locate_model("assistant-pairs", tmp_path)
    assert locate_model("course-sft", tmp_path) == ("course", "course-sft")


def test_a_run_refuses_to_overwrite_an_earlier_one(tmp_path):
    from ftlib.finetune import finetune
    (tmp_path / "runs" / "finetune").mkdir(parents=True)
    (tmp_path / "runs" / "finetune" / "results.json").write_text("{}")
    (tmp_path / "my.yaml").write_text(GOOD)
    with pytest.raises(ConfigError, match="output.dir: runs/finetune holds an earlier run"):
        finetune(tmp_path / "my.yaml", profile="smoke")
    assert (tmp_path / "runs" / "finetune" / "results.json").read_text() == "{}"
    (tmp_path / "here.yaml").write_text(GOOD + "output: {dir: ., overwrite: true}\n")
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(ConfigError, match="would delete the config's folder"):
        finetune(tmp_path / "here.yaml", profile="smoke")
    assert (tmp_path / "here.yaml").exists()
    # a run that stopped at the data check left only its report: the next run is not blocked by it
    from ftlib.finetune.run import check_output
    (tmp_path / "stopped").mkdir()
    (tmp_path / "stopped" / "data_report.json").write_text("{}")
    cfg = resolve(parse(GOOD), "smoke")
    check_output(cfg, tmp_path, tmp_path / "stopped", "my.yaml", resume=False)


# ---------------------------------------------------------------------------------------------
# Runs (smoke): each example config, and resuming
# ---------------------------------------------------------------------------------------------
RUN_FILES = ("config.resolved.yaml", "data_report.json", "log_history.json", "loss.png", "results.json", "report.md",
             "merged/model.safetensors", "merged/tokenizer.json")


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in CONFIGS if "flawed" not in p.name], ids=lambda p: p.stem)
def test_each_example_config_runs_in_smoke_and_writes_its_run_directory(path, tmp_path):
    from ftlib.finetune import finetune
    cfg = parse(path.read_text(), path)
    cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"dir": str(tmp_path / "run")})})
    result = finetune(cfg, profile="smoke", base=path.parent, progress=False, say=lambda *a: None)
    for name in RUN_FILES + (("adapter/adapter_config.json",) if cfg.method.name != "sft" else ()):
        assert (result.dir / name).is_file(), name
    if "gguf" in cfg.output.export:
        assert (result.dir / f"model-{cfg.output.gguf_format}.gguf").stat().st_size > 1e6
    results = json.loads((result.dir / "results.json").read_text())
    n = result.data["split"]["eval"]
    assert results["comparison"]["before"]["n"] == results["comparison"]["after"]["n"] == n > 0
    assert set(results["timings_s"]) >= {"train_s", "start_eval_s", "final_eval_s", "export_s"}
    assert [r["step"] for r in json.loads((result.dir / "log_history.json").read_text()) if "loss" in r] == [1, 2]
    assert result.serve_command.startswith("python -m ftlib.serving.server --model ")
    from ftlib.products.registry import load_model
    model, _ = load_model(str(result.dir / "merged"))                # what the server will load
    assert model.config.model_type == "llama"


def test_the_flawed_example_stops_with_its_report(capsys):
    [flawed] = [p for p in CONFIGS if "flawed" in p.name]
    assert main([str(flawed), "--check", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    for kind in ("not valid JSON", "'output' is missing", "should be a string", "is empty", "repeats line",
                 "tokens with the chat template", "held out at"):
        assert kind in err, kind


@pytest.mark.slow
def test_an_interrupted_run_resumes_from_its_checkpoint_with_the_same_losses(tmp_path):
    from ftlib.finetune import finetune
    from ftlib.finetune.train import Interrupted
    write_learner_dataset(tmp_path, 40, 8)
    text = GOOD + "train: {steps: 4, save_every: 2}\neval: {verifier: none, perplexity: false}\noutput: {dir: runs/%s}\n"
    run = lambda name, **kw: finetune(parse(text % name), profile="smoke", base=tmp_path, progress=False,  # noqa: E731
                                      say=lambda *a: None, **kw)
    run("whole")
    with pytest.raises(Interrupted):
        run("cut", stop_after=2)
    assert not (tmp_path / "runs" / "cut" / "results.json").exists()
    resumed = run("cut", resume=True)
    losses = lambda name: [r["loss"] for r in json.loads((tmp_path / "runs" / name / "log_history.json").read_text())  # noqa: E731
                           if "loss" in r]
    assert len(losses("whole")) == 4
    assert losses("cut") == pytest.approx(losses("whole"), abs=1e-6)
    assert json.loads((resumed.dir / "results.json").read_text())["resumed_from"] == 2
    with pytest.raises(ConfigError, match="no checkpoint"):
        run("never", resume=True)
    changed = parse((text % "cut").replace("steps: 4", "steps: 6"))
    with pytest.raises(ConfigError, match="train changed since its checkpoint"):
        finetune(changed, profile="smoke", base=tmp_path, progress=False, say=lambda *a: None, resume=True)
