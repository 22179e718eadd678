"""The course runner: execute chapters with papermill and write a report.

    python -m ftlib.course list
    python -m ftlib.course run [--profile P] [--only 03 05] [-p NAME VALUE ...] [--out DIR]
    python -m ftlib.course publish runs/cpu      (maintainers: commit a real run's outputs)
    python -m ftlib.course solutions [--out DIR] (instructors: the notebooks with their solutions)
    python -m ftlib.course cohort ...            (instructors: nbgrader labs, see ftlib.course.cohort)

Each chosen notebook runs, in order, into ``DIR/<chapter>.ipynb`` (default ``runs/<profile>``),
with its recorded figures in ``DIR/<chapter>.json``. A failed notebook does not stop the run;
the report names the cell that failed. The run ends with a report printed and written to
``DIR/report.md`` (chapter, status, seconds, peak memory, exercises passed; then each chapter's
headline figures) and ``DIR/report.json`` (every figure).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"


@dataclass
class Result:
    chapter: str                 # notebook stem, e.g. "00_welcome"
    status: str                  # ok | failed
    seconds: float               # wall time of the whole notebook
    peak_mb: float               # peak resident memory of the kernel process
    error: str = ""              # "cell In [7] `last line`: ValueError: ..." when failed
    figures: dict = field(default_factory=dict)  # what the notebook record()ed


def chapters(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks ``NN_topic.ipynb``, in order."""
    return sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))


def select(paths: list[Path], only: list[str] | None) -> list[Path]:
    """Keep notebooks whose number or stem is in ``only`` (``["03", "05_sft"]``); all if empty."""
    if not only:
        return paths
    chosen = [p for p in paths if p.stem[:2] in only or p.stem in only]
    unknown = [o for o in only if not any(p.stem[:2] == o or p.stem == o for p in paths)]
    if unknown:
        raise SystemExit(f"--only: no chapter {', '.join(unknown)}; have {', '.join(p.stem for p in paths)}")
    return chosen


def parse_value(text: str):
    """``-p`` values: JSON when it parses (numbers, true/false, lists), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class _KernelMemory:
    """Samples the summed RSS of this process's children (the Jupyter kernel) in a thread."""

    def __enter__(self):
        import psutil
        self.peak, self._stop, me = 0, threading.Event(), psutil.Process()

        def sample():
            while not self._stop.is_set():
                total = 0
                for child in me.children(recursive=True):
                    try:
                        total += child.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
                self._stop.wait(0.2)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_one(path: Path, out_dir: Path, parameters: dict, timeout: int | None = None) -> Result:
    """Execute one notebook with papermill; never raises for a notebook's own failure."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    out_nb, out_json = out_dir / path.name, out_dir / f"{path.stem}.json"
    out_json.unlink(missing_ok=True)
    os.environ["FTLIB_RECORDS"] = str(out_json.resolve())  # the kernel inherits it
    status, error, t0 = "ok", "", time.perf_counter()
    with _KernelMemory() as mem:
        try:
            # "python3" is Jupyter's native kernel: this very interpreter, so the runner's venv runs
            # the notebook whatever "Python (ftcourse)" kernel another clone may have registered.
            pm.execute_notebook(str(path), str(out_nb), parameters=parameters, cwd=str(path.parent),
                                kernel_name="python3", progress_bar=True, execution_timeout=timeout)
        except PapermillExecutionError as e:
            first_line = (e.source or "").strip().splitlines()[-1:] or [""]
            status, error = "failed", (f"cell In [{e.exec_count}] `{first_line[0][:60]}`: "
                                       f"{e.ename}: {str(e.evalue)[:200]}")
        except Exception as e:  # kernel died, timeout, bad notebook: report, keep going
            status, error = "failed", f"{type(e).__name__}: {str(e)[:200]}"
    figures = json.loads(out_json.read_text()) if out_json.exists() else {}
    return Result(path.stem, status, time.perf_counter() - t0, mem.peak / 2**20, error, figures)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


HEADLINES = 8          # figures per chapter in report.md; report.json holds them all


def report_table(results: list[Result], profile: str) -> str:
    """What ``report.md`` holds: one summary table, then a short section per chapter with its
    headline figures (the shallowest names it recorded, at most :data:`HEADLINES`) and its exercises,
    then the scoreboard. Every figure is in ``report.json``."""
    lines = [f"# Course run, profile `{profile}`", "",
             "| chapter | status | seconds | peak MB | exercises passed |", "|---|---|---:|---:|---:|"]
    for r in results:
        status = r.status if not r.error else f"{r.status}: {r.error}"
        done = _exercises(r)
        passed = f"{sum(done.values())}/{len(done)}" if done else ""
        lines.append(f"| {r.chapter} | {status.replace('|', '/')} | {r.seconds:.0f} | {r.peak_mb:.0f} | {passed} |")
    ok = sum(r.status == "ok" for r in results)
    lines += ["", f"{ok}/{len(results)} notebooks ran, {sum(r.seconds for r in results) / 60:.1f} min in all."]
    for r in results:
        figures = {k: v for k, v in r.figures.items() if not k.startswith("exercises/") and "/scoreboard/" not in k}
        shallow = sorted(figures, key=lambda k: (k.count("/"), k))[:HEADLINES]
        lines += ["", f"## {r.chapter}", ""]
        lines += [f"- `{k}` = {_fmt(figures[k])}" for k in shallow]
        if len(figures) > len(shallow):
            lines.append(f"- ... {len(figures) - len(shallow)} more figures in report.json")
        done = _exercises(r)
        if done:
            lines.append("- exercises: " + ", ".join(f"{name} {'✓' if ok else '✗'}" for name, ok in done.items()))
        if not figures and not done:
            lines.append("- no figures recorded")
    return "\n".join(lines + scoreboard_lines(results)) + "\n"


def _exercises(result: Result) -> dict[str, bool]:
    """``{exercise: passed}`` as the chapter's checkers recorded them (``exercises/<name>``)."""
    return {k.removeprefix("exercises/"): bool(v) for k, v in sorted(result.figures.items())
            if k.startswith("exercises/")}


