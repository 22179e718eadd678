"""Cohort labs with nbgrader: one course directory, one assignment per chapter, a gradebook.

    python -m ftlib.course cohort init     DIR              the course directory, from this repo
    python -m ftlib.course cohort release  DIR 01           the learner notebook and the learner kit
    python -m ftlib.course cohort collect  DIR 01 INBOX     every learner's files into submitted/
    python -m ftlib.course cohort grade    DIR 01           autograde each submission in the sandbox
    python -m ftlib.course cohort feedback DIR 01           nbgrader's feedback HTML per learner
    python -m ftlib.course cohort export   DIR 01           grades.csv and report.md

The course directory is nbgrader's own (``source/``, ``release/``, ``submitted/``, ``autograded/``,
``feedback/``, ``gradebook.db``); its ``nbgrader_config.py`` calls :func:`configure`, so nbgrader's
commands work there too. One convention for stubs: nbgrader's ``generate_assignment`` would put
``raise NotImplementedError()`` in place of every solution, which stops "Run all" at the first
exercise; :class:`CourseStubs` makes it write the course's own stubs
(:func:`ftlib.course.solutions.release`) instead, so the released notebook is the one in
``notebooks/``. Checkers raise only under the autograder (:data:`ftlib.course.exercises.GRADING_ENV`),
so a wrong answer costs its points there and nothing in a learner's "Run all".
"""
from __future__ import annotations

import copy
import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from ftlib.course.exercises import GRADING_ENV
from ftlib.course.runner import NOTEBOOKS_DIR, chapters
from ftlib.course.sandbox import DENY_ENV, LOG_ENV, MEMORY_ENV
from ftlib.course.solutions import SOLUTIONS_DIR, instructor_notebook, load_solutions

COURSE_ID = "ftcourse"
GRADER_KERNEL = "ftcourse-grader"
REPO = NOTEBOOKS_DIR.parent
KIT_EXCLUDE = ("solutions", "tests", "conftest.py", ".ci", ".wip", "runs")   # what learners never get
CONFIG = '''# The ftcourse course directory for nbgrader: every setting is ftlib.course.cohort.configure.
from ftlib.course.cohort import configure

configure(get_config(), root=__file__)
'''


def configure(c, root: str | Path) -> None:
    """nbgrader's settings for the course, on the config object ``c`` of ``nbgrader_config.py``."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearHiddenTests, ClearMarkScheme, ClearOutput,
                                        ComputeChecksums, IncludeHeaderFooter, InstantiateTests, LockCells,
                                        SaveCells)
    root = Path(root)
    c.CourseDirectory.root = str(root.parent if root.suffix == ".py" else root)
    c.CourseDirectory.course_id = COURSE_ID
    c.GenerateAssignment.preprocessors = [IncludeHeaderFooter, InstantiateTests, LockCells, _course_stubs(), ClearOutput,
                                          CheckCellMetadata, ComputeChecksums, SaveCells, ClearHiddenTests,
                                          ClearMarkScheme, ComputeChecksums, CheckCellMetadata]
    c.OverwriteCells.add_missing_cells = True          # a deleted checker comes back, and fails
    c.Execute.kernel_name = GRADER_KERNEL              # never the kernel a submission names
    c.Execute.timeout = int(os.environ.get("FTLIB_GRADING_TIMEOUT", "300"))   # seconds per cell
    c.Execute.interrupt_on_timeout = True


@functools.cache
def _course_stubs():
    from nbgrader.preprocessors import ClearSolutions

    from ftlib.course.solutions import release

    class CourseStubs(ClearSolutions):
        """``ClearSolutions`` with the course's stubs in code cells (``name = None``, or
        ``raise NotImplementedError()`` inside a function); markdown answers as nbgrader does."""

        def _replace_solution_region(self, cell, language):
            if cell.cell_type != "code":
                return super()._replace_solution_region(cell, language)
            stubbed = release(cell.source)
            replaced = stubbed != cell.source
            cell.source = stubbed
            return replaced

    return CourseStubs


def __getattr__(name):            # CourseStubs is built on first use: nbgrader loads only when grading
    if name == "CourseStubs":
        return _course_stubs()
    raise AttributeError(name)


# ---------------------------------------------------------------------------------------------
# init and release
# ---------------------------------------------------------------------------------------------
def assignments(notebooks_dir: Path = NOTEBOOKS_DIR, solutions_dir: Path = SOLUTIONS_DIR) -> list[str]:
    """The chapters that have exercises: one assignment each, named after the notebook."""
    return [p.stem for p in chapters(notebooks_dir) if load_solutions(p.stem, solutions_dir)]


def init(root: Path, notebooks_dir: Path = NOTEBOOKS_DIR, solutions_dir: Path = SOLUTIONS_DIR) -> list[str]:
    """Create (or refresh) the course directory: its config and one instructor notebook per chapter."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(CONFIG)
    names = assignments(notebooks_dir, solutions_dir)
    for name in names:
        nb = nbformat.read(Path(notebooks_dir) / f"{name}.ipynb", as_version=4)
        nb = instructor_notebook(nb, load_solutions(name, solutions_dir))
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        out = root / "source" / name / f"{name}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
    return names


