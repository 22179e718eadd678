"""Tests for ftlib.studies.rubric: sheets round-trip exactly, every bad row is reported where an editor shows it, κ is right."""
import csv
import doctest
import random

import pytest
from sklearn.metrics import cohen_kappa_score

from ftlib.studies import rubric
from ftlib.studies.rubric import (COLUMNS, CRITERIA, RUBRIC, SCALE, Grade, GradesError, rater_agreement,
                                  export_rubric, model_means, read_grades, rubric_markdown, weighted_kappa)

TRICKY = 'Say "hi", then list: a, b\nand c;\r\nthen 翻译“猫”为英文, 谢谢'
ITEMS = [
    {"id": "q1", "model": "base", "prompt": TRICKY, "output": 'He said "yes, no"\n\nok'},
    {"id": "q2", "model": "sft", "prompt": "line one\nline two\nline three", "output": "猫, 狗"},
    {"id": "q3", "model": "base", "prompt": "plain", "output": ""},
    {"id": "q4", "model": "sft", "prompt": "x", "output": "y"},
    {"id": "q5", "model": "base", "prompt": "p5", "output": "o5"},
]


def _rows(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def _grade(path, scores):
    """Fill a sheet in as a grader would: scores[item_id] = four scores, written back with csv."""
    rows = _rows(path)
    for row in rows[1:]:
        row[4:8] = [str(s) for s in scores[row[0]]]
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def _sheet(tmp_path, lines, name="grades_bob.csv"):
    """A hand-written sheet, so that every physical line is known."""
    path = tmp_path / name
    path.write_text(",".join(COLUMNS) + "\n" + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_doctests_and_rubric_shape():
    assert doctest.testmod(rubric).failed == 0
    assert CRITERIA == ("accuracy", "completeness", "fluency", "safety") and SCALE == (1, 5)
    assert all("\n" not in text and "1 =" in text and "5 =" in text for text in RUBRIC.values())
    assert all(name in rubric_markdown() for name in RUBRIC)


def test_export_round_trips_commas_quotes_newlines_and_chinese_exactly(tmp_path):
    paths = export_rubric(tmp_path, ITEMS, raters=["ana", "bob"])
    assert [p.name for p in paths] == ["grades_ana.csv", "grades_bob.csv", "grades_RUBRIC.md"]
    assert paths[2].read_text(encoding="utf-8") == rubric_markdown()
    rows = _rows(paths[1])
    assert rows[0] == list(COLUMNS) and "model" not in rows[0]  # blind: graders do not see the model
    assert [r[:4] for r in rows[1:]] == [[it["id"], "bob", it["prompt"], it["output"]] for it in ITEMS]
    assert all(r[4:] == [""] * 5 for r in rows[1:])
    _grade(paths[1], {it["id"]: (5, 4, 3, 2) for it in ITEMS})
    grades = read_grades(paths[1], ITEMS)
    assert [(g.item_id, g.model, g.rater, g.line) for g in grades] == [
        ("q1", "base", "bob", 2), ("q2", "sft", "bob", 7), ("q3", "base", "bob", 10), ("q4", "sft", "bob", 11),
        ("q5", "base", "bob", 12)]  # q1 spans lines 2-6 (two line breaks in the prompt, two in the output)
    assert grades[0].scores == {"accuracy": 5, "completeness": 4, "fluency": 3, "safety": 2}


def test_export_refuses_bad_items_and_raters(tmp_path):
    with pytest.raises(ValueError, match="duplicate id 'q1'"):
        export_rubric(tmp_path, ITEMS + [dict(ITEMS[0])], raters=["ana"])
    with pytest.raises(ValueError, match="lacks model"):
        export_rubric(tmp_path, [{"id": 1, "prompt": "p", "output": "o"}], raters=["ana"])
    with pytest.raises(ValueError, match="distinct"):
        export_rubric(tmp_path, ITEMS, raters=["ana", "ana"])


def test_every_bad_row_is_reported_in_one_error_at_the_line_an_editor_shows(tmp_path):
    path = _sheet(tmp_path, [
        'q1,bob,p,o,5,5,5,5,',                                   # line 2: q1 prompt/output edited
        'q2,bob,"line one\nline two\nline three","猫, 狗",4,4,4,4,ok',  # lines 3-5: fine
        'q3,bob,plain,,3,3,6,3,',                                # line 6: right after the multi-line cell
        'q4,bob,x,y,3,3,3,,',                                    # line 7: empty safety
        'q2,bob,"line one\nline two\nline three","猫, 狗",2,2,2,2,',  # lines 8-10: duplicate
        'q9,bob,x,y,4.5,x,0,3,',                                 # line 11: unknown id, three bad scores
        'q5,alice,p5,o5,1,1,1,1,',                               # line 12: another rater
    ])
    with pytest.raises(GradesError) as err:
        read_grades([path], ITEMS)
    got = {(p.line, p.field) for p in err.value.problems}
    assert got == {(2, "prompt"), (2, "output"), (6, "fluency"), (7, "safety"), (8, "item_id"), (11, "item_id"),
                   (11, "accuracy"), (11, "completeness"), (11, "fluency"), (12, "rater")}
    message = str(err.value)
    assert message.startswith("10 problem(s)")
    for fragment in [f"{path}:6: field 'fluency': '6' is not an integer from 1 to 5",
                     f"{path}:7: field 'safety': empty; every criterion needs a score from 1 to 5",
                     f"{path}:8: field 'item_id': 'q2' again (first on line 3)",
                     f"{path}:11: field 'item_id': 'q9' is not an exported item",
                     f"{path}:11: field 'accuracy': '4.5' is not an integer from 1 to 5",
                     f"{path}:12: field 'rater': 'alice', but the first row says 'bob'",
                     f"{path}:2: field 'output': differs from the exported text"]:
        assert fragment in message
    assert all(p.path == str(path) for p in err.value.problems)


def test_missing_column_names_the_file_and_column(tmp_path):
    path = tmp_path / "grades_ana.csv"
    path.write_text("item_id,rater,prompt,output,accuracy,completeness,fluency,comment\nq1,ana,p,o,1,1,1,\n",
                    encoding="utf-8")
    with pytest.raises(GradesError, match=f"{path}:1: column 'safety' is missing"):
        read_grades(path, ITEMS)


def test_problems_of_all_sheets_come_in_one_error_and_a_rater_grades_once(tmp_path):
    paths = export_rubric(tmp_path, ITEMS, raters=["ana", "bob"])[:2]
    _grade(paths[0], {it["id"]: (1, 2, 3, 4) for it in ITEMS})
    copy = tmp_path / "grades_ana_copy.csv"
    copy.write_bytes(paths[0].read_bytes())
    with pytest.raises(GradesError) as err:
        read_grades([paths[0], paths[1], copy], ITEMS)  # bob's sheet is still blank
    problems = err.value.problems
    assert sum(p.path == str(paths[1]) for p in problems) == 4 * len(ITEMS)
    assert any(p.path == str(copy) and p.field == "rater" and "also graded" in p.message for p in problems)


def test_nothing_is_silently_skipped(tmp_path):
    """A deleted row, a stray cell or one bad row among good ones must fail, never shrink the result."""
    path = export_rubric(tmp_path, ITEMS, raters=["ana"])[0]
    _grade(path, {it["id"]: (3, 3, 3, 3) for it in ITEMS})
    good = _rows(path)
    assert len(read_grades(path, ITEMS)) == len(ITEMS)
    for broken in (good[:-1], good[:3] + [good[3][:4] + ["3", "3", "three", "3", ""]] + good[4:],
                   good[:2] + [good[2] + ["stray"]] + good[3:]):
        with open(path, "w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows(broken + [[""] * len(COLUMNS)])  # a trailing empty line is fine
        with pytest.raises(GradesError) as err:
            read_grades(path, ITEMS)
        assert len(err.value.problems) == 1, str(err.value)
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(good[:-1])
    with pytest.raises(GradesError, match=f"{path}: no row for item\\(s\\) 'q5'"):
        read_grades(path, ITEMS)


def test_extra_columns_and_a_byte_order_mark_are_fine(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("\ufeffmy notes," + ",".join(COLUMNS) + "\nhmm,q1,ana," + '"' + TRICKY.replace('"', '""')
                    + '","He said ""yes, no""\n\nok",5,5,5,5,\n', encoding="utf-8")
    with pytest.raises(GradesError) as err:
        read_grades(path, ITEMS)
    assert [p.message for p in err.value.problems] == [
        "no row for item(s) 'q2', 'q3', 'q4', 'q5' (every exported row must come back)"]
    assert len(read_grades(path, ITEMS[:1])) == 1


@pytest.mark.parametrize("seed", range(5))
def test_weighted_kappa_is_sklearns_quadratic_kappa(seed):
    rng = random.Random(seed)
    a = [rng.randint(1, 5) for _ in range(60)]
    b = [min(5, max(1, x + rng.choice([-2, -1, 0, 0, 1]))) for x in a]
    assert weighted_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b, weights="quadratic"), abs=1e-12)
    gappy_a, gappy_b = [1, 2, 5, 5, 1, 2], [1, 5, 5, 2, 2, 1]  # 3 and 4 never occur: weigh by score, not rank
    assert weighted_kappa(gappy_a, gappy_b) == pytest.approx(
        cohen_kappa_score(gappy_a, gappy_b, weights="quadratic", labels=[1, 2, 3, 4, 5]), abs=1e-12)
    with pytest.raises(ValueError, match="same"):
        weighted_kappa([1, 2], [1])


def _grades(rater, scores, models=("base", "sft")):
    return [Grade(f"q{i}", models[i % len(models)], rater, dict(zip(CRITERIA, s))) for i, s in enumerate(scores)]


def test_agreement_of_identical_raters_is_perfect_and_of_a_constant_rater_is_chance():
    rng = random.Random(1)
    scores = [tuple(rng.randint(1, 5) for _ in CRITERIA) for _ in range(40)]
    rows = rater_agreement(_grades("ana", scores) + _grades("bob", scores))
    assert [r.criterion for r in rows] == list(CRITERIA)
    for r in rows:
        assert (r.n, r.raters, r.exact, r.within_one, r.kappa, r.weighted_kappa) == (40, 2, 1.0, 1.0, 1.0, 1.0)
        assert r.kappa_low == r.kappa_high == 1.0
    rows = rater_agreement(_grades("ana", scores) + _grades("cat", [(3, 3, 3, 3)] * 40))
    for r, c in zip(rows, CRITERIA):
        assert r.kappa == pytest.approx(0.0, abs=1e-12) and r.weighted_kappa == pytest.approx(0.0, abs=1e-12)
        assert r.exact == sum(s[CRITERIA.index(c)] == 3 for s in scores) / 40


def test_agreement_of_three_raters_is_the_mean_over_pairs_on_shared_items():
    a = [(1, 2, 3, 4), (2, 2, 2, 2), (5, 5, 5, 5), (4, 4, 4, 4)]
    b = [(1, 2, 3, 5), (2, 3, 2, 2), (5, 5, 1, 5), (3, 3, 3, 3)]
    c = a[:3]  # cat graded only q0-q2
    rows = rater_agreement(_grades("ana", a) + _grades("bob", b) + _grades("cat", c))
    acc = rows[0]
    assert (acc.n, acc.raters, acc.kappa_low, acc.kappa_high) == (3, 3, None, None)
    assert acc.exact == pytest.approx((1 + 1 + 1) / 3)  # accuracy on q0-q2: all three raters agree
    assert rows[2].exact == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    with pytest.raises(ValueError, match="two or more raters"):
        rater_agreement(_grades("ana", a))
    with pytest.raises(ValueError, match="twice"):
        rater_agreement(_grades("ana", a) + _grades("ana", a))


def test_model_means_average_raters_per_item_then_items():
    grades = _grades("ana", [(5, 5, 5, 5), (1, 1, 1, 1), (3, 3, 3, 3)]) + _grades("bob", [(4, 4, 4, 4), (2, 2, 2, 2)])
    rows = {(r.model, r.criterion): r for r in model_means(grades)}
    assert len(rows) == 2 * len(CRITERIA)
    base, sft = rows["base", "accuracy"], rows["sft", "accuracy"]
    assert (base.n, base.mean) == (2, pytest.approx((4.5 + 3) / 2)) and (sft.n, sft.mean) == (1, 1.5)
    assert base.ci_low <= base.mean <= base.ci_high
