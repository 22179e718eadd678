"""Grading a cohort's submissions: read each answer before running it, autograde it in the sandbox,
and export a grade table in which every learner and every exercise appears.

:func:`grade` runs nbgrader's ``autograde`` once per learner, each in its own temporary folder with
the sandbox kernel (:mod:`ftlib.course.sandbox`), and records per learner the seconds it took, the
sandbox's refusals, locked cells that were edited or deleted, and answer cells that reach for the
checkers or for the library function that is the answer (:func:`suspicious`). Such an answer gets 0
points in the gradebook (nbgrader's manual score, so the gradebook says so). :func:`export` writes
``grades.csv`` (learner x exercise points, total) and ``report.md`` (who was not graded and why, what
was flagged). Grading again gives the same table.
"""
from __future__ import annotations

import ast
import csv
import json
import tempfile
import time
from pathlib import Path

import nbformat

from ftlib.course.cohort import grader_env, nbgrader, read_report, write_report
from ftlib.course.solutions import SOLUTIONS_DIR, exercise_of

# The library functions (or methods) that compute an exercise's answer: calling one instead of
# writing the answer earns no points. Names a learner binds in the cell itself are theirs.
LIBRARY_ANSWERS: dict[str, tuple[str, ...]] = {
    "00.chat_prompt": ("apply_chat_template", "chat_prompt"),
    "01.warmup_cosine": ("lr_at",),
    "01.repeated_line_ratio": ("repeated_line_ratio",),
    "02.merge": (),
    "02.bytes_per_token": (),
    "03.delta_weight": ("merge_and_unload", "get_delta_weight", "delta_weight"),
    "03.trainable_count": ("lora_parameter_count", "lora_params", "count_trainable", "get_nb_trainable_parameters",
                           "print_trainable_parameters"),
    "04.quantize_block": ("quantize_blockwise", "quantize_4bit"),
    "04.bits_per_param": (),
    "04.qlora_weights_gb": ("training_memory",),
    "05.label_mask": ("encode_chat",),
    "05.sharegpt_to_messages": ("sharegpt_to_messages",),
    "05.find_leak": (),
    "06.gae": ("gae",),
    "06.kl_k3": ("kl_estimates",),
    "06.reward_hack": (),
    "07.dpo_loss": ("dpo_loss", "batch_dpo_loss"),
    "07.unmasked_prompt": (),
    "08.corpus_perplexity": ("perplexity", "token_nlls"),
    "08.kappa": ("kappa", "cohen_kappa_score"),
    "09.stream_text": (),
    "09.psi": ("psi", "compare_windows", "compare_feature"),
    "10.zero_bytes": ("zero_state_bytes", "zero_memory_gb", "zero_table"),
    "10.collectives": (),
    "11.leaked_lines": ("cross_checks", "prepare_data", "check", "read_file", "parse_row"),
    "11.from_llama_factory": (),
}
# What an answer cell never needs. Reaching for the checkers or the grader's settings can change how
# every later exercise is checked, so it costs every exercise its points; reaching outside the
# notebook (files, processes) costs the exercise whose cell does it.
_GRADER = {"check", "CHECKS", "NotPassed", "grading", "GRADING_ENV", "FTLIB_GRADING", "environ", "putenv",
           "modules", "__import__", "importlib", "builtins", "__builtins__", "setattr", "delattr", "globals",
           "exec", "eval", "compile", "get_ipython", "audithook", "ftlib.course"}
_OUTSIDE = {"open", "subprocess", "system", "popen"}
TAMPERING = "reaches for the grader"


def suspicious(source: str, exercise: str, given: str = "") -> list[str]:
    """Why an answer cell may not earn its points ([] when it may). Only what the learner wrote is
    read: lines that are also in ``given`` (the released cell) are the exercise's own. A cell that
    does not parse is not suspicious: running it fails, which costs the points anyway."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines, theirs = source.splitlines(), {line.strip() for line in given.splitlines()}
    mine = lambda node: lines[node.lineno - 1].strip() not in theirs          # noqa: E731
    bound = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    bound |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in n.args + n.kwonlyargs}
    nodes = [n for n in ast.walk(tree) if hasattr(n, "lineno") and mine(n)]
    used = {n.id for n in nodes if isinstance(n, ast.Name)} - bound
    used |= {n.attr for n in nodes if isinstance(n, ast.Attribute)}
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = getattr(node, "module", None) or ""
            used |= {a.name.split(".")[0] for a in node.names} | ({module.split(".")[0]} if module else set())
            if module.startswith("ftlib.course") or any(a.name.startswith("ftlib.course") for a in node.names):
                used.add("ftlib.course")
    reasons = [f"{TAMPERING}: uses {name}" for name in sorted(used & _GRADER)]
    reasons += [f"reaches outside the notebook: uses {name}" for name in sorted(used & _OUTSIDE)]
    answers = set(LIBRARY_ANSWERS.get(exercise, ()))
    reasons += [f"calls {name}, the library's answer to {exercise}" for name in sorted(used & answers)]
    return reasons


def _answers(nb) -> dict[str, str]:
    """``{exercise: source}`` of a notebook's answer cells (by nbgrader metadata, not by tags)."""
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            name = exercise_of(meta.get("grade_id", ""))
            if name:
                out[name] = cell.source
    return out


