"""Cohort labs end to end: a course directory, a release, a simulated cohort of submissions written by
this test (right, wrong, blank, broken and hostile ones), autograding in the sandbox, the export.

The lab is a small notebook made here from three of the course's real exercises and checkers, so
the whole flow runs in a few minutes; ``test_every_chapter_releases_without_its_solutions`` releases
the real chapters."""
import csv
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

from ftlib.course import cohort, grading
from ftlib.course.solutions import learner_source, nbgrader_metadata, release

LAB = "90_lab"
SOLUTIONS = {
    "01.repeated_line_ratio": "def my_ratio(text):\n    ### BEGIN SOLUTION\n"
                              "    lines = [line.strip() for line in text.splitlines() if line.strip()]\n"
                              "    return (len(lines) - len(set(lines))) / max(1, len(lines))\n    ### END SOLUTION",
    "02.bytes_per_token": "### BEGIN SOLUTION\nmy_bpt = len(text.encode('utf-8')) / len(ids)\n### END SOLUTION",
    "03.trainable_count": "### BEGIN SOLUTION\nmy_count = sum(r * (n_in + n_out) for n_out, n_in in shapes)\n"
                          "### END SOLUTION",
}
CHECKERS = {"01.repeated_line_ratio": "check('01.repeated_line_ratio', my_ratio);",
            "02.bytes_per_token": "check('02.bytes_per_token', my_bpt, text=text, ids=ids);",
            "03.trainable_count": "check('03.trainable_count', my_count, shapes=shapes, r=r);"}
WRITTEN = "**Why?** (2 points)\n\n### BEGIN SOLUTION\nRubric: one point per reason.\n### END SOLUTION"
A, B, C = SOLUTIONS                                      # the three exercises, in notebook order
RIGHT = {A: "def my_ratio(text):\n    lines = [l.strip() for l in text.splitlines() if l.strip()]\n"
            "    return (len(lines) - len(set(lines))) / max(1, len(lines))",
         B: "my_bpt = len(text.encode('utf-8')) / len(ids)",
         C: "my_count = sum(r * (i + o) for o, i in shapes)",
         "90.why": "**Why?** (2 points)\n\nBecause a low-rank update re-routes what the model already does."}
WRONG = {A: "def my_ratio(text):\n    lines = text.splitlines()\n    return (len(lines) - len(set(lines))) / max(1, len(lines))",
         B: "my_bpt = len(text) / len(ids)",                                       # characters, not bytes
         C: "my_count = sum(i * o for o, i in shapes)"}                            # the full matrices


def _lab(folder: Path) -> tuple[Path, Path]:
    """A learner notebook and its solutions file, as the course keeps them."""
    notebooks, solutions = folder / "notebooks", folder / "solutions"
    notebooks.mkdir(parents=True)
    solutions.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python (ftcourse)", "language": "python", "name": "ftcourse"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A lab"),
                nbformat.v4.new_code_cell("from ftlib.course.exercises import check\n"
                                          "text, ids = '猫 cat', [1, 2, 3]\nshapes, r = [(576, 576), (192, 576)] * 3, 4")]
    for name, source in SOLUTIONS.items():
        nb.cells += [nbformat.v4.new_code_cell(release(source), metadata={
                         "tags": ["exercise"], "nbgrader": nbgrader_metadata(name, False)}),
                     nbformat.v4.new_code_cell(CHECKERS[name], metadata={
                         "tags": ["checker"], "nbgrader": nbgrader_metadata(name, True)})]
    nb.cells.append(nbformat.v4.new_markdown_cell(learner_source("markdown", WRITTEN), metadata={
        "tags": ["exercise"], "nbgrader": nbgrader_metadata("90.why", False, points=2)}))
    nb.cells.append(nbformat.v4.new_code_cell("print('the end')"))
    nbformat.write(nb, notebooks / f"{LAB}.ipynb")
    (solutions / f"{LAB}.py").write_text("".join(f"# %% {n}\n{s}\n\n" for n, s in SOLUTIONS.items())
                                         + "# %% 90.why [markdown]\n" + "".join(f"# {line}\n" for line in WRITTEN.splitlines()))
    return notebooks, solutions


