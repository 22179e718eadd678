"""Record a notebook's key figures: ``record("sft/exact_match", 0.87)``.

Values go into one small JSON file: ``$FTLIB_RECORDS`` when the course runner executes the
notebook (it sets ``runs/<profile>/<chapter>.json``, beside the executed notebook), else
``records.json`` in the working directory. The runner's report gathers them.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path


def records_path() -> Path:
    return Path(os.environ.get("FTLIB_RECORDS", "records.json"))


def _plain(value):
    """Turn numpy/torch scalars into Python numbers; refuse what JSON cannot hold."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"record: value {value} is not finite")
    if not isinstance(value, (int, float, str, bool, type(None))):
        raise TypeError(f"record: {type(value).__name__} is not a number, string or bool")
    return value


def record(name: str, value, *, quiet: bool = False) -> None:
    """Store ``value`` under ``name`` (``"chapter/figure"``).

    Returns nothing, so a notebook cell ending in ``record(...)`` shows no stray value.
    """
    value = _plain(value)
    path = records_path()
    data = load_records(path)
    data[name] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    if not quiet:
        print(f"recorded {name} = {value}")


def load_records(path: str | Path | None = None) -> dict:
    path = Path(path) if path else records_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg}); delete it or fix it") from e
