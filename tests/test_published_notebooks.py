"""What a learner reads in the committed notebooks must be trustworthy and clean.

- Markdown keeps to ideas and run-independent constants: a number with a result unit (%, MB, GB,
  s, min, ×) that is not on the notebook's allow-list below is a measured result written by hand,
  which goes stale on the next run. The cell that measures a result prints it.
- Outputs show no warnings, errors, absolute paths, stray return values or unfinished progress bars.
- Exercises: the learner cells are the stubbed solutions, unexecuted; every checker accepts its
  solution (run for real in test_solutions.py) and rejects a wrong answer (test_exercises*.py).
"""
import re
from pathlib import Path

import nbformat
import pytest

from ftlib.course.runner import chapters
from ftlib.course.exercises import CHECKS
from ftlib.course.solutions import exercise_id, load_solutions, sync_problems

NOTEBOOKS = chapters()

# Numbers with a result unit that are constants of the lesson, not results of a run.
CONSTANTS = {
    "00_welcome": set(),
    "01_pretraining": {"112 GB", "14 GB", "80 GB"},          # 7B x 16 bytes; ZeRO-3 on 8 GPUs; one GPU
    "02_tokenization": set(),
    "03_lora": {"95%"},                                     # the confidence level of every interval
    "04_qlora": {"95%",                                      # the confidence level of every interval
                 "10 ms",                                    # ftlib.engine.hardware.measure's sampling interval
                 "8×",                                       # 32-bit -> 4-bit weights, at most
                 "24 GB", "48 GB", "80 GB",                  # GPU card sizes
                 # the 7B table: training_memory arithmetic, identical on every run (NBVAL_CHECK_OUTPUT)
                 "108 GB", "13.5 GB", "14 GB", "3.9 GB", "3.6 GiB", "34 GB"},
    "05_instruction_tuning": {"95%",                        # the confidence level of every interval
                              "20%",                        # the replay share of the SFT recipe (SFT_RECIPES)
                              "50%"},                       # the threshold for "a family SmolLM2 fails"
    "06_rlhf": {"95%",                                      # the confidence level of every interval
                "90%", "80%"},                              # the reward model's targets (overall, wrong-answer pairs)
    "07_dpo": {"95%",                                       # the confidence level of every interval
               "90%",                                       # the target for held-out preference accuracy
               "5%"},                                       # the family-wise error rate Holm's adjustment keeps
    "08_evaluation": {"95%",                                # the confidence level of every interval
                      "100%",                               # the upper end of a proportion's range
                      "50%",                                # the win rate of two equal models
                      "80%", "5%"},                         # the power and level of the sample-size rule
    "09_deployment": {"95%"},                               # the confidence level of every interval
    "10_scaling_out": {"95%",                               # the confidence level of every interval
                       "80 GB"},                            # a GPU card's size
    "11_capstone": {"95%"},                                 # the confidence level of every interval
}

