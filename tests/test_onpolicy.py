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
    pairs, report = onpolicy_pairs(reps, answers, k=K, written_share=0.25, reference_share=0.1, seed=1)
    by_id = {r["id"]: r for r in rows}
    assert report.sampled > 10 and report.all_wrong > 10 and report.written > 0
    assert report.reference == round(0.1 * len(rows)) < report.all_wrong            # capped at 10% of the prompts
    assert report.written == round((report.sampled + report.reference) / 3)          # 25% of all pairs
    assert len(pairs) == report.sampled + report.reference + report.written == sum(
        f["pairs"] for f in report.by_family.values())
    for p in pairs:
        row = by_id[p["task_id"]]
        if p["source"] == "reference":
            assert p["chosen"] == row["answer"] and pattern(row)[0] == "nope"
        if p["source"] == "sampled":
            assert p["rejected"] == "nope" and p["chosen"] == row["answer"]
    for p in pairs:
        row = by_id[p["task_id"]]
        assert verify(row, p["chosen"]) and p["chosen"] != p["rejected"]
        if p["reason"] != "verbose":
            assert not verify(row, p["rejected"]), p
    keys = [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs]
    assert len(set(keys)) == len(keys) and len({p["task_id"] for p in pairs}) == len(pairs)
    assert len({p["id"] for p in pairs}) == len(pairs)
    assert {p["reason"] for p in pairs if p["source"] == "written"} <= {"off_format", "verbose"}
    assert onpolicy_pairs(reps, answers, k=K, written_share=0.25, reference_share=0.1, seed=1)[0] == pairs
    assert onpolicy_pairs(reps, answers, k=K, written_share=0.25, seed=1)[1].reference == 0     # off by default


def test_pairs_refuse_excluded_items_and_misaligned_samples():
    rows = first_per_family("train", 3, ["arithmetic"])
    reps, answers = _samples(rows, lambda r: ["R"] * K)
    with pytest.raises(ValueError, match="excluded items"):
        onpolicy_pairs(reps, answers, k=K, exclude=[rows[1]["id"]])
    with pytest.raises(ValueError, match="one task sampled 4 times"):
        onpolicy_pairs(reps[1:] + reps[:1], answers, k=K)
    with pytest.raises(ValueError, match="k=4 answers per row"):
        onpolicy_pairs(reps[:-1], answers[:-1], k=K)


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_pair_prompts_are_items_the_assistant_never_trained_on(profile):
    from ftlib.data.onpolicy import PAIR_RECIPES, POOL_START
    from ftlib.engine.sft_train import LORA_SFT_RECIPES, assistant_rows
    from ftlib.products.alignment import pair_prompts
    assert LORA_SFT_RECIPES[profile].per_family <= POOL_START
    prompts, recipe = pair_prompts(profile), PAIR_RECIPES[profile]
    train, test = ({r["id"] for r in prompts[s]} for s in ("train", "test"))
    assert len(train) == 9 * recipe.per_family and len(test) == 9 * recipe.test_per_family and not train & test
    trained = {r["id"] for r in assistant_rows(LORA_SFT_RECIPES[profile].per_family)}
    assert not (train | test) & trained and all("-train-" in i for i in train | test)
    from ftlib.engine.rl_runs import rl_rows                 # chapter 06's RL prompts: neither SFT data nor pairs
    rl = {r["id"] for r in rl_rows("train")}
    assert rl and not rl & (train | test | trained)


@pytest.mark.slow  # builds the smoke assistant and samples it
def test_the_assistant_pairs_product_holds_verified_pairs_of_its_own_samples():
    from ftlib.data import load_tasks
    from ftlib.products.alignment import load_pairs
    from ftlib.products.registry import ASSISTANT_PAIRS, load_model, model_dir
    import json
    directory = model_dir(ASSISTANT_PAIRS, profile="smoke")
    record = json.loads((directory / "pairs.json").read_text())
    by_id = {r["id"]: r for r in load_tasks("train")}
    for split in ("train", "test"):
        samples, pairs = record[split]["samples"], load_pairs(split, profile="smoke")
        assert len(samples) == 2 * record[split]["report"]["prompts"] > 0
        assert all(verify(by_id[s["id"]], s["answer"]) == s["correct"] for s in samples)
        assert len(pairs) >= 1             # the smoke assistant is nearly always wrong: reference pairs at least
        said = {s["answer"].strip() for s in samples}
        for p in pairs:
            assert verify(by_id[p["task_id"]], p["chosen"]) and p["id"].startswith(f"onpolicy-{split}-")
            assert p["rejected"] in said or p["source"] == "written"
            assert p["chosen"] in said or p["source"] == "reference"
    with pytest.raises(ValueError, match="not a model"):
        load_model(ASSISTANT_PAIRS, profile="smoke")
    assistant, _ = load_model("smollm2-sft-lora", profile="smoke")          # merged, and trainable like any model
    assert all(p.requires_grad for p in assistant.parameters())
