"""Chapter 02's exercise checkers: they accept the right answer and give a useful hint otherwise."""
from ftlib.course.exercises import check

IDS = [5, 6, 7, 5, 6, 8, 5, 6]   # (5, 6) occurs 3 times, every other pair once


def test_merge_checker(capsys):
    assert check("02.merge", [9, 7, 9, 8, 9], ids=IDS, new_id=9)
    assert not check("02.merge", [9, 7, 9, 8, 5, 6], ids=IDS, new_id=9)   # missed one occurrence
    assert "your list has 2 × 9" in capsys.readouterr().out
    assert not check("02.merge", IDS, ids=IDS, new_id=9)                  # nothing merged
    assert "never contains" in capsys.readouterr().out
    assert not check("02.merge", None, ids=IDS, new_id=9)
    assert not check("02.merge", 3, ids=IDS, new_id=9)                    # wrong type: a hint, no crash


def test_merge_checker_refuses_ambiguous_examples(capsys):
    assert not check("02.merge", [9, 3], ids=[1, 2, 3], new_id=9)
    assert "tie" in capsys.readouterr().out


def test_bytes_per_token_checker(capsys):
    text, ids = "猫 cat", [1, 2, 3]        # 7 bytes, 5 characters, 3 tokens
    assert check("02.bytes_per_token", 7 / 3, text=text, ids=ids)
    assert check("02.bytes_per_token", 2.33, text=text, ids=ids)          # rounding is fine
    assert not check("02.bytes_per_token", 5 / 3, text=text, ids=ids)
    assert "characters, not bytes" in capsys.readouterr().out
    assert not check("02.bytes_per_token", 3 / 7, text=text, ids=ids)
    assert "upside down" in capsys.readouterr().out
    assert not check("02.bytes_per_token", "many", text=text, ids=ids)
