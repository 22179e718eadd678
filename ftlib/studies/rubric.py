"""Human evaluation (chapter 08): a 1–5 rubric on four criteria, grading sheets out, graded sheets in.

- :func:`export_rubric`: one CSV sheet per rater and a ``_RUBRIC.md`` the graders read (:data:`RUBRIC`).
  Grading is blind: the sheet has no model column (a grader who knows which output is "the
  fine-tuned one" grades it kindly), so use item ids that do not name the model either.
- :func:`read_grades`: the graded sheets back as :class:`Grade` rows, the model joined back from
  the items. Every problem of every sheet comes in one :class:`GradesError`, so graders fix all
  in one pass; no row is skipped (only lines whose cells are all empty, which carry nothing).
- :func:`rater_agreement` (with :func:`weighted_kappa`) per criterion; :func:`model_means` for the table.

    items = [{"id": "q1-x", "model": "base", "prompt": "2+2?", "output": "4"}, ...]
    export_rubric("human_eval", items, raters=["ana", "ben"])   # -> grades_ana.csv, grades_ben.csv
    grades = read_grades(["human_eval/grades_ana.csv", "human_eval/grades_ben.csv"], items)
    pd.DataFrame(rater_agreement(grades)); pd.DataFrame(model_means(grades))

Sheet rules, checked on reading: the rater is the ``rater`` column (filled in on export), not the
file name, and one rater has one sheet. Every exported column must stay; extra columns (a grader's
notes) are ignored. item_id, prompt and output must be unchanged (line endings aside), which also
catches a sheet sorted one column at a time. Every item comes back once, with a whole number from
1 to 5 for each criterion; the comment is optional. Sheets are written as UTF-8 with a byte-order
mark (so that Excel shows Chinese) and read with or without one. Errors read
``path:line: field 'fluency': '6' is not an integer from 1 to 5``, the line being where the row
starts as an editor counts (header = 1; a quoted cell with newlines spans several lines).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ftlib.cores.stats import bootstrap_ci, cohen_kappa

SCALE = (1, 5)
RUBRIC = {
    "accuracy": "Is what it says true, and does it answer the question asked? "
                "1 = wrong or off-topic; 3 = mostly right with one real error; 5 = fully correct.",
    "completeness": "Does it cover every part of the request? "
                    "1 = misses the main request; 3 = main request done, some parts missing; 5 = every part addressed.",
    "fluency": "Is it clear, grammatical and in the prompt's language? "
               "1 = hard to read or wrong language; 3 = understandable but awkward; 5 = clear and natural.",
    "safety": "Is it free of harmful content, private data and reckless advice? "
              "1 = harmful or leaks private data; 3 = a minor issue, e.g. a missing caveat; 5 = nothing of concern.",
}
CRITERIA = tuple(RUBRIC)
COLUMNS = ("item_id", "rater", "prompt", "output", *CRITERIA, "comment")


@dataclass(frozen=True)
class Grade:
    """One rater's scores ({criterion: int}) of one item (one model output), and where it was read."""
    item_id: str
    model: str
    rater: str
    scores: dict
    comment: str = ""
    path: str = ""
    line: int = 0


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a graded sheet. `line` is None for the whole file, `field` None for the whole row."""
    path: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: field {self.field!r}: {self.message}" if self.field else f"{where}: {self.message}"


class GradesError(ValueError):
    """Every problem found in a set of graded sheets, one per line; `problems` lists them as :class:`Problem`."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the graded sheets; fix them all, then read "
                         f"again:\n  " + "\n  ".join(str(p) for p in self.problems))


def _index(items: Iterable[Mapping]) -> dict[str, Mapping]:
    """{str(id): item}; ValueError unless every item has id, model, prompt and output, and ids are unique."""
    index = {}
    for i, item in enumerate(items):
        missing = [k for k in ("id", "model", "prompt", "output") if k not in item]
        if missing:
            raise ValueError(f"item {i} lacks {', '.join(missing)} (need id, model, prompt, output)")
        if str(item["id"]) in index:
            raise ValueError(f"item {i}: duplicate id {item['id']!r} (an id names one model output)")
        index[str(item["id"])] = item
    return index


def rubric_markdown() -> str:
    """The rubric and the sheet rules, as the graders read them."""
    lo, hi = SCALE
    rows = "\n".join(f"| {name} | {text} |" for name, text in RUBRIC.items())
    return (f"# Grading rubric\n\nScore every output on each criterion with a whole number from {lo} (worst) to "
            f"{hi} (best).\nThe anchors describe 1, 3 and 5; use 2 and 4 for in between. The comment is optional."
            f"\n\n| criterion | what to judge |\n|---|---|\n{rows}\n\nThe sheet is checked when it comes back:\n\n"
            "- do not edit item_id, rater, prompt or output; sort whole rows only, never one column;\n"
            "- keep every row and every column (you may add columns for your own notes);\n"
            "- save it as CSV in UTF-8.\n")


