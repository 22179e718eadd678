import json
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from ftlib.course.runner import chapters, main, parse_value, run, select
from ftlib.course.solutions import exercise_id

ROOT_NOTEBOOKS = chapters()


def _notebook(path, *sources):
    cells = [new_code_cell(s) for s in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_parse_value_and_select(tmp_path):
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"
    paths = [tmp_path / "00_a.ipynb", tmp_path / "03_lora.ipynb"]
    assert select(paths, ["03"]) == paths[1:] and select(paths, None) == paths
    with pytest.raises(SystemExit, match="no chapter 07"):
        select(paths, ["07"])


def test_runner_keeps_going_past_a_failure_and_reports(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "01_good.ipynb", "X = 1\nPROFILE = 'cpu'",
              "from ftlib.metrics.record import record\nrecord('good/x_times_ten', X * 10)")
    _notebook(nbs / "02_bad.ipynb", "PROFILE = 'cpu'", "y = 1", "1 / 0")
    _notebook(nbs / "03_after.ipynb", "PROFILE = 'cpu'", "print(PROFILE)")
    out = tmp_path / "out"
    code = main(["run", "--profile", "smoke", "--notebooks", str(nbs), "--out", str(out), "-p", "X", "4"])
    assert code == 1
    results = {r["chapter"]: r for r in json.loads((out / "report.json").read_text())}
    assert results["01_good"]["status"] == "ok" and results["01_good"]["figures"] == {"good/x_times_ten": 40}
    assert results["02_bad"]["status"] == "failed" and "ZeroDivisionError" in results["02_bad"]["error"]
    assert "In [4] `1 / 0`" in results["02_bad"]["error"]   # injected cell + 3 of its own
    assert results["03_after"]["status"] == "ok"                      # kept going
    assert results["01_good"]["peak_mb"] > 10                         # the kernel's memory was sampled
    report = (out / "report.md").read_text()
    assert "| 02_bad | failed: cell In [4] `1 / 0`: ZeroDivisionError" in report and "2/3 notebooks ran" in report
    executed = nbformat.read(out / "03_after.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0]["text"].strip() == "smoke"   # PROFILE was injected


@pytest.mark.skipif(not ROOT_NOTEBOOKS, reason="no chapters yet")
@pytest.mark.slow  # executes chapter 00 with papermill
def test_papermill_rerun_of_the_welcome_notebook_with_overrides(tmp_path):
    """00_welcome in smoke with SEED overridden, offline, under the network guard."""
    log = os.environ["FTLIB_NETGUARD_LOG"]
    before = open(log).read() if os.path.exists(log) else ""
    results = run("smoke", only=["00"], params={"SEED": 1}, out_dir=tmp_path)
    assert [r.status for r in results] == ["ok"], results[0].error
    executed = nbformat.read(tmp_path / "00_welcome.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "SEED = 1" in injected[0].source
    figures = results[0].figures
    assert figures["welcome/base_val_loss"] > 0 and figures["welcome/smollm2_tokens_per_s"] > 0
    assert (open(log).read() if os.path.exists(log) else "") == before, "the notebook tried the network"
    assert results[0].seconds < 120, "smoke must stay under 2 minutes a notebook"


def test_network_guard_blocks_and_logs_a_real_attempt(tmp_path):
    import subprocess
    import sys
    log = tmp_path / "net.log"
    code = ("import socket\ntry:\n    socket.create_connection(('203.0.113.7', 443), timeout=1)\n"
            "except OSError as e:\n    print('blocked' if 'blocked' in str(e) else 'other', e)\n")
    env = {**os.environ, "FTLIB_NETGUARD_LOG": str(log)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    assert out.startswith("blocked") and "203.0.113.7" in log.read_text()
    # a loopback connection attempt is allowed through (refused by the OS, not by the guard)
    code = ("import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
            "except OSError as e:\n    print('blocked' if 'blocked' in str(e) else 'os')\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    assert out.strip() == "os"


def test_committed_notebooks_carry_a_real_cpu_or_gpu_run():
    for path in ROOT_NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        meta = nb.metadata.get("ftcourse", {})
        assert meta.get("profile") in ("cpu", "gpu"), f"{path.name}: outputs are not from a cpu/gpu run"
        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        assert code_cells[0].metadata.get("tags") == ["parameters"], f"{path.name}: first code cell must be `parameters`"
        assert "PROFILE = os.environ.get(\"FTLIB_PROFILE\", \"cpu\")" in code_cells[0].source
        assert not any("injected-parameters" in c.metadata.get("tags", []) for c in code_cells)
        # every cell ran, except the exercises and their checkers, which learners get unexecuted
        assert all(c.execution_count for c in code_cells if not exercise_id(c)), f"{path.name}: a cell was not executed"
        assert not any(o.get("output_type") == "error" for c in code_cells for o in c.outputs)


def test_report_gathers_the_scoreboard_from_recorded_figures():
    from ftlib.course.runner import Result, report_table
    results = [Result("05_sft", "ok", 10.0, 100.0, "", {"sft/exact_match": 0.3}),
               Result("08_evaluation", "ok", 20.0, 100.0, "",
                      {"evaluation/scoreboard/course-sft/k": 28, "evaluation/scoreboard/course-sft/n": 30,
                       "evaluation/scoreboard/assistant-dpo/k": 3, "evaluation/scoreboard/assistant-dpo/n": 30,
                       "evaluation/scoreboard/broken/k": 3})]
    table = report_table(results, "cpu")
    assert "## Scoreboard" in table
    assert "| course-sft | 93% (28/30; 95% CI 79–98%) | 08_evaluation |" in table
    assert "| assistant-dpo | 10% (3/30;" in table and "broken" not in table.split("## Scoreboard")[1]
    assert "## Scoreboard" not in report_table(results[:1], "cpu")


def test_report_has_a_section_per_chapter_with_headline_figures_and_exercises():
    from ftlib.course.runner import HEADLINES, Result, report_table
    many = {f"03/deep/figure_{i:02d}": i for i in range(40)} | {"03/headline": 0.5}
    results = [Result("03_lora", "ok", 10.0, 100.0, "", many | {"exercises/03.delta_weight": True,
                                                                "exercises/03.trainable_count": False}),
               Result("04_qlora", "failed", 5.0, 50.0, "cell In [3] `x`: ValueError: no", {})]
    table = report_table(results, "cpu")
    assert "| 03_lora | ok | 10 | 100 | 1/2 |" in table and "| 04_qlora | failed: cell In [3]" in table
    section = table.split("## 03_lora")[1].split("## 04_qlora")[0]
    assert section.count("- `03/") == HEADLINES and "- `03/headline` = 0.5" in section
    assert f"{len(many) - HEADLINES} more figures in report.json" in section
    assert "exercises: 03.delta_weight ✓, 03.trainable_count ✗" in section
    assert "no figures recorded" in table.split("## 04_qlora")[1]