def nbgrader(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run one nbgrader command in the course directory (its own process, this environment's nbgrader)."""
    bindir = str(Path(sys.executable).parent)
    full_env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""), **(env or {})}
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=full_env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed in {root}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done


def solution_texts(solutions_dir: Path = SOLUTIONS_DIR) -> dict[str, list[str]]:
    """``{exercise: [solution region, ...]}`` of every chapter, each region whitespace-normalised."""
    from ftlib.course.solutions import BEGIN, END
    out = {}
    for path in sorted(Path(solutions_dir).glob("[0-9][0-9]_*.py")):
        for name, source in load_solutions(path.stem, solutions_dir).items():
            regions, inside = [], None
            for line in source.splitlines():
                if line.strip() == BEGIN:
                    inside = []
                elif line.strip() == END and inside is not None:
                    regions.append(_normal("\n".join(inside)))
                    inside = None
                elif inside is not None:
                    inside.append(line)
            out[name] = [r for r in regions if r]
    return out


def _normal(text: str) -> str:
    return " ".join(text.split())


def leaks(folder: Path, solutions_dir: Path = SOLUTIONS_DIR) -> list[str]:
    """Every file under ``folder`` that holds a solution's text, as ``"path: exercise"`` ([] if none)."""
    texts = solution_texts(solutions_dir)
    found = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        try:
            body = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        flat = _normal(body.replace("\\n", "\n").replace('\\"', '"'))    # notebooks store JSON strings
        found += [f"{path.relative_to(folder)}: {name}" for name, regions in texts.items()
                  if any(r in flat for r in regions)]
    return found


def learner_kit(out: Path, repo: Path = REPO) -> Path:
    """The repository as learners get it: tracked files without solutions, tests or CI."""
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True).stdout.split()
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    for rel in tracked:
        if rel.split("/")[0] in KIT_EXCLUDE or not (repo / rel).is_file():
            continue
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, out / rel)
    return out


def release(root: Path, name: str, solutions_dir: Path = SOLUTIONS_DIR, kit: bool = True) -> Path:
    """Generate the learner version of assignment ``name`` with nbgrader, refuse it if a solution's
    text is in it, and zip it (with the learner kit) into ``outbound/``."""
    root = Path(root)
    nbgrader(root, "db", "assignment", "add", name)
    nbgrader(root, "generate_assignment", name, "--force")
    released = root / "release" / name
    outbound = root / "outbound"
    outbound.mkdir(exist_ok=True)
    folders = [released]
    if kit:
        folders.append(learner_kit(outbound / "ftcourse"))
    for folder in folders:
        found = leaks(folder, solutions_dir)
        if found:
            raise RuntimeError(f"{folder} holds solution text, not released: {found[:5]}")
    shutil.make_archive(str(outbound / name), "zip", released)
    if kit:
        shutil.make_archive(str(outbound / "ftcourse"), "zip", outbound / "ftcourse")
    return released


