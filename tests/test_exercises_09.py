"""Chapter 09's exercise checkers: they accept the right answer and name the usual mistakes."""
import json
import math

from ftlib.course.exercises import check
from ftlib.course.exercises.ch09_deployment import stream_cases


def _events(raw):
    return [e[6:] for e in raw.split("\n\n") if e.startswith("data: ")]


def test_stream_text_checker(capsys):
    def right(raw):
        return "".join(c["delta"].get("content") or "" for e in _events(raw) if e != "[DONE]"
                       for c in json.loads(e)["choices"])
    assert check("09.stream_text", right)
    assert not check("09.stream_text", lambda raw: "".join(json.loads(e)["choices"][0]["delta"].get("content", "")
                                                           for e in _events(raw)))
    assert "[DONE]" in capsys.readouterr().out
    assert not check("09.stream_text", lambda raw: "".join(json.loads(e)["choices"][0]["delta"].get("content", "")
                                                           for e in _events(raw) if e != "[DONE]"))
    assert "choices': []" in capsys.readouterr().out
    assert not check("09.stream_text", lambda raw: "".join(str(c["delta"].get("content")) for e in _events(raw)
                                                           if e != "[DONE]" for c in json.loads(e)["choices"]))
    assert "'None'" in capsys.readouterr().out
    assert not check("09.stream_text", lambda raw: right(raw).strip())
    assert "do not strip" in capsys.readouterr().out
    assert any("第一行" in text for _, text in stream_cases()) and any(text == "" for _, text in stream_cases())


def _shares(counts):
    return [c / sum(counts) for c in counts]


def test_psi_checker(capsys):
    from ftlib.metrics.drift import psi_from_counts
    assert check("09.psi", lambda r, l: psi_from_counts([float(x) for x in r], [float(x) for x in l]))
    unsmoothed = lambda r, l: sum((b - a) * math.log(b / a) for a, b in zip(_shares(r), _shares(l)))   # noqa: E731
    assert not check("09.psi", unsmoothed)
    assert "empty bin" in capsys.readouterr().out
    assert not check("09.psi", lambda r, l: sum(b * math.log(b / a) for a, b in zip(_shares(r), _shares(l))))
    assert "KL divergence" in capsys.readouterr().out
    assert not check("09.psi", lambda r, l: sum((b - a) * math.log(b / a) for a, b in zip(r, l)))
    assert "shares" in capsys.readouterr().out
    assert not check("09.psi", lambda r, l: 0.5)
    assert "too high" in capsys.readouterr().out
