"""lm-evaluation-harness on the course's local tasks gives exactly our numbers (same items, settings)."""
import pytest
import yaml

from ftlib.data import load_tasks
from ftlib.metrics.exact_match import exact_match
from ftlib.studies.harness import TAG, run_lm_eval, write_tasks


def test_write_tasks_writes_one_local_task_per_family_and_refuses_unknown_ones(tmp_path, tok):
    folder = write_tasks(tmp_path, tok, ["fact_lookup", "format_list"])
    text = (folder / "course_fact_lookup.yaml").read_text()
    config = yaml.load(text.replace("!function", "!!str"), Loader=yaml.SafeLoader)   # tags aside
    assert config["task"] == "course_fact_lookup" and config["tag"] == TAG
    assert config["dataset_path"] == "json" and config["dataset_kwargs"]["data_files"]["test"].endswith("tasks_test.jsonl")
    assert config["generation_kwargs"]["do_sample"] is False and config["generation_kwargs"]["until"] == ["<|im_end|>"]
    assert (folder / "course_utils.py").exists() and not (folder / "course_arithmetic.yaml").exists()
    with pytest.raises(ValueError, match="unknown families"):
        write_tasks(tmp_path, tok, ["fact_lookups"])


@pytest.mark.slow  # lm-eval
def test_lm_eval_answers_and_scores_equal_exact_match(tmp_path, tok, tiny_chat_lm):
    model = tiny_chat_lm(seed=3)
    families = ["count_letter", "format_upper"]
    folder = write_tasks(tmp_path, tok, families)
    results = run_lm_eval(model, tok, folder, [f"course_{f}" for f in families], limit=6)
    for family in families:
        rows = load_tasks("test", [family])[:6]
        ours = exact_match(model, tok, rows, batch_size=1)
        theirs = results[f"course_{family}"]
        assert theirs["ids"] == [r["id"] for r in rows]
        assert theirs["answers"] == ours.answers                 # the same text, token for token
        assert theirs["correct"] == ours.correct
        assert theirs["score"] == pytest.approx(ours.accuracy.value)
        assert theirs["n"] == 6
