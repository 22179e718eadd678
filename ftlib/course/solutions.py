"""Exercises the nbgrader way: one source with the solutions, learner notebooks with stubs.

The one source is ``solutions/NN_topic.py``: one block per exercise, each the whole answer cell
as the instructor sees it, the solution between nbgrader's markers::

    # %% 00.double
    def double(x):
        ### BEGIN SOLUTION
        return x + x
        ### END SOLUTION

An open question graded by hand is a block named ``# %% 03.format_vs_skill [markdown]``: its lines
are the markdown of the instructor's cell (each behind ``# ``), with the rubric between the markers;
learners get the cell with ``YOUR ANSWER HERE`` in its place, and nbgrader asks for a grade by hand.

In ``notebooks/NN_topic.ipynb`` (what learners open) that cell is tagged ``exercise`` and holds
:func:`release` of the block: the marked lines become ``raise NotImplementedError()`` inside a
function, or ``name = None`` at the top level, so "Run all" still runs to the end. The cell after
it, tagged ``checker``, calls :func:`ftlib.course.exercises.check`. Neither is executed in the committed
notebook. :func:`instructor_notebook` puts the solutions back (``python -m ftlib.course
solutions`` writes them all), with nbgrader's cell metadata, so ``nbgrader generate_assignment``
accepts it too. A test keeps the learner cells equal to ``release(source)``.
"""
from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

SOLUTIONS_DIR = Path(__file__).resolve().parents[2] / "solutions"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_BLOCK = re.compile(r"^# %% (\S+)((?: \[markdown\])?)[ \t]*\n", re.M)
MARKDOWN_STUB = "YOUR ANSWER HERE"        # nbgrader's stub for a written answer