def _answer(nb, exercise: str, source: str) -> None:
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == exercise.replace(".", "-", 1):
            cell.source = source


def _cohort(released, solutions: Path, root: Path) -> tuple[dict, dict]:
    """The submissions (learner -> a notebook or raw files) and the points each must get."""
    def nb(answers: dict, edit=None):
        out = nbformat.from_dict(json.loads(json.dumps(released)))
        for exercise, source in answers.items():
            _answer(out, exercise, source)
        if edit:
            edit(out)
        return out

    def drop(exercise):
        gid = exercise.replace(".", "-", 1)
        return lambda out: setattr(out, "cells", [c for c in out.cells
                                                  if not c.metadata.get("nbgrader", {}).get("grade_id", "").startswith(gid)])

    def tamper(out):
        for cell in out.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == "02-bytes_per_token-check":
                cell.source = "print('looks fine to me')"

    def kernel(out):
        out.metadata["kernelspec"] = {"name": "python3", "display_name": "mine", "language": "python"}

    solutions_file = (solutions / f"{LAB}.py").resolve()
    subs, want = {}, {}

    def add(learner, submission, a, b, c):
        subs[learner], want[learner] = submission, (a, b, c)

    for i in range(6):
        add(f"right{i}", nb(RIGHT), 1, 1, 1)
    for i in range(4):
        add(f"blank{i}", nb({}), 0, 0, 0)
    for i, (x, y, z) in enumerate([(1, 0, 0), (0, 1, 1), (1, 1, 0), (0, 0, 1)]):
        add(f"partial{i}", nb({e: RIGHT[e] for e, keep in zip((A, B, C), (x, y, z)) if keep}), x, y, z)
    add("wrong", nb(WRONG), 0, 0, 0)
    add("wrong_bc", nb({A: RIGHT[A], B: WRONG[B], C: WRONG[C]}), 1, 0, 0)
    add("syntax", nb({**RIGHT, A: "def my_ratio(text)\n    return 0"}), 0, 1, 1)
    add("loops", nb({**RIGHT, A: "def my_ratio(text):\n    while True:\n        pass"}), 0, 1, 1)
    add("loops_top", nb({**RIGHT, B: "while True:\n    pass"}), 1, 0, 1)
    add("reads_solutions", nb({**RIGHT, B: f"my_bpt = len(open({str(solutions_file)!r}).read())"}), 1, 0, 1)
    add("writes_outside", nb({**RIGHT, A: f"open({str(root / 'pwned.txt')!r}, 'w').write('x')\n" + RIGHT[A]}), 0, 1, 1)
    add("tampered", nb({**RIGHT, B: WRONG[B]}, tamper), 1, 0, 1)
    add("deleted", nb(RIGHT, drop(A)), 0, 1, 1)
    add("library", nb({**RIGHT, A: "from ftlib.cores.cleaning import repeated_line_ratio\n"
                                   "def my_ratio(text):\n    return repeated_line_ratio(text)"}), 0, 1, 1)
    add("patches_checker", nb({**RIGHT, B: "import ftlib.course.exercises as ex\nex.check = lambda *a, **k: True\n"
                                         "my_bpt = 0", C: WRONG[C]}), 0, 0, 0)
    add("memory_hog", nb({**RIGHT, A: "hog = bytearray(64 << 30)\n" + RIGHT[A]}), 0, 1, 1)
    add("own_kernel", nb(RIGHT, kernel), 1, 1, 1)
    add("shell", nb({**RIGHT, C: f"import os\nos.system('cat {solutions_file}')\n" + RIGHT[C]}), 1, 1, 0)
    subs["notes_only"] = {"notes.txt": "I could not open Jupyter."}
    subs["not_json"] = {"lab.ipynb": "{ this is not a notebook"}
    return subs, want


def _inbox(subs: dict, inbox: Path) -> None:
    for learner, sub in subs.items():
        folder = inbox / learner
        folder.mkdir(parents=True)
        if isinstance(sub, nbformat.NotebookNode):
            nbformat.write(sub, folder / "my work.ipynb")
        else:
            for name, text in sub.items():
                (folder / name).write_text(text)