def scoreboard_lines(results: list[Result]) -> list[str]:
    """The scoreboard: every accuracy a chapter recorded as ``<chapter>/scoreboard/<model>/k`` and
    ``.../n`` (chapter 08 records one per checkpoint), with its 95% Wilson interval."""
    import re

    from ftlib.cores.stats import Accuracy

    rows = []
    for r in results:
        for key, k in sorted(r.figures.items()):
            match = re.fullmatch(r"(.+)/scoreboard/(.+)/k", key)
            n = r.figures.get(key[:-1] + "n") if match else None
            if match and isinstance(k, int) and isinstance(n, int) and n > 0:
                rows.append(f"| {match.group(2)} | {Accuracy(k, n)} | {r.chapter} |")
    if not rows:
        return []
    return ["", "## Scoreboard", "", "Exact match on the same held-out items, with n and the 95% Wilson interval.", "",
            "| checkpoint | exact match | recorded by |", "|---|---|---|"] + rows


def run(profile: str, only: list[str] | None = None, params: dict | None = None,
        out_dir: Path | None = None, notebooks_dir: Path = NOTEBOOKS_DIR,
        timeout: int | None = None) -> list[Result]:
    """Run the chosen chapters; write ``report.md`` and ``report.json``; return the results."""
    from ftlib.engine.profiles import check_name

    check_name(profile)
    paths = select(chapters(notebooks_dir), only)
    out_dir = Path(out_dir or Path("runs") / profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    parameters = {"PROFILE": profile, **(params or {})}
    results = []
    for i, path in enumerate(paths, 1):
        print(f"[{i}/{len(paths)}] {path.stem} (profile {profile}) ...", flush=True)
        result = run_one(path, out_dir, parameters, timeout)
        print(f"[{i}/{len(paths)}] {path.stem}: {result.status} in {result.seconds:.0f} s, "
              f"peak {result.peak_mb:.0f} MB {result.error}", flush=True)
        results.append(result)
    table = report_table(results, profile)
    (out_dir / "report.md").write_text(table)
    (out_dir / "report.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    print("\n" + table + f"\nreport: {out_dir / 'report.md'}")
    return results


def _render_carriage_returns(text: str) -> str:
    """What a terminal shows: on each line, only the text after the last carriage return.

    >>> _render_carriage_returns("train  10%\\rtrain  50%\\rtrain 100%\\ndone\\n")
    'train 100%\\ndone\\n'
    """
    lines = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p]
        lines.append(parts[-1] if parts else "")
    return "\n".join(lines)


def tidy_outputs(nb) -> None:
    """Merge consecutive stream outputs of a cell and keep only the final state of progress bars.

    A text progress bar redraws itself with carriage returns; stored raw, one training loop
    leaves hundreds of outputs in the notebook. After tidying, a learner sees what Jupyter showed.
    """
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.outputs:
            if (out.get("output_type") == "stream" and merged
                    and merged[-1].get("output_type") == "stream" and merged[-1]["name"] == out["name"]):
                merged[-1]["text"] += out["text"]
            else:
                merged.append(out)
        for out in merged:
            if out.get("output_type") == "stream":
                out["text"] = _render_carriage_returns(out["text"])
        cell.outputs = merged


def publish(run_dir: Path, notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """Copy executed notebooks from ``run_dir`` back into ``notebooks/`` so learners see real outputs.

    The ``injected-parameters`` cell is dropped (the committed notebook keeps its own defaults and
    still runs in any profile); the run's profile and time are kept in the notebook metadata
    under ``ftcourse``. Only notebooks that ran without error are published.
    """
    import nbformat
    from ftlib.course.solutions import exercise_id

    report = {r["chapter"]: r for r in json.loads((Path(run_dir) / "report.json").read_text())}
    published = []
    for chapter, result in report.items():
        if result["status"] != "ok":
            print(f"skip {chapter}: {result['status']} {result['error']}")
            continue
        nb = nbformat.read(Path(run_dir) / f"{chapter}.ipynb", as_version=4)
        params = nb.metadata.get("papermill", {}).get("parameters", {})
        nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
        nb.metadata.pop("papermill", None)
        for cell in nb.cells:
            cell.metadata.pop("papermill", None)
            cell.metadata.pop("execution", None)
        tidy_outputs(nb)
        for cell in nb.cells:  # learners get exercises and their checkers unexecuted
            if exercise_id(cell):
                cell.outputs, cell.execution_count = [], None
        nb.metadata["ftcourse"] = {"profile": params.get("PROFILE"), "parameters": params,
                                   "seconds": round(result["seconds"], 1),
                                   "peak_mb": round(result["peak_mb"])}
        target = Path(notebooks_dir) / f"{chapter}.ipynb"
        nbformat.write(nb, target)
        published.append(target)
        print(f"published {target} (profile {params.get('PROFILE')}, {result['seconds']:.0f} s)")
    return published


def write_solutions(out_dir: Path, notebooks_dir: Path = NOTEBOOKS_DIR, sync: bool = False) -> list[Path]:
    """Write each chapter's instructor version (solutions in place, outputs cleared) into ``out_dir``.

    With ``sync``, first rewrite the learner notebooks' exercise cells from ``solutions/``.
    """
    import nbformat
    from ftlib.course.solutions import instructor_notebook, load_solutions, sync_learner_cells

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in chapters(notebooks_dir):
        solutions = load_solutions(path.stem)
        if not solutions:
            continue
        nb = nbformat.read(path, as_version=4)
        if sync and sync_learner_cells(nb, solutions):
            nbformat.write(nb, path)
            print(f"synced the exercise cells of {path.name} from solutions/{path.stem}.py")
        teacher = instructor_notebook(nb, solutions)
        for cell in teacher.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(teacher, out_dir / path.name)
        written.append(out_dir / path.name)
        print(f"wrote {out_dir / path.name} ({len(solutions)} solutions)")
    return written


def list_chapters(notebooks_dir: Path = NOTEBOOKS_DIR) -> str:
    """One line per chapter with its parameters and defaults."""
    import papermill as pm
    lines = []
    for path in chapters(notebooks_dir):
        params = pm.inspect_notebook(str(path))
        shown = ", ".join(f"{name}={p['default']}" for name, p in params.items())
        lines.append(f"{path.stem:<24} {shown}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ftlib.engine.profiles import default_profile

    parser = argparse.ArgumentParser(prog="python -m ftlib.course", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="show the chapters and their parameters")
    r = sub.add_parser("run", help="execute chapters with papermill and write a report")
    r.add_argument("--profile", default=None, help="smoke | cpu | gpu (default: $FTLIB_PROFILE or cpu)")
    r.add_argument("--only", nargs="+", metavar="NN", help="chapter numbers or stems, e.g. 03 05")
    r.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a notebook parameter (repeatable), e.g. -p SEED 1")
    r.add_argument("--out", type=Path, default=None, help="output folder (default runs/<profile>)")
    r.add_argument("--notebooks", type=Path, default=NOTEBOOKS_DIR, help="folder of NN_*.ipynb")
    r.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell")
    pub = sub.add_parser("publish", help="copy a run's executed notebooks into notebooks/ (maintainers)")
    pub.add_argument("run_dir", type=Path, help="e.g. runs/cpu")
    sol = sub.add_parser("solutions", help="write the instructor notebooks (solutions filled in)")
    sol.add_argument("--out", type=Path, default=Path("runs") / "solutions", help="default runs/solutions")
    sol.add_argument("--sync", action="store_true",
                     help="first rewrite the learner notebooks' exercise cells from solutions/ (maintainers)")
    args = parser.parse_args(argv)

    if args.command == "list":
        print(list_chapters())
        return 0
    if args.command == "publish":
        publish(args.run_dir)
        return 0
    if args.command == "solutions":
        write_solutions(args.out, sync=args.sync)
        return 0
    profile = args.profile or default_profile()
    params = {name: parse_value(value) for name, value in args.parameter}
    results = run(profile, args.only, params, args.out, args.notebooks, args.timeout)
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
