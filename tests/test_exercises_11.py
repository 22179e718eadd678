"""Chapter 11's exercise checkers: they accept the right answer and name the usual mistakes."""
import copy

from ftlib.course.exercises import check
from ftlib.course.exercises.ch11_capstone import LLAMA_FACTORY
from ftlib.course.solutions import load_solutions


def _solution(name):
    """The instructor's solution, run as the notebook would run it."""
    namespace = {}
    exec(load_solutions("11_capstone")[name].replace("print(", "(lambda *a, **k: None)("), namespace)
    return namespace


def test_leaked_lines_checker(capsys, monkeypatch):
    right = _solution("11.leaked_lines")["my_leaked_lines"]
    assert check("11.leaked_lines", right)
    capsys.readouterr()
    assert not check("11.leaked_lines", lambda lines, rows: [n - 1 for n in right(lines, rows)])
    assert "count lines from 1" in capsys.readouterr().out

    import ftlib.data                                # the solution without normalisation: misses the reworded leak
    with monkeypatch.context() as m:
        m.setattr(ftlib.data, "normalize_prompt", lambda prompt: prompt)
        assert not check("11.leaked_lines", right)
    assert "after normalising them" in capsys.readouterr().out
    assert not check("11.leaked_lines", lambda lines, rows: list(range(1, len(lines) + 1)))
    assert "skip lines that are not valid rows" in capsys.readouterr().out
    assert not check("11.leaked_lines", lambda lines, rows: "3")
    assert "list of line numbers" in capsys.readouterr().out


def test_from_llama_factory_checker(capsys):
    right = _solution("11.from_llama_factory")["my_config"]
    assert check("11.from_llama_factory", right)
    capsys.readouterr()
    with_lf_key = copy.deepcopy(right)
    with_lf_key["method"]["lora_rank"] = with_lf_key["method"].pop("r")
    assert not check("11.from_llama_factory", with_lf_key)
    assert "method.lora_rank: unknown key" in capsys.readouterr().out
    epochs = copy.deepcopy(right)
    epochs["train"]["epochs"] = 1
    del epochs["train"]["steps"]
    assert not check("11.from_llama_factory", epochs)
    assert "train.epochs" in capsys.readouterr().out
    alpha = copy.deepcopy(right)
    alpha["method"]["alpha"] = 32
    assert not check("11.from_llama_factory", alpha)
    assert "method.alpha (from lora_alpha)" in capsys.readouterr().out
    assert not check("11.from_llama_factory", "model: smollm2-135m")
    assert "dict of sections" in capsys.readouterr().out
    assert LLAMA_FACTORY["lora_target"] == "all"     # the checker's hint for target_modules relies on it