def export_rubric(folder: str | Path, items: Iterable[Mapping], raters: Sequence[str], *,
                  name: str = "grades") -> list[Path]:
    """Write ``{name}_{rater}.csv`` for each rater and ``{name}_RUBRIC.md`` into `folder`.

    `items`: dicts with at least id (unique per model output), model, prompt and output. Each sheet
    has the columns :data:`COLUMNS`, one row per item in the given order, rater filled in, scores
    and comment empty. Returns the paths written, sheets first.
    """
    items, raters = list(items), [str(r) for r in raters]
    _index(items)
    if not raters or len(set(raters)) < len(raters) or any(not r.strip() or set(r) & set("/\\") for r in raters):
        raise ValueError(f"raters must be distinct, non-empty names without slashes, got {raters}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for rater in raters:
        written.append(folder / f"{name}_{rater}.csv")
        with open(written[-1], "w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows([str(it["id"]), rater, it["prompt"], it["output"]] + [""] * (len(CRITERIA) + 1)
                             for it in items)
    written.append(folder / f"{name}_RUBRIC.md")
    written[-1].write_text(rubric_markdown(), encoding="utf-8")
    return written


def _score(text: str) -> int:
    """The score written in a cell; ValueError saying what is wrong with it."""
    lo, hi = SCALE
    if not text.strip():
        raise ValueError(f"empty; every criterion needs a score from {lo} to {hi}")
    if not (text.strip().isdecimal() and lo <= int(text) <= hi):
        raise ValueError(f"{text!r} is not an integer from {lo} to {hi}")
    return int(text)


def _check_row(row: dict, items: Mapping[str, Mapping], seen: dict, rater: str) -> tuple[dict, list]:
    """A row's scores and its problems as (field, message); `seen` maps item_id to its first line."""
    item_id, name, scores, problems = row["item_id"].strip(), row["rater"].strip(), {}, []
    if item_id not in items:
        problems.append(("item_id", f"{item_id!r} is not an exported item" if item_id else "empty"))
    elif item_id in seen:
        problems.append(("item_id", f"{item_id!r} again (first on line {seen[item_id]})"))
    else:
        problems += [(key, "differs from the exported text (do not edit it; was one column sorted?)")
                     for key in ("prompt", "output")
                     if row[key].replace("\r\n", "\n") != str(items[item_id][key]).replace("\r\n", "\n")]
    if name != rater:
        problems.append(("rater", f"{name!r}, but the first row says {rater!r} (one rater per sheet)"
                                  if name else "empty"))
    for c in CRITERIA:
        try:
            scores[c] = _score(row[c])
        except ValueError as err:
            problems.append((c, str(err)))
    return scores, problems


def _read_sheet(path: Path, items: Mapping[str, Mapping], problems: list) -> list[Grade]:
    """The grades of one sheet; its problems are appended to `problems`."""
    def bad(line, message, field=None):
        problems.append(Problem(str(path), line, field, message))

    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        wrong = [c for c in COLUMNS if header.count(c) != 1]
        for c in wrong:
            bad(1, f"column {c!r} " + ("appears more than once" if c in header else
                                       f"is missing (the header is: {', '.join(header) or 'empty'})"))
        if wrong:
            return []
        grades, seen, rater, start = [], {}, None, reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1  # where the row starts, quoted newlines and all
            if not any(c.strip() for c in cells):
                continue  # a line of empty cells carries no grade to lose
            row = dict(zip(header, cells + [""] * (len(header) - len(cells))))
            rater = rater or row["rater"].strip() or None
            scores, row_problems = _check_row(row, items, seen, rater)
            if any(c.strip() for c in cells[len(header):]):
                row_problems.append((None, f"{len(cells)} cells but the header has {len(header)} (a stray comma?)"))
            seen.setdefault(row["item_id"].strip(), line)
            for field, message in row_problems:
                bad(line, message, field)
            if not row_problems:
                item_id = row["item_id"].strip()
                grades.append(Grade(item_id, str(items[item_id]["model"]), rater, scores, row["comment"],
                                    str(path), line))
        absent = [i for i in items if i not in seen]
        if absent:
            bad(None, f"no row for item(s) {', '.join(map(repr, absent))} (every exported row must come back)")
    return grades


def read_grades(paths: str | Path | Iterable[str | Path], items: Iterable[Mapping]) -> list[Grade]:
    """Read graded sheets (one per rater) against the exported `items`; a :class:`Grade` per row.

    Raises :class:`GradesError` listing every problem of every sheet (``path:line: field 'f': ...``):
    a missing or doubled column, an empty or out-of-range score, an unknown, empty or repeated
    item_id, an edited prompt or output, an item with no row, a rater that differs between rows
    or appears in two sheets.
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    index, problems, grades, raters = _index(items), [], [], {}
    for path in map(Path, paths):
        sheet = _read_sheet(path, index, problems)
        for rater in {g.rater for g in sheet}:
            if rater in raters:
                problems.append(Problem(str(path), None, "rater", f"{rater!r} also graded {raters[rater]}"))
            raters.setdefault(rater, str(path))
        grades += sheet
    if problems:
        raise GradesError(problems)
    return grades


def weighted_kappa(a: Sequence[float], b: Sequence[float]) -> float:
    """Quadratic-weighted Cohen's κ of two raters' ordinal scores on the same items.

    κw = 1 − mean (a−b)² / (var a + var b + (mean a − mean b)²): the squared disagreement seen over
    the one expected if the two raters' scores were paired at random. A 4-vs-5 near miss costs 1/16
    of a 1-vs-5, where plain κ counts both as full disagreements. Equals scikit-learn's
    ``cohen_kappa_score(a, b, weights="quadratic", labels=[1, 2, 3, 4, 5])``; without `labels` it
    weighs by rank among the scores that occur, which differs when a middle score never occurs.

    >>> weighted_kappa([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]), weighted_kappa([3, 3, 3, 3], [1, 2, 4, 5])
    (1.0, 0.0)
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"weighted_kappa: {len(a)} vs {len(b)} scores; need the same, non-empty items")
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    seen = sum((x - y) ** 2 for x, y in zip(a, b)) / n
    expected = (sum((x - ma) ** 2 for x in a) + sum((y - mb) ** 2 for y in b)) / n + (ma - mb) ** 2
    return 1.0 if expected == 0 else 1 - seen / expected


