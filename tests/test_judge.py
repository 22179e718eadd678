"""ftlib.studies.judge: robust parsing of judge replies, agreement with the verifier, position bias."""
import doctest

import pytest

from ftlib.studies import judge
from ftlib.studies.judge import (VERDICTS, WINNERS, judge_agreement, compare_pairs, grade, parse_field,
                                 position_bias)


def test_doctests():
    assert doctest.testmod(judge).failed == 0


@pytest.mark.parametrize("reply, expected", [
    ('{"verdict": "correct"}', True),
    ('{"verdict": "incorrect"} because the answer is wrong', False),
    ("Here you go:\n```json\n{\"verdict\": \" CORRECT \"}\n```", True),
    ("{'verdict': 'incorrect'}", False),                      # Python-style quotes
    ('{"note": "x"} then {"verdict": "correct"}', True),      # the first object *with the key*
    ('{"verdict": "correct"', None),                          # cut off by the token budget
    ('{"verdict": "partly"}', None),                          # not an allowed value
    ('{"verdict": 1}', None),                                 # not a string
    ("correct", None),                                        # no JSON at all
    ("", None),
    ("{{{{", None),
    ('{"verdict": "correct", "verdict2": [1, {"a": }]}', None),  # broken JSON, not a literal either
])
def test_parse_field_never_raises_and_only_accepts_allowed_values(reply, expected):
    assert parse_field(reply, "verdict", VERDICTS) == expected


def test_parse_winner_maps_case_and_ties():
    assert [parse_field(r, "winner", WINNERS) for r in
            ['{"winner": "a"}', '{"winner": "B"}', '{"winner": "Tie"}', '{"winner": "both"}']] == ["A", "B", "tie", None]


def test_grade_prefills_the_json_and_counts_malformed_replies(monkeypatch):
    seen = {}

    def fake_greedy(model, tokenizer, prompts, max_new_tokens, batch_size=32):
        seen["prompts"] = prompts
        return ['correct"}', 'incorrect"}', "I think so"]

    class Tok:
        def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
            return "<user>" + messages[-1]["content"] + "<assistant>"

    monkeypatch.setattr(judge, "greedy_answers", fake_greedy)
    rows = [{"prompt": "2+2?", "answer": "4"}] * 3
    result = grade(None, Tok(), rows, ["4", "5", "6"])
    assert result.verdicts == [True, False, None] and result.malformed == 1
    assert all(p.endswith('<assistant>{"verdict": "') for p in seen["prompts"])
    assert "Reference answer: 4" in seen["prompts"][0] and "Candidate answer: 5" in seen["prompts"][1]
    pairs = compare_pairs(None, Tok(), ["q"] * 3, ["x"] * 3, ["y"] * 3, prefill=False)
    assert pairs.verdicts == [None, None, None]          # no prefill: these replies carry no JSON


def test_agreement_reports_kappa_and_leaves_malformed_replies_out():
    correct = [True, True, False, False, True, False]
    perfect = judge_agreement([True, True, False, False, None, False], correct)
    assert perfect.malformed == 1 and perfect.accuracy.k == perfect.accuracy.n == 5
    assert perfect.kappa[0] == pytest.approx(1.0)
    yes_man = judge_agreement([True] * 6, correct)                # always "correct": right half the time, κ 0
    assert yes_man.accuracy.k == 3 and yes_man.kappa[0] == pytest.approx(0.0) and yes_man.says_correct == 1.0
    with pytest.raises(ValueError, match="malformed"):
        judge_agreement([None, None], [True, False])


def test_position_bias_separates_a_fair_judge_from_one_that_always_picks_a():
    fair = position_bias(["A", "B", "tie", "A"], ["B", "A", "tie", "B"])
    assert fair["consistent"] == 4 and fair["flipped"] == 0 and fair["first_position_rate"] == 0.5
    always_a = position_bias(["A"] * 4, ["A"] * 4)
    assert always_a["consistent"] == 0 and always_a["flipped"] == 4 and always_a["first_position_rate"] == 1.0
    partial = position_bias(["A", None, "B"], ["B", "A", "B"])
    assert partial["parsed"] == 2 and partial["pairs"] == 3 and partial["consistent"] == 1 and partial["flipped"] == 1
