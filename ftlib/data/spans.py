"""Planted spans: wrap a value in invisible markers while writing, then strip them to get offsets.

Generators write `mark("email", "wren@post.example")` into their text. After every edit is done,
`unmark` removes the markers and returns the clean text with exact character spans, so the
labels can never drift from the text they describe.

>>> text, spans = unmark("Write to " + mark("email", "a@b.example") + " today.")
>>> text
'Write to a@b.example today.'
>>> spans
[{'kind': 'email', 'start': 9, 'end': 20}]
>>> text[9:20]
'a@b.example'
"""
import re

PII_KINDS = ("email", "phone", "ip")
TRICKY_KINDS = ("version", "date", "time", "price", "id")

_OPEN, _SEP, _CLOSE = "\x02", "\x1f", "\x03"
_MARKED = re.compile(f"{_OPEN}([a-z]+){_SEP}([^{_CLOSE}]*){_CLOSE}")


def mark(kind, value):
    """Wrap `value` so that `unmark` can report where it ended up."""
    assert kind in PII_KINDS + TRICKY_KINDS, kind
    return f"{_OPEN}{kind}{_SEP}{value}{_CLOSE}"


def unmark(marked):
    """Strip markers from `marked`. Returns (text, spans), spans as sorted {"kind","start","end"}."""
    pieces, spans, pos, out_len = [], [], 0, 0
    for m in _MARKED.finditer(marked):
        pieces.append(marked[pos:m.start()])
        out_len += m.start() - pos
        value = m.group(2)
        spans.append({"kind": m.group(1), "start": out_len, "end": out_len + len(value)})
        pieces.append(value)
        out_len += len(value)
        pos = m.end()
    pieces.append(marked[pos:])
    text = "".join(pieces)
    assert _OPEN not in text and _CLOSE not in text, "unbalanced marker"
    return text, spans


def inside_marker(marked):
    """A list of booleans, True where a character of `marked` lies inside a marker."""
    inside = [False] * len(marked)
    for m in _MARKED.finditer(marked):
        for i in range(m.start(), m.end()):
            inside[i] = True
    return inside


def tricky_value(kind, rng):
    """A number-shaped string that is NOT personal data: a version, date, time, price or id.

    Versions with four parts look like IPv4 addresses and ids look like phone numbers:
    that is the point, they are hard negatives for a PII filter.
    """
    if kind == "version":
        parts = [rng.randint(1, 4), rng.randint(0, 12), rng.randint(0, 9)]
        if rng.random() < 0.6:
            parts.append(rng.randint(0, 20))
        return ".".join(map(str, parts))
    if kind == "date":
        return f"{rng.randint(2023, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == "time":
        return f"{rng.randint(6, 20):02d}:{rng.choice(['00', '15', '30', '45'])}"
    if kind == "price":
        return f"{rng.randint(1, 40)}.{rng.choice(['00', '25', '50', '75', '95'])}"
    if kind == "id":
        return f"{rng.choice(['KB', 'ST', 'LOT', 'REF'])}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
    raise ValueError(f"unknown tricky kind {kind!r}")


def word_count(text):
    """Whitespace-separated words: word_count("Rain again  today.") -> 3."""
    return len(text.split())
