"""Chapter 09 (deployment): the exercises' checkers. Each returns ``(ok, hint)``; :func:`ftlib.course.exercises.check`
prints the verdict."""
from __future__ import annotations

import json
import math
from typing import Callable

from ftlib.course.exercises.core import call_answer, off


def _event(delta: dict | None = None, finish: str | None = None, usage: dict | None = None) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m", "choices": choices}
    if usage:
        body["usage"] = usage
    return "data: " + json.dumps(body, ensure_ascii=False) + "\n\n"


def stream_cases() -> list[tuple[str, str]]:
    """``(raw SSE stream, its text)``: a role chunk, content pieces (one with a newline, one with
    Chinese), an empty piece, a finish chunk, sometimes a usage chunk without choices, then [DONE]."""
    cases = []
    for pieces, usage in (([" The", " answer", " is 5.\n"], False), (["第一行\n", "second ", "", "line"], True),
                          ([], False)):
        raw = _event({"role": "assistant", "content": ""})
        raw += "".join(_event({"content": p}) for p in pieces)
        raw += _event({}, "stop")
        if usage:
            raw += _event(None, usage={"prompt_tokens": 9, "completion_tokens": len(pieces), "total_tokens": 9 + len(pieces)})
        cases.append((raw + "data: [DONE]\n\n", "".join(pieces)))
    return cases


def _stream_text(answer, **context) -> tuple[bool, str]:
    """09.stream_text: ``answer(raw)`` returns the concatenated delta contents of an SSE stream."""
    for raw, want in stream_cases():
        got, problem = call_answer(answer, "my_stream_text(raw)", raw)
        if problem and want == "" and "returns None" in problem:
            return False, "a stream whose chunks carry no content has the empty string '' as its text, not None"
        if problem:
            if "JSONDecodeError" in problem and "[DONE]" in raw:
                return False, "you parsed the final 'data: [DONE]' line as JSON: it ends the stream and holds no JSON"
            if "IndexError" in problem or "list index" in problem:
                return False, "a usage chunk has 'choices': [] (no choice at all): skip chunks without choices"
            if "KeyError" in problem:
                return False, f"{problem}: the first chunk's delta has only a role, the finish chunk's delta is empty; use .get('content')"
            return False, problem
        if not isinstance(got, str):
            return False, f"return the text as one string; you return a {type(got).__name__}"
        if got == want:
            continue
        if got.replace("None", "") == want:
            return False, "a delta without content gives None, which became the text 'None': skip it"
        if got.strip() == want.strip() or got.replace("\n", "") == want.replace("\n", ""):
            return False, "keep the pieces exactly as sent: do not strip spaces or newlines, they are part of the answer"
        return False, f"on a stream of {raw.count('data: ')} events your text has {len(got)} characters, which is {off(len(got), len(want))}"
    return True, "every content piece, in order, nothing else: what the openai client's stream gives you"


_PSI_CASES = [([50, 50], [25, 25]), ([80, 20], [50, 50]), ([10, 20, 30, 40], [25, 25, 25, 25]),
              ([70, 20, 10], [40, 35, 25]), ([90, 10, 0], [60, 30, 10])]          # the last has an empty bin


def _psi(answer, **context) -> tuple[bool, str]:
    """09.psi: ``answer(reference_counts, live_counts)`` is PSI over the bins' shares, with half a count
    added to every bin when any bin is empty (:func:`ftlib.metrics.drift.psi_from_counts`)."""
    from ftlib.metrics.drift import psi_from_counts
    for ref, live in _PSI_CASES:
        got, problem = call_answer(answer, "my_psi(reference_counts, live_counts)", list(ref), list(live))
        if problem:
            if "ZeroDivision" in problem or "math domain" in problem:
                return False, f"bins {ref} and {live}: an empty bin makes ln(0); add half a count to every bin first"
            return False, problem
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return False, f"return one number; you return a {type(got).__name__}"
        want = psi_from_counts([float(x) for x in ref], [float(x) for x in live])
        if math.isclose(float(got), want, abs_tol=1e-9):
            continue
        r, c = [x / sum(ref) for x in ref], [x / sum(live) for x in live]
        if 0 in ref + live:
            return False, (f"bins {ref} and {live} (one is empty): your value {float(got):.4f} is {off(float(got), want)}; "
                           "add half a count to every bin of both windows, then take shares")
        if math.isclose(float(got), sum(b * math.log(b / a) for a, b in zip(r, c)), abs_tol=1e-9):
            return False, "that is a KL divergence (one direction); PSI weights each log ratio by the difference live − reference"
        if math.isclose(float(got), sum((b - a) * math.log10(b / a) for a, b in zip(r, c)), abs_tol=1e-9):
            return False, "use the natural logarithm (math.log), not log10: PSI's thresholds (0.1, 0.25) assume it"
        if math.isclose(float(got), sum((b - a) * math.log(b / a) for a, b in zip(ref, live)), abs_tol=1e-9):
            return False, "you used the counts themselves: turn each window's counts into shares (count / total) first"
        if math.isclose(float(got), sum(abs(b - a) for a, b in zip(r, c)), abs_tol=1e-9):
            return False, "that is the total absolute difference; each bin's difference is multiplied by ln(live / reference)"
        return False, f"for counts {ref} and {live} your value {float(got):.4f} is {off(float(got), want)}"
    return True, "PSI from counts, empty bins smoothed: 0 for equal shares, and the same whichever window you call reference"


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "09.stream_text": _stream_text,
    "09.psi": _psi,
}
