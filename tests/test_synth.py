"""ftlib.engine.synth: the Self-Instruct filters count what they drop, and CoT answers end in the right number."""
import pytest

from ftlib.data import load_tasks, verify
from ftlib.engine.synth import (checked_steps, cot_answer, final_number, parse_task, rouge_l_max, self_instruct_prompt,
                                self_instruct_round)


def test_parse_task_keeps_only_the_family_forms():
    assert parse_task("4. Count the words in: the mill stands by the river\nmore") == \
        ("Count the words in: the mill stands by the river", "the mill stands by the river")
    assert parse_task('How many words does "a b c d" have?') == ('How many words does "a b c d" have?', "a b c d")
    assert parse_task("Write a poem about rivers.") is None
    assert parse_task("") is None


def test_rouge_l_is_one_for_a_copy_and_lower_for_a_new_sentence():
    existing = ["Count the words in: the mill stands by the river"]
    assert rouge_l_max(existing[0], existing) == pytest.approx(1.0)
    assert rouge_l_max("Count the words in: goats eat green grass in spring", existing) < 0.7
    assert rouge_l_max("anything", []) == 0.0


def test_a_round_counts_survivors_of_each_filter():
    existing = ["Count the words in: the mill stands by the river"]
    candidates = ["Count the words in: the mill stands by the river",          # ROUGE-L copy
                  "Write a song.",                                              # wrong form
                  "Count the words in: hi there",                               # too short
                  "Count the words in: goats eat green grass in the spring",    # 7 words, answered 8
                  "Count the words in: bees make honey from wild summer flowers"]  # 7 words, answered 7
    replies = {"Count the words in: goats eat green grass in the spring": "8",
               "Count the words in: bees make honey from wild summer flowers": "7"}
    asked = []

    def answer(tasks):
        asked.extend(tasks)
        return [replies[t] for t in tasks]
    report = self_instruct_round(candidates, answer, existing)
    assert report.counts == {"generated": 5, "form": 4, "length": 3, "rouge_l": 2, "verifier": 1}
    assert [r["answer"] for r in report.survivors] == ["7"] and len(asked) == 2
    assert report.rejected["form"] == ["Write a song."]
    assert report.survivors[0]["prompt"].startswith("Count the words in: bees") and verify(report.survivors[0], "7")
    relabelled = self_instruct_round(candidates, answer, existing, relabel=True)
    assert relabelled.counts["verifier"] == 1 and [r["answer"] for r in relabelled.survivors] == ["7", "7"]
    assert self_instruct_prompt(["a", "b"]).endswith("1. a\n2. b\n3.")


def test_cot_answers_end_in_the_gold_number_for_every_arithmetic_row():
    rows = load_tasks("train", ["arithmetic"])
    for row in rows:
        text = cot_answer(row)
        assert final_number(text) == row["answer"], (row, text)
        assert verify(row, final_number(text))
    assert final_number("7 * 3 = 21, so 21") == "21"


def test_checked_steps_finds_every_worked_step_and_checks_it():
    for row in load_tasks("test", ["arithmetic"]):             # the course's own worked answers are all right
        right, total = checked_steps(cot_answer(row))
        assert total >= 1 and right == total, cot_answer(row)
    assert checked_steps("6 * 5 = 40, 40 + 3 = 43. Answer: 43") == (1, 2)
    assert checked_steps("12 - 15 = -3") == (1, 1) and checked_steps("Answer: 7") == (0, 0)
