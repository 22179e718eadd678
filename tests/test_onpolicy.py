"""ftlib.data.onpolicy: pairs from the policy's own samples, checked by the verifiers."""
import pytest

from ftlib.data import first_per_family, verify
from ftlib.data.onpolicy import onpolicy_pairs

K = 4


def _samples(rows, pattern):
    """Each row sampled K times; pattern(row) gives K answers ("R" = the reference answer, else a literal)."""
    reps, answers = [], []
    for row in rows:
        for a in pattern(row):
            reps.append(row)
            answers.append(row["answer"] if a == "R" else a)
    return reps, answers


def test_a_sampled_pair_is_the_policys_most_common_right_against_its_most_common_wrong():
    row = first_per_family("train", 1, ["arithmetic"])[0]
    wrong = str(int(row["answer"]) + 1)
    reps, answers = _samples([row], lambda r: ["R", wrong, "7777", wrong])
    pairs, report = onpolicy_pairs(reps, answers, k=K)
    assert [(p["chosen"], p["rejected"], p["reason"], p["source"]) for p in pairs] == [(row["answer"], wrong, "wrong", "sampled")]
    assert (report.prompts, report.sampled, report.all_right, report.all_wrong) == (1, 1, 0, 0)


def test_every_pair_is_verified_on_both_sides_unique_and_written_pairs_keep_their_share():
    rows = first_per_family("train", 40, ["arithmetic", "format_upper", "extract_json", "count_letter"])
    # a third of the prompts: right and wrong samples; a third all right; a third all wrong
    pattern = lambda r: (["R", "R", "nope", "R"] if int(r["id"][-4:]) % 3 == 0 else   # noqa: E731
                         ["R"] * K if int(r["id"][-4:]) % 3 == 1 else ["nope", "no", "nope", "x"])
    reps, answers = _samples(rows, pattern)
    pairs, report = onpolicy_pairs(reps, answers, k=K, written_share=0.25, seed=1)
    by_id = {r["id"]: r for r in rows}
    assert report.sampled > 10 and report.all_wrong > 10 and report.written > 0
    assert report.written == round(report.sampled / 3)                     # 25% of all pairs
    assert len(pairs) == report.sampled + report.written == sum(f["pairs"] for f in report.by_family.values())
    for p in pairs:
        row = by_id[p["task_id"]]
        assert verify(row, p["chosen"]) and p["chosen"] != p["rejected"]
        if p["reason"] != "verbose":
            assert not verify(row, p["rejected"]), p
    keys = [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs]
    assert len(set(keys)) == len(keys) and len({p["task_id"] for p in pairs}) == len(pairs)
    assert len({p["id"] for p in pairs}) == len(pairs)
    assert {p["reason"] for p in pairs if p["source"] == "written"} <= {"off_format", "verbose"}
    assert onpolicy_pairs(reps, answers, k=K, written_share=0.25, seed=1)[0] == pairs     # deterministic


def test_pairs_refuse_excluded_items_and_misaligned_samples():
    rows = first_per_family("train", 3, ["arithmetic"])
    reps, answers = _samples(rows, lambda r: ["R"] * K)
    with pytest.raises(ValueError, match="excluded items"):
        onpolicy_pairs(reps, answers, k=K, exclude=[rows[1]["id"]])
    with pytest.raises(ValueError, match="one task sampled 4 times"):
        onpolicy_pairs(reps[1:] + reps[:1], answers, k=K)
    with pytest.raises(ValueError, match="k=4 answers per row"):
        onpolicy_pairs(reps[:-1], answers[:-1], k=K)