RESULT_NUMBER = re.compile(
    r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s?(%|MB|GB|MiB|GiB|KB|ms|s|min|minutes|seconds|×|x)(?![\w])")
ABS_PATH = re.compile(r"(?<![\w.~$])/(?:root|tmp|home|work|usr|opt|var|Users|private)/[\w./-]+|[A-Z]:\\\\Users")
WARNING = re.compile(r"\b\w*(Warning|Error|Traceback)\b")


def _text(output) -> str:
    if "text" in output:
        return "".join(output["text"])
    data = output.get("data", {})
    return "".join(data.get("text/plain", "")) + "".join(data.get("text/markdown", ""))


def _markdown_without_code(source: str) -> str:
    source = re.sub(r"```.*?```", "", source, flags=re.S)       # fenced code: shell commands etc.
    return re.sub(r"`[^`]*`", "", source)                      # inline code: names, not claims


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_states_no_measured_result(path):
    nb = nbformat.read(path, as_version=4)
    allowed = CONSTANTS.get(path.stem, set())
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        text = _markdown_without_code(cell.source)
        for m in RESULT_NUMBER.finditer(text):
            if f"{m.group(1)} {m.group(2)}" not in allowed and m.group(0) not in allowed:
                found.append(f"cell {i}: {m.group(0)!r} in …{text[max(0, m.start() - 50):m.end() + 20]!r}")
    assert not found, (f"{path.name}: markdown states numbers that a run measures; print them from the "
                       f"cell that measured them (or add a true constant to CONSTANTS):\n" + "\n".join(found))


def test_the_number_check_catches_a_stale_claim():
    claims = ["QLoRA saves 780 MB", "took 3.5 min", "under 1% of the weights", "2.3× faster", "in 20 s"]
    assert all(RESULT_NUMBER.search(c) for c in claims)
    assert not any(RESULT_NUMBER.search(c) for c in ["7B parameters", "16 levels", "4.127 bits", "r = 8",
                                                     "chapter 05", "SmolLM2-135M"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_clean(path):
    nb = nbformat.read(path, as_version=4)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            kind, text = out.get("output_type"), _text(out)
            if kind == "error":
                problems.append(f"cell {i}: error output {out.get('ename')}")
            if ABS_PATH.search(text):
                problems.append(f"cell {i}: absolute path {ABS_PATH.search(text).group(0)[:60]!r}")
            if out.get("name") == "stderr" and WARNING.search(text):
                problems.append(f"cell {i}: {WARNING.search(text).group(0)} on stderr")
            if kind == "execute_result" and re.fullmatch(r"-?\d+(\.\d+)?|True|False|None", text.strip()):
                problems.append(f"cell {i}: stray return value {text.strip()!r} (end the line with ';' "
                                "or do not return it)")
            if out.get("name") == "stderr" and re.search(r"\d+%\|", text) and not re.search(r"100%\|", text):
                problems.append(f"cell {i}: a progress bar that did not finish")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_the_hygiene_check_catches_dirty_outputs(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="/root/.venv/x.py: FutureWarning: old\n"),
                    nbformat.v4.new_output("execute_result", data={"text/plain": "927"}, execution_count=1),
                    nbformat.v4.new_output("stream", name="stderr", text="train:  40%|████  | 4/10\n")]
    nb.cells = [cell]
    path = tmp_path / "99_dirty.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(AssertionError) as err:
        test_outputs_are_clean(path)
    for what in ("absolute path", "FutureWarning", "stray return value", "did not finish"):
        assert what in str(err.value)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_learner_exercises_are_stubs_of_the_solutions_and_unexecuted(path):
    nb = nbformat.read(path, as_version=4)
    solutions = load_solutions(path.stem)
    assert solutions, f"{path.name}: no exercises in solutions/{path.stem}.py"
    assert not sync_problems(nb, solutions), "\n".join(sync_problems(nb, solutions))
    for name in solutions.autograded():
        assert name in CHECKS, f"solutions/{path.stem}.py: {name} has no checker in ftlib.course.exercises"
    checkers = {exercise_id(c) for c in nb.cells if "checker" in c.metadata.get("tags", [])}
    assert checkers == set(solutions.autograded()), f"{path.name}: exercises without a checker cell: {set(solutions) - checkers}"
    for name in solutions.written:          # graded by hand: a markdown answer cell worth points, no checker
        cell = next(c for c in nb.cells if exercise_id(c) == name)
        assert cell.cell_type == "markdown" and cell.metadata["nbgrader"]["points"] > 0, name
    for cell in nb.cells:  # no solution left in the open: no executed 'Solution' cells, no markers
        assert "BEGIN SOLUTION" not in cell.source, f"{path.name}: a solution region in the learner notebook"


def test_every_checker_belongs_to_an_exercise():
    used = {name for path in NOTEBOOKS for name in load_solutions(path.stem).autograded()}
    assert used == set(CHECKS), f"checkers without an exercise: {set(CHECKS) - used}; without a checker: {used - set(CHECKS)}"


def test_readme_cpu_times_are_the_committed_runs():
    """The README's chapter table states each notebook's cpu time: it must be the committed run's."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for path in NOTEBOOKS:
        meta = nbformat.read(path, as_version=4).metadata.get("ftcourse", {})
        row = next((line for line in readme.splitlines() if line.startswith(f"| {path.stem[:2]} | `{path.stem}`")), None)
        assert row, f"README.md: no chapter-table row for {path.stem}"
        cells = [c.strip() for c in row.strip("|").split("|")]
        cpu = re.match(r"([\d.]+) min", cells[4])
        assert cpu, f"README.md row {path.stem}: cpu column {cells[4]!r} is not 'N.N min'"
        if meta.get("profile") == "cpu":
            assert abs(float(cpu.group(1)) - meta["seconds"] / 60) <= 0.05, (
                f"README says {cells[4]} for {path.stem}; the committed cpu run took {meta['seconds'] / 60:.1f} min")


def test_readme_cohort_resources_are_the_committed_runs():
    """The instructor's resource table (README, "Cohort resources") states each chapter's cpu time and
    peak kernel memory: they must be the committed run's."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Cohort resources")[1].split("###")[0]
    for path in NOTEBOOKS:
        meta = nbformat.read(path, as_version=4).metadata.get("ftcourse", {})
        row = next((line for line in section.splitlines() if line.startswith(f"| {path.stem[:2]} | `{path.stem}`")), None)
        assert row, f"README.md, Cohort resources: no row for {path.stem}"
        minutes, gb = re.search(r"\| ([\d.]+) min \| ([\d.]+) GB \|", row).groups()
        assert abs(float(minutes) - meta["seconds"] / 60) <= 0.05, f"{path.stem}: {minutes} min vs the run's {meta['seconds']} s"
        assert abs(float(gb) - meta["peak_mb"] / 1024) <= 0.05, f"{path.stem}: {gb} GB vs the run's {meta['peak_mb']} MB"
