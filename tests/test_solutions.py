"""Each chapter executes once in smoke, and that one run checks both versions of it:

- the learner notebook top to bottom, where every exercise's checker must reject the stub without
  stopping the notebook, and the cells marked ``# NBVAL_CHECK_OUTPUT`` must print what the
  committed notebook shows (what ``pytest --nbval-lax`` compares);
- the instructor version: right after each stub's checker the notebook runs the solution and the
  checker again, which must accept it, in the notebook's real context.

Wrong answers are rejected in tests/test_exercises*.py, so a checker that accepts anything fails
one of the two."""
import ast

import nbformat
import pytest

from ftlib.course.runner import NOTEBOOKS_DIR, chapters, run
from ftlib.course.solutions import REPLAY, both_versions_notebook, exercise_id, load_solutions, release

CHAPTERS = [p.stem for p in chapters(NOTEBOOKS_DIR)]


def test_release_stubs_functions_and_values_and_drops_hidden_tests():
    source = ("def f(x):\n    ### BEGIN SOLUTION\n    y = 2 * x\n    return y\n    ### END SOLUTION\n"
              "### BEGIN SOLUTION\na, b = 1, 2\nc: int = 3\n### END SOLUTION\n"
              "### BEGIN HIDDEN TESTS\nassert f(2) == 4\n### END HIDDEN TESTS\nprint(a)")
    lines = release(source).splitlines()
    assert lines[:3] == ["def f(x):", "    # YOUR CODE HERE", "    raise NotImplementedError()"]
    assert "c = None  # YOUR CODE HERE" in lines and "assert f(2) == 4" not in lines and lines[-1] == "print(a)"
    with pytest.raises(ValueError, match="unclosed"):
        release("### BEGIN SOLUTION\nx = 1")


def test_both_versions_notebook_replays_each_exercise_with_its_solution_after_its_checker():
    nb = nbformat.v4.new_notebook()
    meta = lambda tag, grade_id: {"tags": [tag], "nbgrader": {"grade_id": grade_id}}   # noqa: E731
    nb.cells = [nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("answer = None  # YOUR CODE HERE", metadata=meta("exercise", "00-a")),
                nbformat.v4.new_code_cell("check('00.a', answer)", metadata=meta("checker", "00-a-check")),
                nbformat.v4.new_code_cell("print(answer)")]
    both = both_versions_notebook(nb, {"00.a": "answer = 42"})
    assert [c.source for c in both.cells] == ["x = 1", "answer = None  # YOUR CODE HERE", "check('00.a', answer)",
                                              "answer = 42", "check('00.a', answer)", "print(answer)"]
    assert [REPLAY in c.metadata.get("tags", []) for c in both.cells] == [False, False, False, True, True, False]
    assert len(nb.cells) == 4                                                # the learner notebook is unchanged


def _bound(source: str) -> set[str]:
    """The names a cell binds at its top level (functions, classes, assignments)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_cell_needs_what_an_exercise_defines(chapter):
    """The learner's notebook, stubs and all, runs top to bottom: apart from its checker, no later
    cell uses a name an exercise cell defines (the run in the test below has the solutions in place
    after each exercise, so it could not see such a dependency)."""
    exercise_names, leaks = set(), []
    for i, cell in enumerate(nbformat.read(NOTEBOOKS_DIR / f"{chapter}.ipynb", as_version=4).cells):
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or "checker" in tags:
            continue
        if "exercise" in tags:
            exercise_names |= _bound(cell.source)
            continue
        used = {n.id for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.Name)}
        leaks += [f"cell {i} uses {name}" for name in sorted(used & exercise_names)]
    assert not leaks, leaks


def _text(cell) -> str:
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", []))


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_chapter_runs_once_as_learner_and_as_instructor(chapter, tmp_path):
    learner = nbformat.read(NOTEBOOKS_DIR / f"{chapter}.ipynb", as_version=4)
    solutions = load_solutions(chapter)
    (tmp_path / "in").mkdir()
    nbformat.write(both_versions_notebook(learner, solutions), tmp_path / "in" / f"{chapter}.ipynb")
    [result] = run("smoke", out_dir=tmp_path / "out", notebooks_dir=tmp_path / "in")
    assert result.status == "ok", result.error
    executed = nbformat.read(tmp_path / "out" / f"{chapter}.ipynb", as_version=4)
    executed.cells = [c for c in executed.cells if "injected-parameters" not in c.metadata.get("tags", [])]

    checkers = [c for c in executed.cells if "checker" in c.metadata.get("tags", [])]
    stub_checks = [c for c in checkers if REPLAY not in c.metadata["tags"]]
    solution_checks = [c for c in checkers if REPLAY in c.metadata["tags"]]
    assert {exercise_id(c) for c in solution_checks} == set(solutions.autograded())
    for cell in stub_checks:
        assert f"✗ {exercise_id(cell)}" in _text(cell), f"the checker accepted the stub:\n{_text(cell)}"
    for cell in solution_checks:
        assert f"✓ {exercise_id(cell)}" in _text(cell), f"the checker rejected its own solution:\n{_text(cell)}"

    committed = {c.id: c for c in learner.cells}
    checked = [c for c in executed.cells if c.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" in c.source]
    for cell in checked:
        assert _text(cell) == _text(committed[cell.id]), f"cell {cell.id}: output differs from the committed one"
    assert len(checked) == sum("# NBVAL_CHECK_OUTPUT" in c.source for c in learner.cells)