@pytest.mark.slow
def test_a_simulated_cohort_gets_exactly_the_points_it_earned(tmp_path, monkeypatch):
    notebooks, solutions = _lab(tmp_path / "repo")
    root = tmp_path / "course"
    monkeypatch.setenv("FTLIB_GRADING_TIMEOUT", "5")
    assert cohort.init(root, notebooks, solutions) == [LAB]
    released_dir = cohort.release(root, LAB, solutions, kit=False)
    released = nbformat.read(released_dir / f"{LAB}.ipynb", as_version=4)
    assert cohort.leaks(released_dir, solutions) == [] and (root / "outbound" / f"{LAB}.zip").exists()
    assert "YOUR CODE HERE" in released.cells[2].source and "my_bpt = None" in released.cells[4].source

    subs, want = _cohort(released, solutions, root)
    assert len(subs) >= 30
    _inbox(subs, tmp_path / "inbox")
    collected = cohort.collect(root, LAB, tmp_path / "inbox")
    assert set(collected) == set(subs)
    assert not collected["notes_only"]["gradable"] and "no notebook" in collected["notes_only"]["note"]

    results = grading.grade(root, LAB, solutions_dir=solutions)
    table, report = grading.export(root, LAB)
    rows = {r["learner"]: r for r in csv.DictReader(open(table))}
    assert set(rows) == set(subs)                                          # nobody is missing
    got = {learner: tuple(int(float(rows[learner][e])) for e in (A, B, C)) for learner in want}
    assert got == want
    assert rows["notes_only"]["status"].startswith("not graded") and rows["not_json"]["status"].startswith("not graded")
    assert rows["right0"]["90-why"] == "0.0" and "1 written answer(s) to grade by hand" in rows["right0"]["status"]
    assert "to grade by hand" not in rows["blank0"]["status"]                # an untouched answer is 0 at once
    assert "YOUR ANSWER HERE" in released.cells[-2].source and "Rubric" not in released.cells[-2].source
    assert not (root / "pwned.txt").exists()
    refused = {learner: {x["what"] for x in r.get("refused", [])} for learner, r in results.items()}
    assert "read" in refused["reads_solutions"] and "write" in refused["writes_outside"]
    assert "start a process:" in refused["shell"] and refused["right0"] == refused["blank0"] == set()
    errors = {learner: " ".join(r.get("errors", [])) for learner, r in results.items()}
    assert "CellTimeoutError" in errors["loops"] and "CellTimeoutError" in errors["loops_top"]
    assert "MemoryError" in errors["memory_hog"] and "SyntaxError" in errors["syntax"] and errors["right0"] == ""
    assert any("edited locked cell 02-bytes_per_token-check" in c for c in results["tampered"]["changes"])
    assert any("deleted cell 01-repeated_line_ratio" in c for c in results["deleted"]["changes"])
    assert "01.repeated_line_ratio" in results["library"]["zeroed"]
    text = report.read_text()
    for learner in ("notes_only", "not_json", "reads_solutions", "tampered", "library", "patches_checker"):
        assert f"| {learner} |" in text

    regraded = ["right0", "deleted", "library", "patches_checker", "notes_only"]
    again = grading.grade(root, LAB, only=regraded, solutions_dir=solutions)     # grading again changes nothing
    grading.export(root, LAB)
    assert {r["learner"]: r for r in csv.DictReader(open(table))} == rows
    assert again.keys() == results.keys()
    html = grading.feedback(root, LAB)
    assert len(html) == len(subs) - 2 and "my_ratio" in html[0].read_text()


