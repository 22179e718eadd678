import pytest

from ftlib.exercises import check


class FakeTokenizer:
    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


MESSAGES = [{"role": "user", "content": "hi"}]


def test_chat_prompt_checker_accepts_exact_and_rejects_near_misses(capsys):
    tok = FakeTokenizer()
    assert check("00.chat_prompt", "<user>hi<assistant>", tokenizer=tok, messages=MESSAGES)
    assert not check("00.chat_prompt", "<user>hi <assistant>", tokenizer=tok, messages=MESSAGES)
    assert "first difference at character 8" in capsys.readouterr().out
    assert not check("00.chat_prompt", None, tokenizer=tok, messages=MESSAGES)
    assert not check("00.chat_prompt", 42, tokenizer=tok, messages=MESSAGES)  # wrong type: a hint, no crash


def test_unknown_exercise_is_an_error():
    with pytest.raises(KeyError, match="known"):
        check("99.nothing", 1)
