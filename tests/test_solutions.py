"""The instructor notebooks (learner notebooks with solutions/ filled in) run in smoke, and every
checker accepts its solution there, in the notebook's real context. Wrong answers are rejected in
tests/test_exercises.py, so a checker that accepts anything fails one of the two."""
import nbformat
import pytest

from ftlib.course import run, write_solutions
from ftlib.solutions import exercise_id, load_solutions, release


def test_release_stubs_functions_and_values_and_drops_hidden_tests():
    source = ("def f(x):\n    ### BEGIN SOLUTION\n    y = 2 * x\n    return y\n    ### END SOLUTION\n"
              "### BEGIN SOLUTION\na, b = 1, 2\nc: int = 3\n### END SOLUTION\n"
              "### BEGIN HIDDEN TESTS\nassert f(2) == 4\n### END HIDDEN TESTS\nprint(a)")
    lines = release(source).splitlines()
    assert lines[:3] == ["def f(x):", "    # YOUR CODE HERE", "    raise NotImplementedError()"]
    assert "c = None  # YOUR CODE HERE" in lines and "assert f(2) == 4" not in lines and lines[-1] == "print(a)"
    with pytest.raises(ValueError, match="unclosed"):
        release("### BEGIN SOLUTION\nx = 1")


def test_instructor_notebooks_run_and_every_checker_accepts_its_solution(tmp_path):
    written = write_solutions(tmp_path / "instructor")
    assert written, "no chapter has exercises"
    results = run("smoke", out_dir=tmp_path / "out", notebooks_dir=tmp_path / "instructor")
    failed = [f"{r.chapter}: {r.error}" for r in results if r.status != "ok"]
    assert not failed, "\n".join(failed)
    for path in written:
        executed = nbformat.read(tmp_path / "out" / path.name, as_version=4)
        checkers = [c for c in executed.cells if "checker" in c.metadata.get("tags", [])]
        assert {exercise_id(c) for c in checkers} == set(load_solutions(path.stem))
        for cell in checkers:
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert f"✓ {exercise_id(cell)}" in text, f"{path.stem}: the checker rejected its own solution:\n{text}"