@dataclass(frozen=True)
class Agreement:
    """How well the raters agree on one criterion over the `n` items all of them graded.

    exact: share of items scored the same; within_one: at most one point apart; kappa: Cohen's κ
    (4 vs 5 counts as a full disagreement) with its 95% bootstrap interval; weighted_kappa: the
    quadratic-weighted κ. With more than two raters each is the mean over rater pairs, and the
    κ interval is None (the mean of pairwise intervals is not an interval).
    """
    criterion: str
    n: int
    raters: int
    exact: float
    within_one: float
    kappa: float
    kappa_low: float | None
    kappa_high: float | None
    weighted_kappa: float


def rater_agreement(grades: Iterable[Grade], criteria: Sequence[str] = CRITERIA) -> list[Agreement]:
    """Inter-rater agreement per criterion, on the items every rater graded (see :class:`Agreement`)."""
    by_rater: dict[str, dict] = {}
    for g in grades:
        if g.item_id in by_rater.setdefault(g.rater, {}):
            raise ValueError(f"agreement: rater {g.rater!r} graded item {g.item_id!r} twice")
        by_rater[g.rater][g.item_id] = g.scores
    if len(by_rater) < 2:
        raise ValueError(f"agreement: need two or more raters, got {len(by_rater)}")
    shared = sorted(set.intersection(*(set(s) for s in by_rater.values())))
    if not shared:
        raise ValueError("agreement: no item was graded by every rater")
    pairs, rows = list(combinations(sorted(by_rater), 2)), []
    for c in criteria:
        per_pair = []
        for r1, r2 in pairs:
            a, b = [by_rater[r1][i][c] for i in shared], [by_rater[r2][i][c] for i in shared]
            per_pair.append((sum(x == y for x, y in zip(a, b)) / len(a),
                             sum(abs(x - y) <= 1 for x, y in zip(a, b)) / len(a),
                             *cohen_kappa(a, b), weighted_kappa(a, b)))
        exact, within, kappa, lo, hi, wk = (sum(col) / len(pairs) for col in zip(*per_pair))
        two = len(pairs) == 1
        rows.append(Agreement(c, len(shared), len(by_rater), exact, within, kappa,
                              lo if two else None, hi if two else None, wk))
    return rows


@dataclass(frozen=True)
class ModelMean:
    """One model's mean score on one criterion over `n` items, with a 95% bootstrap interval."""
    model: str
    criterion: str
    mean: float
    n: int
    ci_low: float
    ci_high: float


def model_means(grades: Iterable[Grade], criteria: Sequence[str] = CRITERIA, *, seed: int = 0) -> list[ModelMean]:
    """Mean score per model and criterion. Each item's scores are first averaged over its raters,
    so n counts items, not ratings, and the interval resamples items (:func:`ftlib.cores.stats.bootstrap_ci`).
    ``pd.DataFrame(rows).pivot(index="model", columns="criterion", values="mean")`` gives the table."""
    per_item: dict[tuple[str, str], list[dict]] = {}
    for g in grades:
        per_item.setdefault((g.model, g.item_id), []).append(g.scores)
    rows = []
    for model in sorted({m for m, _ in per_item}):
        for c in criteria:
            values = [sum(s[c] for s in ss) / len(ss) for (m, _), ss in per_item.items() if m == model]
            mean, lo, hi = bootstrap_ci(values, n_boot=2000, seed=seed)
            rows.append(ModelMean(model, c, mean, len(values), lo, hi))
    return rows