def test_the_answer_scan_flags_reaching_for_the_grader_and_the_library_answer():
    given = "def my_ratio(text):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert grading.suspicious(RIGHT[A], A, given) == []
    assert grading.suspicious("import os\nx = os.environ['FTLIB_GRADING']", B) != []
    assert any("library's answer" in r for r in grading.suspicious(
        "from ftlib.cores.cleaning import repeated_line_ratio as f\ndef my_ratio(t):\n    return f(t)", A, given))
    assert grading.suspicious("def my_ratio(text):\n  return (", A, given) == []        # it fails when run instead
    # the lines the exercise itself gives are not the learner's
    assert grading.suspicious("from ftlib.course.exercises.ch05_instruction_tuning import leaky_split\nx = 1", "05.find_leak",
                              "from ftlib.course.exercises.ch05_instruction_tuning import leaky_split\nx = None") == []


def test_every_solution_passes_the_answer_scan_and_every_exercise_is_listed():
    from ftlib.course.exercises import CHECKS
    from ftlib.course.runner import chapters
    from ftlib.course.solutions import load_solutions
    assert set(grading.LIBRARY_ANSWERS) == set(CHECKS)
    for path in chapters():
        solutions = load_solutions(path.stem)
        for name in solutions.autograded():
            assert grading.suspicious(solutions[name], name, release(solutions[name])) == [], name


def test_the_sandbox_refuses_writes_outside_and_reads_of_denied_folders(tmp_path):
    import subprocess
    allowed, denied, log = tmp_path / "mine", tmp_path / "solutions", tmp_path / "log.jsonl"
    allowed.mkdir()
    denied.mkdir()
    (denied / "answer.py").write_text("42")
    code = f"""
from ftlib.course.sandbox import install
install([{str(allowed)!r}], [{str(denied)!r}], {str(log)!r}, memory_gb=4)
open({str(allowed / 'ok.txt')!r}, 'w').write('fine')
for attempt in (lambda: open({str(tmp_path / 'out.txt')!r}, 'w'), lambda: open({str(denied / 'answer.py')!r}).read()):
    try:
        attempt()
        print('allowed')
    except PermissionError:
        print('refused')
try:
    bytearray(8 << 30)
except MemoryError:
    print('memory capped')
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["refused", "refused", "memory", "capped"], done.stderr
    assert (allowed / "ok.txt").read_text() == "fine" and not (tmp_path / "out.txt").exists()
    assert [json.loads(line)["what"] for line in log.read_text().splitlines()] == ["write", "read"]


@pytest.mark.slow
def test_every_chapter_releases_without_its_solutions(tmp_path):
    """Every chapter's assignment through nbgrader's generate_assignment with the course's stubs:
    the released notebook is the learner notebook in notebooks/ (same stubs, every checker locked),
    and neither it nor the learner kit holds any solution's text."""
    from ftlib.course.runner import NOTEBOOKS_DIR
    root = tmp_path / "course"
    names = cohort.init(root)
    assert names == [p.stem for p in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))]
    for name in names:
        released = nbformat.read(cohort.release(root, name, kit=False) / f"{name}.ipynb", as_version=4)
        learner = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
        exercises = lambda nb: [c.source for c in nb.cells if "exercise" in c.metadata.get("tags", [])]   # noqa: E731
        assert exercises(released) == exercises(learner), name
        assert all(c.metadata["nbgrader"]["locked"] for c in released.cells if "checker" in c.metadata.get("tags", []))
    kit = cohort.learner_kit(tmp_path / "kit")
    assert not (kit / "solutions").exists() and not (kit / "tests").exists() and (kit / "ftlib").is_dir()
    assert cohort.leaks(root / "release") == [] and cohort.leaks(kit) == []
    # and the scan does find a solution where there is one
    (tmp_path / "planted").mkdir()
    (tmp_path / "planted" / "x.py").write_text(f"# copied\n{SOLUTIONS_FROM_REPO()}\n")
    assert cohort.leaks(tmp_path / "planted") != []


def SOLUTIONS_FROM_REPO() -> str:
    from ftlib.course.solutions import load_solutions
    return load_solutions("01_pretraining")["01.warmup_cosine"]


def test_nbgrader_accepts_every_chapter_s_cell_metadata():
    from nbgrader.nbgraderformat import MetadataValidator
    from ftlib.course.runner import chapters
    for path in chapters():
        MetadataValidator().validate_nb(nbformat.read(path, as_version=4))