def grade(root: Path, name: str, *, only: list[str] | None = None, profile: str = "smoke", memory_gb: float = 6.0,
          solutions_dir: Path = SOLUTIONS_DIR) -> dict[str, dict]:
    """Autograde every submission of assignment ``name`` (or the learners in ``only``, keeping the
    others' earlier results); return (and write to ``reports/<name>/grading.json``) what happened
    to each learner."""
    root = Path(root)
    released = nbformat.read(root / "release" / name / f"{name}.ipynb", as_version=4)
    collected = read_report(root, name, "collected.json")
    students = sorted({p.name for p in (root / "submitted").iterdir() if (p / name).is_dir()} | set(collected))
    results = read_report(root, name, "grading.json") if only else {}
    for student in (s for s in students if not only or s in only):
        path = root / "submitted" / student / name / f"{name}.ipynb"
        if not path.exists():
            results[student] = {"graded": False, "reason": collected.get(student, {}).get("note") or "no notebook"}
            continue
        try:
            submitted = nbformat.read(path, as_version=4)
        except Exception as e:                                 # not JSON, not a notebook
            results[student] = {"graded": False, "reason": f"not a readable notebook: {type(e).__name__}: {e}"[:300]}
            continue
        given = _answers(released)
        flags = {ex: suspicious(src, ex, given.get(ex, "")) for ex, src in _answers(submitted).items()}
        if any(TAMPERING in why for whys in flags.values() for why in whys):
            flags = {ex: flags.get(ex) or [f"another answer cell {TAMPERING}"] for ex in given}
        result = {"graded": True, "changes": collected.get(student, {}).get("changes", []),
                  "zeroed": {ex: why for ex, why in flags.items() if why}}
        with tempfile.TemporaryDirectory(prefix="grader-") as logs, \
                tempfile.TemporaryDirectory(prefix=f"sandbox-{student}-") as tmp:
            log = Path(logs) / "sandbox.jsonl"
            env = grader_env(root, log, Path(tmp), memory_gb, profile, solutions_dir)
            t0 = time.perf_counter()
            try:
                nbgrader(root, "autograde", name, "--student", student, "--force", env=env)
            except RuntimeError as e:
                result.update(graded=False, reason=f"nbgrader could not grade it: {str(e)[-300:]}")
            result["seconds"] = round(time.perf_counter() - t0, 1)
            result["refused"] = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        if result["graded"]:
            _zero(root, name, student, result["zeroed"])
            result["errors"] = _errors(root / "autograded" / student / name / f"{name}.ipynb")
        results[student] = result
    write_report(root, name, "grading.json", results)
    return results


_NOTEWORTHY = ("CellTimeoutError", "MemoryError", "PermissionError", "SyntaxError", "RecursionError")


