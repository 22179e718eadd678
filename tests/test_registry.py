"""The checkpoint registry: build on demand, reuse, rebuild when an input changes."""
import json

import pytest

from ftlib import registry
from ftlib.checkpoints import cached, course_home, read_record


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """Two toy products, 'toy-a' and 'toy-b' (which needs 'toy-a'), in an empty cache."""
    monkeypatch.setenv("FTLIB_HOME", str(tmp_path / "home"))
    builds, recipe = [], {"steps": 3}

    def build(out, *, profile, seed, needs):
        builds.append(out.name)
        (out / "weights.txt").write_text(f"{profile} {seed} {sorted(needs)}")

    monkeypatch.setitem(registry.PRODUCTS, "toy-a", registry.Product(
        "toy-a", "toy-a", build, lambda profile: dict(recipe), data=("tasks_train.jsonl",)))
    monkeypatch.setitem(registry.PRODUCTS, "toy-b", registry.Product(
        "toy-b", "toy-b", build, lambda profile: {}, needs=("toy-a",)))
    return builds, recipe


def test_builds_once_with_what_it_needs_then_reuses(toy):
    builds, _ = toy
    b = registry.model_dir("toy-b", profile="smoke", seed=0)
    assert b == course_home() / "toy-b-smoke-seed0"
    assert (b / "weights.txt").read_text() == "smoke 0 ['toy-a']"
    assert len(builds) == 2                                   # toy-a first, then toy-b
    registry.model_dir("toy-b", profile="smoke", seed=0)
    assert len(builds) == 2                                   # cached: nothing rebuilt
    record = read_record(b)
    assert record["inputs"]["profile"] == "smoke" and "torch" in record["inputs"]["packages"]
    assert record["inputs"]["needs"]["toy-a"]["recipe"] == {"steps": 3}
    assert registry.model_dir("toy-b", profile="smoke", seed=1) != b and len(builds) == 4


def test_a_changed_recipe_rebuilds_the_product_and_what_depends_on_it(toy):
    builds, recipe = toy
    registry.model_dir("toy-b", profile="smoke", seed=0)
    recipe["steps"] = 4
    registry.model_dir("toy-b", profile="smoke", seed=0)
    assert len(builds) == 4                                   # toy-a rebuilt, so toy-b too


def test_changed_data_or_package_versions_rebuild(toy, monkeypatch):
    builds, _ = toy
    registry.model_dir("toy-a", profile="smoke", seed=0)
    monkeypatch.setattr(registry, "file_hash", lambda *paths: "different data")
    registry.model_dir("toy-a", profile="smoke", seed=0)
    assert len(builds) == 2
    monkeypatch.setattr(registry, "package_versions", lambda: {"torch": "99.0"})
    registry.model_dir("toy-a", profile="smoke", seed=0)
    assert len(builds) == 3


def test_save_product_records_the_inputs_model_dir_expects(toy):
    builds, _ = toy
    path = registry.save_product("toy-a", lambda out: (out / "weights.txt").write_text("mine"), profile="smoke")
    assert registry.model_dir("toy-a", profile="smoke") == path and not builds
    assert (path / "weights.txt").read_text() == "mine"


def test_unknown_names_are_paths_or_hub_ids_and_bad_names_say_what_exists(toy, tmp_path):
    assert registry.resolve_model_path(str(tmp_path)) == str(tmp_path)
    assert registry.resolve_model_path("org/model") == "org/model"
    with pytest.raises(KeyError, match="course-sft"):
        registry.model_dir("no-such-product")


def test_cached_rebuilds_when_inputs_differ(tmp_path, monkeypatch):
    monkeypatch.setenv("FTLIB_HOME", str(tmp_path))
    calls = []
    build = lambda out: calls.append(1)                                         # noqa: E731
    cached("x", build, inputs={"a": 1})
    cached("x", build, inputs={"a": 1})
    assert len(calls) == 1
    cached("x", build, inputs={"a": 2})
    assert len(calls) == 2
    assert json.loads((tmp_path / "x" / "product.json").read_text())["inputs"] == {"a": 2}
