"""A learner's own dataset for the capstone (chapter 11): dates written many ways, to be put in ISO 8601.

A small, realistic fine-tuning job: a team keeps dates the way people type them ("the 5th of March
2021", "3/5/2021 (US style)", "2021年3月5日") and wants them as ``YYYY-MM-DD``. The answer is
checkable exactly, so chapter 11 can measure what the base assistant does and what a few hundred
examples teach it. Rows are Alpaca
(``instruction``, ``input``, ``output``), the format most learner datasets come in.

The train and test dates are disjoint (each date is used once, in one split), so the test measures
what was learned, not what was memorised. :func:`with_mistakes` plants the errors real datasets
have, at known lines, so the capstone's validation report can be checked against them.

>>> rows = date_rows(3, seed=0)
>>> rows[0]["instruction"]
'Write this date as YYYY-MM-DD.'
>>> [r["output"] for r in rows] == sorted(r["output"] for r in rows)
False
"""
from datetime import date, timedelta

from .jsonl import dumps_row, write_jsonl
from .world import rng_for

INSTRUCTION = "Write this date as YYYY-MM-DD."
MONTHS = ("January February March April May June July August September October November December").split()


def _ordinal(day):
    return f"{day}{'th' if 10 <= day % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


STYLES = {   # how people write a date; the month is named, or the order is fixed (US: month first; dots: day first)
    "day_month_year": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    "month_day_year": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    "ordinal": lambda d: f"the {_ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
    "short_month": lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    "us_slashes": lambda d: f"{d.month}/{d.day}/{d.year} (US style)",
    "eu_dots": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "weekday": lambda d: f"{d.strftime('%A')}, {MONTHS[d.month - 1]} {d.day}, {d.year}",
    "chinese": lambda d: f"{d.year}年{d.month}月{d.day}日",
}


def _dates(seed, n):
    """``n`` distinct dates between 1950 and 2049, in a seeded order."""
    rng = rng_for(seed, "capstone-dates")
    start, span = date(1950, 1, 1), (date(2049, 12, 31) - date(1950, 1, 1)).days
    picked = rng.sample(range(span + 1), n)
    return [start + timedelta(days=k) for k in picked]


def date_rows(n, seed=0, offset=0):
    """``n`` Alpaca rows; rows ``offset .. offset+n`` of one seeded stream of distinct dates, so two
    calls with disjoint ranges never share a date (train: offset 0, test: after the train rows)."""
    rng = rng_for(seed, f"capstone-styles-{offset}")
    rows = []
    for d in _dates(seed, offset + n)[offset:]:
        style = rng.choice(sorted(STYLES))
        rows.append({"instruction": INSTRUCTION, "input": STYLES[style](d), "output": d.isoformat()})
    return rows


# Each planted mistake: (kind, the field the report must name, what it does to a row)
MISTAKES = ("invalid_json", "missing_field", "wrong_type", "empty_answer", "duplicate", "too_long", "leak")


def with_mistakes(train, test, seed=0):
    """The train rows as a learner's file might really hold them: JSONL lines (strings), with one row
    of each kind in :data:`MISTAKES` planted, and the list of ``(line, kind, field)`` planted (1-based
    lines). The clean rows keep their order."""
    rng = rng_for(seed, "capstone-mistakes")
    lines = [dumps_row(r) for r in train]
    long_input = " ".join(["Please note that the meeting was moved again, and"] * 60) + " 4 July 1999"
    bad = {
        "invalid_json": ('{"instruction": "' + INSTRUCTION + '", "input": "1 May 2001", "output": "2001-05-01",}', None),
        "missing_field": (dumps_row({"instruction": INSTRUCTION, "input": "2 June 2002"}), "output"),
        "wrong_type": (dumps_row({"instruction": INSTRUCTION, "input": 20030703, "output": "2003-07-03"}), "input"),
        "empty_answer": (dumps_row({"instruction": INSTRUCTION, "input": "9 August 2004", "output": "  "}), "output"),
        "duplicate": (lines[3], None),
        "too_long": (dumps_row({"instruction": INSTRUCTION, "input": long_input, "output": "1999-07-04"}), None),
        "leak": (dumps_row(test[0]), None),
    }
    slots = sorted(rng.sample(range(10, len(lines)), len(MISTAKES)))
    planted = []
    for shift, (slot, kind) in enumerate(zip(slots, MISTAKES)):
        text, field = bad[kind]
        lines.insert(slot + shift, text)
        planted.append((slot + shift + 1, kind, field))
    return lines, planted


def write_learner_dataset(folder, n_train, n_test, seed=0, mistakes=False):
    """Write ``train.jsonl`` and ``test.jsonl`` (Alpaca) into ``folder``; with ``mistakes`` the train
    file carries :func:`with_mistakes`'s planted rows. Returns the planted ``(line, kind, field)``."""
    from pathlib import Path
    folder = Path(folder)
    train, test = date_rows(n_train, seed), date_rows(n_test, seed, offset=n_train)
    write_jsonl(folder / "test.jsonl", test)
    if not mistakes:
        write_jsonl(folder / "train.jsonl", train)
        return []
    lines, planted = with_mistakes(train, test, seed)
    (folder / "train.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")
    return planted
