"""Chapter 09 · solutions (instructors). Learners see these cells with the solution stubbed out;
`python -m ftlib.course solutions` writes the notebooks with them filled in."""

# %% 09.stream_text
import json


def my_stream_text(raw):
    """The answer's text from a raw SSE stream of chat.completion.chunk events."""
    ### BEGIN SOLUTION
    text = []
    for event in raw.split("\n\n"):
        if not event.startswith("data: ") or event == "data: [DONE]":
            continue                                       # blank tail, or the end marker
        chunk = json.loads(event[len("data: "):])
        for choice in chunk["choices"]:                    # none in a usage chunk
            text.append(choice["delta"].get("content") or "")
    return "".join(text)
    ### END SOLUTION

# %% 09.psi
import math


def my_psi(reference_counts, live_counts):
    """PSI of two windows' counts over the same bins (half a count added to every bin if one is empty)."""
    ### BEGIN SOLUTION
    if 0 in reference_counts or 0 in live_counts:              # ln(0) is not a number: smooth every bin
        reference_counts = [c + 0.5 for c in reference_counts]
        live_counts = [c + 0.5 for c in live_counts]
    ref = [c / sum(reference_counts) for c in reference_counts]
    live = [c / sum(live_counts) for c in live_counts]
    return sum((b - a) * math.log(b / a) for a, b in zip(ref, live))
    ### END SOLUTION
