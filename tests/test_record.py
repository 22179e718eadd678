import json

import numpy as np
import pytest
import torch

from ftlib.metrics.record import load_records, record


def test_record_merges_into_one_json_file(tmp_path, monkeypatch):
    path = tmp_path / "out" / "ch.json"
    monkeypatch.setenv("FTLIB_RECORDS", str(path))
    assert record("a/loss", torch.tensor(1.5), quiet=True) is None   # no stray value in a notebook
    record("a/acc", np.float32(0.25), quiet=True)
    record("a/loss", 1.25, quiet=True)
    assert json.loads(path.read_text()) == {"a/acc": 0.25, "a/loss": 1.25}
    assert load_records(path) == {"a/acc": 0.25, "a/loss": 1.25}


def test_record_refuses_what_json_cannot_hold(tmp_path, monkeypatch):
    monkeypatch.setenv("FTLIB_RECORDS", str(tmp_path / "r.json"))
    with pytest.raises(ValueError, match="not finite"):
        record("x", float("nan"))
    with pytest.raises(TypeError):
        record("x", [1, 2])
    (tmp_path / "r.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"r\.json:1"):
        load_records()