def _errors(autograded: Path) -> list[str]:
    """The errors worth an instructor's eye in a graded notebook (time-outs, memory, refusals, syntax)."""
    if not autograded.exists():
        return []
    nb = nbformat.read(autograded, as_version=4)
    return [f"cell {i}: {o.get('ename')}" for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error" and o.get("ename") in _NOTEWORTHY]


def _gradebook(root: Path):
    from nbgrader.api import Gradebook
    return Gradebook(f"sqlite:///{Path(root) / 'gradebook.db'}")


def _zero(root: Path, name: str, student: str, zeroed: dict[str, list[str]]) -> None:
    """Give 0 points, as nbgrader's manual score, to each exercise in ``zeroed``; clear earlier ones."""
    from ftlib.course.solutions import grade_id
    with _gradebook(root) as gb:
        notebook = gb.find_submission_notebook(name, name, student)
        for g in notebook.grades:
            exercise = exercise_of(g.name)
            if exercise in zeroed and g.name == grade_id(exercise, checker=True):
                g.manual_score, g.needs_manual_grade = 0.0, False
            elif exercise is not None and g.name.endswith("-check"):
                g.manual_score = None
        gb.db.commit()


def points(root: Path, name: str) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """``{learner: {exercise: points}}`` from the gradebook for every learner it graded, and
    ``{learner: written answers still to grade by hand}`` (they count 0 until then)."""
    from nbgrader.api import MissingEntry
    out, waiting = {}, {}
    with _gradebook(root) as gb:
        for student in gb.students:
            try:
                notebook = gb.find_submission_notebook(name, name, student.id)
            except MissingEntry:
                continue
            out[student.id] = {_label(g.name): float(g.score) for g in notebook.grades}
            waiting[student.id] = sum(bool(g.needs_manual_grade) for g in notebook.grades if not g.name.endswith("-check"))
    return out, waiting


def _label(gid: str) -> str:
    name = exercise_of(gid)
    return name if gid.endswith("-check") and name else gid


def export(root: Path, name: str) -> tuple[Path, Path]:
    """``reports/<name>/grades.csv`` (one row per learner collected or graded, one column per
    exercise, the total) and ``reports/<name>/report.md`` (what was not graded, flagged, refused)."""
    root = Path(root)
    (graded, waiting), grading = points(root, name), read_report(root, name, "grading.json")
    with _gradebook(root) as gb:
        nb = gb.find_notebook(name, name)
        columns = [_label(c.name) for c in sorted(nb.grade_cells, key=lambda c: c.name)]
        max_points = {_label(c.name): float(c.max_score) for c in nb.grade_cells}
    learners = sorted(set(graded) | set(grading) | set(read_report(root, name, "collected.json")))
    out = root / "reports" / name
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["learner", *columns, "total", "max", "status"])
        for learner in learners:
            row = graded.get(learner)
            status = "graded" if row is not None else f"not graded: {grading.get(learner, {}).get('reason', 'not collected')}"
            if waiting.get(learner):
                status += f"; {waiting[learner]} written answer(s) to grade by hand (nbgrader formgrader)"
            cells = [row.get(c, 0.0) if row else 0.0 for c in columns]
            w.writerow([learner, *cells, sum(cells), sum(max_points.values()), status])
    lines = [f"# {name}: grading report", "", f"{len(learners)} learners; {len(graded)} graded.", ""]
    seconds = [r["seconds"] for r in grading.values() if "seconds" in r]
    if seconds:
        lines += [f"Autograding took {min(seconds):.1f}-{max(seconds):.1f} s per submission "
                  f"(median {sorted(seconds)[len(seconds) // 2]:.1f} s).", ""]
    lines += ["| learner | status | flags |", "|---|---|---|"]
    for learner in learners:
        r = grading.get(learner, {})
        flags = r.get("changes", []) + [f"{ex}: 0 points, {'; '.join(why)}" for ex, why in r.get("zeroed", {}).items()]
        flags += [f"sandbox refused to {x['what']} {x['target']}" for x in r.get("refused", [])]
        flags += r.get("errors", [])
        status = "graded" if learner in graded else f"not graded: {r.get('reason', 'not collected')}"
        if flags or learner not in graded:
            lines.append(f"| {learner} | {status} | {'<br>'.join(flags) or ''} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return out / "grades.csv", out / "report.md"


def feedback(root: Path, name: str) -> list[Path]:
    """nbgrader's feedback HTML for every graded learner (``feedback/<learner>/<name>/``)."""
    nbgrader(Path(root), "generate_feedback", name, "--force")
    return sorted((Path(root) / "feedback").glob(f"*/{name}/*.html"))


def main(argv: list[str] | None = None) -> int:
    """``python -m ftlib.course cohort COMMAND DIR [ASSIGNMENT] ...`` (see :mod:`ftlib.course.cohort`)."""
    import argparse

    from ftlib.course import cohort
    parser = argparse.ArgumentParser(prog="python -m ftlib.course cohort",
                                     description="Cohort labs with nbgrader, from a course directory to a grade table.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the course directory from this repository").add_argument("dir", type=Path)
    for command, text in [("release", "generate the learner notebook and the learner kit"),
                          ("collect", "copy each learner's files from INBOX into submitted/"),
                          ("grade", "autograde every submission in the sandbox"),
                          ("feedback", "write nbgrader's feedback HTML per learner"),
                          ("export", "write reports/ASSIGNMENT/grades.csv and report.md")]:
        p = sub.add_parser(command, help=text)
        p.add_argument("dir", type=Path, help="the course directory")
        p.add_argument("assignment", help="a chapter number or notebook stem, e.g. 01 or 01_pretraining")
        if command == "collect":
            p.add_argument("inbox", type=Path, help="a folder per learner, or one <learner>.ipynb each")
        if command == "grade":
            p.add_argument("--only", nargs="+", metavar="LEARNER", help="grade these learners again")
            p.add_argument("--profile", default="smoke", help="the profile the notebooks run in (default smoke)")
            p.add_argument("--memory-gb", type=float, default=6.0, help="memory cap per kernel (default 6)")
    args = parser.parse_args(argv)
    if args.command == "init":
        print("assignments:", ", ".join(cohort.init(args.dir)))
        return 0
    names = cohort.assignments()
    name = next((n for n in names if args.assignment in (n, n[:2])), None)
    if name is None:
        parser.error(f"no assignment {args.assignment!r}; have {', '.join(names)}")
    if args.command == "release":
        print(cohort.release(args.dir, name))
    elif args.command == "collect":
        found = cohort.collect(args.dir, name, args.inbox)
        print(f"{len(found)} learners; not gradable: {[s for s, f in found.items() if not f['gradable']] or 'none'}")
    elif args.command == "grade":
        results = grade(args.dir, name, only=args.only, profile=args.profile, memory_gb=args.memory_gb)
        print(f"graded {sum(r['graded'] for r in results.values())} of {len(results)}")
    elif args.command == "feedback":
        print(f"{len(feedback(args.dir, name))} feedback files")
    else:
        print("\n".join(map(str, export(args.dir, name))))
    return 0