class Solutions(dict):
    """``{exercise id: instructor cell source}``; ``written`` names the answers graded by hand."""

    def __init__(self, *args, written=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.written = set(written)

    def autograded(self) -> list[str]:
        """The exercises a checker grades (every one but the written answers)."""
        return [name for name in self if name not in self.written]


def load_solutions(chapter: str, solutions_dir: Path = SOLUTIONS_DIR) -> Solutions:
    """``{exercise id: instructor cell source}`` from ``solutions/<chapter>.py`` (empty if none)."""
    path = Path(solutions_dir) / f"{chapter}.py"
    if not path.exists():
        return Solutions()
    text = path.read_text()
    parts = _BLOCK.split(text)          # [preamble, id1, kind1, body1, id2, kind2, body2, ...]
    blocks = Solutions()
    for name, kind, body in zip(parts[1::3], parts[2::3], parts[3::3]):
        if name in blocks:
            raise ValueError(f"{path}: exercise {name} appears twice")
        body = body.strip("\n")
        if kind:            # a written answer, kept as comments: "# " starts each line of its markdown
            body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            blocks.written.add(name)
        if BEGIN not in body or END not in body:
            raise ValueError(f"{path}: exercise {name} has no '{BEGIN}' ... '{END}' region")
        blocks[name] = body
    return blocks


def learner_source(cell_type: str, source: str) -> str:
    """What a learner's cell holds for an instructor cell: :func:`release` for code; for a written
    answer, the text around the solution region with ``YOUR ANSWER HERE`` in its place."""
    if cell_type == "code":
        return release(source)
    out, inside = [], False
    for line in source.splitlines():
        if line.strip() == BEGIN:
            out.append(MARKDOWN_STUB)
            inside = True
        elif line.strip() == END:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _stub(region: list[str], indent: str) -> list[str]:
    """What a learner sees in place of a solution region."""
    if indent:
        return [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
    names = []
    for node in ast.parse(textwrap.dedent("\n".join(region))).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for t in targets:
            for leaf in (t.elts if isinstance(t, ast.Tuple) else [t]):
                if isinstance(leaf, ast.Name) and leaf.id not in names:
                    names.append(leaf.id)
    if not names:
        raise ValueError("a top-level solution region must assign the answer, e.g. `my_answer = ...`")
    return [f"{name} = None  # YOUR CODE HERE" for name in names]


def release(source: str) -> str:
    """The learner's version of an instructor cell: solutions stubbed, hidden tests removed.

    >>> print(release("def f(x):\\n    ### BEGIN SOLUTION\\n    return 2 * x\\n    ### END SOLUTION"))
    def f(x):
        # YOUR CODE HERE
        raise NotImplementedError()
    >>> print(release("### BEGIN SOLUTION\\nanswer = 4.127\\n### END SOLUTION\\ncheck('x', answer)"))
    answer = None  # YOUR CODE HERE
    check('x', answer)
    """
    out, region, mode, indent = [], [], None, ""
    for line in source.splitlines():
        marker = line.strip()
        if marker in (BEGIN, BEGIN_HIDDEN):
            mode, indent, region = marker, line[: len(line) - len(line.lstrip())], []
        elif marker == END and mode == BEGIN:
            out += _stub(region, indent)
            mode = None
        elif marker == END_HIDDEN and mode == BEGIN_HIDDEN:
            mode = None
        elif mode:
            region.append(line)
        else:
            out.append(line)
    if mode:
        raise ValueError(f"unclosed '{mode}' region in:\n{source}")
    return "\n".join(out)


def grade_id(name: str, checker: bool = False) -> str:
    """nbgrader's id for an exercise's cell: nbgrader allows only letters, digits, ``_`` and ``-``, so
    the chapter's dot becomes a dash (``"01.warmup_cosine"`` -> ``"01-warmup_cosine"``, its checker
    ``"01-warmup_cosine-check"``)."""
    chapter, _, rest = name.partition(".")
    if not (len(chapter) == 2 and chapter.isdigit() and rest and re.fullmatch(r"[A-Za-z0-9_]+", rest)):
        raise ValueError(f"an exercise is named NN.snake_case, like '01.warmup_cosine'; got {name!r}")
    return f"{chapter}-{rest}" + ("-check" if checker else "")


def exercise_id(cell) -> str | None:
    """The exercise id of a notebook cell tagged ``exercise`` or ``checker`` (from its nbgrader grade_id)."""
    tags = cell.get("metadata", {}).get("tags", [])
    if "exercise" not in tags and "checker" not in tags:
        return None
    return exercise_of(cell["metadata"].get("nbgrader", {}).get("grade_id", ""))


def exercise_of(gid: str) -> str | None:
    """The exercise an nbgrader grade id belongs to (``"01-warmup_cosine-check"`` -> ``"01.warmup_cosine"``)."""
    gid = gid.removesuffix("-check")
    return f"{gid[:2]}.{gid[3:]}" if len(gid) > 3 and gid[2] == "-" else None


def nbgrader_metadata(name: str, checker: bool, points: int | None = None) -> dict:
    """nbgrader's cell metadata for an answer cell (solution) or its checker (autograded test); an
    answer cell with ``points`` is graded by hand."""
    if points:
        return {"grade": True, "grade_id": grade_id(name), "locked": False, "points": points,
                "schema_version": 3, "solution": True, "task": False}
    if checker:
        return {"grade": True, "grade_id": grade_id(name, checker=True), "locked": True, "points": 1,
                "schema_version": 3, "solution": False, "task": False}
    return {"grade": False, "grade_id": grade_id(name), "locked": False, "schema_version": 3,
            "solution": True, "task": False}


def sync_problems(nb, solutions: dict[str, str]) -> list[str]:
    """Why a learner notebook and its solutions disagree ([] when they agree)."""
    problems, seen = [], []
    for i, cell in enumerate(nb.cells):
        name = exercise_id(cell)
        if name is None:
            continue
        kind = "checker" if "checker" in cell.metadata.get("tags", []) else "exercise"
        if cell.get("outputs") or cell.get("execution_count"):
            problems.append(f"cell {i} ({name} {kind}) is executed; the learner version must not be")
        if kind == "checker":
            if f"check({name!r}" not in cell.source and f'check("{name}"' not in cell.source:
                problems.append(f"cell {i}: the checker of {name} does not call check({name!r}, ...)")
            continue
        seen.append(name)
        if name not in solutions:
            problems.append(f"cell {i}: exercise {name} has no solution block")
        elif cell.source.strip() != learner_source(cell.cell_type, solutions[name]).strip():
            problems.append(f"cell {i}: exercise {name} differs from release(solution); "
                            "run `python -m ftlib.course solutions --sync`")
    for name in solutions:
        if name not in seen:
            problems.append(f"solution {name} has no exercise cell in the notebook")
    return problems


def sync_learner_cells(nb, solutions: dict[str, str]) -> int:
    """Rewrite the learner exercise cells from their solution blocks; return how many changed."""
    changed = 0
    for cell in nb.cells:
        name = exercise_id(cell)
        if name in solutions and "exercise" in cell.metadata.get("tags", []):
            stub = learner_source(cell.cell_type, solutions[name])
            if cell.source != stub:
                cell.source, changed = stub, changed + 1
    return changed


def instructor_notebook(nb, solutions: dict[str, str]):
    """A copy of the learner notebook with every exercise cell holding its solution."""
    import copy
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        name = exercise_id(cell)
        if name in solutions and "exercise" in cell.metadata.get("tags", []):
            cell.source = solutions[name]
    nb.metadata.setdefault("ftcourse", {})["version"] = "instructor"
    return nb


REPLAY = "solution-replay"            # the tag of the cells both_versions_notebook adds


def both_versions_notebook(nb, solutions: dict[str, str]):
    """The learner notebook in which each exercise is tried twice, so one execution checks both
    versions: the learner's stub and its checker (which must reject it without stopping the
    notebook), then the solution and the checker again (which must accept it). The copies carry the
    tag ``solution-replay``; every later cell runs with the solutions in place, as in the
    instructor notebook."""
    import copy
    out = copy.deepcopy(nb)
    cells, stubs = [], {}
    for cell in out.cells:
        cells.append(cell)
        name, tags = exercise_id(cell), cell.metadata.get("tags", [])
        if name in solutions and "exercise" in tags:
            stubs[name] = cell
        elif name in stubs and "checker" in tags:
            for original, source in ((stubs[name], solutions[name]), (cell, cell.source)):
                replay = copy.deepcopy(original)
                replay.source, replay.outputs, replay.execution_count = source, [], None
                replay.metadata["tags"] = [*replay.metadata.get("tags", []), REPLAY]
                if "id" in original:
                    replay.id = f"{original.id}-{REPLAY}"
                cells.append(replay)
    out.cells = cells
    out.metadata.setdefault("ftcourse", {})["version"] = "both"
    return out