# ---------------------------------------------------------------------------------------------
# collect
# ---------------------------------------------------------------------------------------------
def collect(root: Path, name: str, inbox: Path) -> dict[str, dict]:
    """Copy each learner's files from ``inbox`` (a folder per learner, or one file ``<learner>.ipynb``)
    into ``submitted/<learner>/<name>/``; the notebook, whatever its file name, becomes
    ``<name>.ipynb``. Returns (and writes to ``reports/<name>/collected.json``) what was found for
    every learner, including those with no notebook to grade."""
    root, found = Path(root), {}
    for entry in sorted(Path(inbox).iterdir()):
        student = entry.stem if entry.is_file() else entry.name
        files = [entry] if entry.is_file() else sorted(p for p in entry.rglob("*") if p.is_file())
        notebooks = [p for p in files if p.suffix == ".ipynb" and ".ipynb_checkpoints" not in p.parts]
        dest = root / "submitted" / student / name
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        note, changes = "", []
        if len(notebooks) == 1:
            changes = _copy_submission(notebooks[0], dest, root / "release" / name / f"{name}.ipynb")
        else:
            note = (f"no notebook among {[p.name for p in files]}" if not notebooks else
                    f"{len(notebooks)} notebooks ({', '.join(p.name for p in notebooks)}); expected one")
        (dest / "timestamp.txt").write_text(_now())
        found[student] = {"files": [str(p.relative_to(inbox)) for p in files], "gradable": not note, "note": note,
                          "changes": changes}
    write_report(root, name, "collected.json", found)
    return found


def _copy_submission(path: Path, dest: Path, released_path: Path) -> list[str]:
    """Copy a learner's notebook to ``dest/<assignment>.ipynb`` with deleted graded cells restored
    (the learner's file is kept untouched in ``dest/original/``); return what was changed."""
    (dest / "original").mkdir()
    shutil.copy2(path, dest / "original" / path.name)
    try:
        submitted = nbformat.read(path, as_version=4)
    except Exception:                       # not a notebook: grading reports it, as it is
        shutil.copy2(path, dest / f"{dest.name}.ipynb")
        return []
    released = nbformat.read(released_path, as_version=4)
    changes = cell_changes(submitted, released)
    restore_missing(submitted, released)
    nbformat.write(submitted, dest / f"{dest.name}.ipynb")
    return changes


def cell_changes(submitted, released) -> list[str]:
    """Locked cells of the released notebook that the submission edited or deleted, and answer
    cells it deleted."""
    theirs = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in submitted.cells}
    changes = []
    for cell in released.cells:
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        if not gid:
            continue
        if gid not in theirs:
            changes.append(f"deleted cell {gid} (restored as released)")
        elif (meta.get("locked") or meta.get("grade")) and not meta.get("solution") \
                and theirs[gid].source.strip() != cell.source.strip():
            changes.append(f"edited locked cell {gid} (graded with the original)")
    return changes


def restore_missing(submitted, released) -> None:
    """Put back, where they were, the released notebook's graded and answer cells that a submission
    deleted: a deleted answer is graded as the stub, a deleted checker as the original."""
    def gid(cell):
        return cell.metadata.get("nbgrader", {}).get("grade_id")
    have = {gid(c) for c in submitted.cells} - {None}
    for i, cell in enumerate(released.cells):
        if not gid(cell) or gid(cell) in have:
            continue
        anchors = [gid(c) for c in released.cells[:i] if gid(c) in have]
        pos = 1 + max((k for k, c in enumerate(submitted.cells) if anchors and gid(c) == anchors[-1]), default=-1)
        submitted.cells.insert(pos, copy.deepcopy(cell))
        have.add(gid(cell))


def _now() -> str:
    from datetime import datetime, timezone
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def write_report(root: Path, name: str, file: str, data) -> Path:
    path = Path(root) / "reports" / name / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    return path


def read_report(root: Path, name: str, file: str):
    path = Path(root) / "reports" / name / file
    return json.loads(path.read_text()) if path.exists() else {}


def grader_env(root: Path, log: Path, tmp: Path, memory_gb: float, profile: str,
               solutions_dir: Path = SOLUTIONS_DIR) -> dict:
    """The environment of an autograde run: the grading switch, the sandbox's limits, the
    kernelspec ``ftcourse-grader`` (written into ``tmp``), and no network or hub."""
    spec = tmp / "jupyter" / "kernels" / GRADER_KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ftlib.course.sandbox", "-f", "{connection_file}"],
        "display_name": "ftcourse grader (sandboxed)", "language": "python"}))
    deny = [Path(solutions_dir), REPO / "tests", Path(root)]
    return {GRADING_ENV: "1", "FTLIB_PROFILE": profile, LOG_ENV: str(log), MEMORY_ENV: str(memory_gb),
            DENY_ENV: os.pathsep.join(str(p.resolve()) for p in deny),
            "JUPYTER_PATH": str(tmp / "jupyter"), "TMPDIR": str(tmp), "MPLCONFIGDIR": str(tmp / "mpl"),
            "FTLIB_RECORDS": str(tmp / "records.json"),
            "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONNOUSERSITE": "1"}
