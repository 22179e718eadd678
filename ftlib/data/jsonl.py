"""JSON Lines in and out: one object per line, byte-stable on write, loud on read.

A bad row is an error that names the file, the 1-based line and the field; rows are never
silently dropped, because a dropped row in an evaluation set changes every score after it.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "tiny.jsonl")
>>> write_jsonl(path, [{"b": 1, "a": "猫"}])
1
>>> open(path, encoding="utf-8").read()
'{"a":"猫","b":1}\\n'
>>> read_jsonl(path, required=("a",))
[{'a': '猫', 'b': 1}]
"""
import json
from pathlib import Path


class JsonlError(ValueError):
    """A bad line in a JSONL file. `path`, `line` (1-based) and `field` (or None) say where."""

    def __init__(self, path, line, problem, raw="", field=None):
        self.path, self.line, self.field = str(path), line, field
        snippet = f" (row: {raw[:120]})" if raw else ""
        super().__init__(f"{self.path}:{line}: {problem}{snippet}")


def dumps_row(row):
    """The one canonical serialisation: sorted keys, no spaces, real UTF-8 characters."""
    return json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def write_jsonl(path, rows):
    """Write `rows` (dicts) to `path`, one per line, each ending in "\\n". Returns the row count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TypeError(f"row {i} is a {type(row).__name__}, not a dict")
        lines.append(dumps_row(row) + "\n")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(lines))
    return len(lines)


def _check_row(path, number, raw, row, required, types):
    """Raise JsonlError unless `row` is a dict with every required field of the right type."""
    if not isinstance(row, dict):
        raise JsonlError(path, number, f"expected a JSON object, got {type(row).__name__}", raw)
    for field in required:
        if field not in row:
            raise JsonlError(path, number, f"field {field!r} is missing", raw, field)
    for field, kind in types.items():
        if field in row and not isinstance(row[field], kind):
            want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            problem = f"field {field!r} should be {want}, got {type(row[field]).__name__}"
            raise JsonlError(path, number, problem, raw, field)


def read_jsonl(path, required=(), types=None):
    """Read every row of a JSONL file as a dict.

    required: field names each row must have; types: {field: type} checked where present.
    Only the final newline may leave an empty line; an empty line in the middle is an error.
    Raises JsonlError for invalid JSON, a non-object row, a missing field or a wrong type.
    """
    text = Path(path).read_text(encoding="utf-8")
    lines = text.split("\n")  # not splitlines(): U+2028 inside a string is not a line break
    if lines and lines[-1] == "":
        lines.pop()
    rows = []
    for number, raw in enumerate(lines, start=1):
        raw = raw.removesuffix("\r")
        if not raw.strip():
            raise JsonlError(path, number, "empty line")
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as err:
            raise JsonlError(path, number, f"invalid JSON ({err.msg} at column {err.colno})", raw) from None
        _check_row(path, number, raw, row, required, types or {})
        rows.append(row)
    return rows
