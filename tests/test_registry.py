"""The checkpoint registry: build on demand, reuse, rebuild when an input changes."""
import dataclasses
import json

import pytest

from ftlib.products import registry
from ftlib.engine.cache import cached, course_home, read_record


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """Two toy products, 'toy-a' and 'toy-b' (which needs 'toy-a'), in an empty cache."""
    monkeypatch.setenv("FTLIB_HOME", str(tmp_path / "home"))
    builds, recipe = [], {"steps": 3}

    def build(out, *, profile, seed, needs, params):
        builds.append(out.name)
        (out / "weights.txt").write_text(f"{profile} {seed} {sorted(needs)} {params}")
        return [f"row {i}" for i in range(params.get("rows", 0))]

    monkeypatch.setitem(registry.PRODUCTS, "toy-a", registry.Product(
        "toy-a", "toy-a", build, lambda profile: dict(recipe), data=("tasks_train.jsonl",),
        params=lambda profile: {"rows": 3}))
    monkeypatch.setitem(registry.PRODUCTS, "toy-b", registry.Product(
        "toy-b", "toy-b", build, lambda profile: {}, needs=("toy-a",)))
    return builds, recipe


def test_builds_once_with_what_it_needs_then_reuses(toy):
    builds, _ = toy
    b = registry.model_dir("toy-b", profile="smoke", seed=0)
    assert b == course_home() / "toy-b-smoke-seed0"
    assert (b / "weights.txt").read_text() == "smoke 0 ['toy-a'] {}"
    assert len(builds) == 2                                   # toy-a first, then toy-b
    registry.model_dir("toy-b", profile="smoke", seed=0)
    assert len(builds) == 2                                   # cached: nothing rebuilt
    record = read_record(b)
    assert record["inputs"]["profile"] == "smoke" and "torch" in record["inputs"]["packages"]
    assert record["inputs"]["needs"]["toy-a"]["inputs"]["recipe"] == {"steps": 3}
    assert record["inputs"]["needs"]["toy-a"]["built_with"]["params"] == {"rows": 3}
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


def test_the_record_holds_what_built_it_and_a_variant_rebuilds_what_depends_on_it(toy):
    builds, _ = toy
    a = registry.model_dir("toy-a", profile="smoke")
    standard = read_record(a)["built_with"]
    assert standard["params"] == {"rows": 3} and len(standard["rows_sha256"]) == 64
    registry.model_dir("toy-b", profile="smoke")
    assert len(builds) == 2
    registry.model_dir("toy-a", profile="smoke", params={"rows": 5})          # another variant of toy-a
    variant = read_record(a)["built_with"]
    assert variant["params"] == {"rows": 5} and variant["rows_sha256"] != standard["rows_sha256"]
    assert len(builds) == 3
    registry.model_dir("toy-a", profile="smoke", params={"rows": 5})          # the same variant: reused
    assert len(builds) == 3
    with pytest.warns(registry.NonDefaultProductWarning, match=r"rows=5 \(default 3\)"):
        registry.model_dir("toy-b", profile="smoke")                           # toy-a changed: toy-b rebuilt
    assert len(builds) == 4
    registry.model_dir("toy-a", profile="smoke", rebuild=True)                 # the standard one again
    assert read_record(a)["built_with"] == standard
    with pytest.raises(KeyError, match="no parameter 'steps'"):
        registry.model_dir("toy-a", profile="smoke", params={"steps": 9})


def test_a_changed_default_parameter_rebuilds(toy, monkeypatch):
    builds, _ = toy
    registry.model_dir("toy-a", profile="smoke")
    monkeypatch.setitem(registry.PRODUCTS, "toy-a", dataclasses.replace(
        registry.PRODUCTS["toy-a"], params=lambda profile: {"rows": 4}))
    registry.model_dir("toy-a", profile="smoke")
    assert len(builds) == 2 and read_record(course_home() / "toy-a-smoke-seed0")["built_with"]["params"] == {"rows": 4}


def test_save_product_neither_builds_nor_rebuilds_what_it_needs(toy):
    builds, _ = toy
    with pytest.raises(FileNotFoundError, match="toy-a is not in the cache"):
        registry.save_product("toy-b", lambda out: None, profile="smoke")
    registry.model_dir("toy-a", profile="smoke")
    registry.save_product("toy-b", lambda out: (out / "weights.txt").write_text("mine"), profile="smoke")
    assert len(builds) == 1                                                     # toy-a only; toy-b was stored


@pytest.mark.slow
def test_course_base_with_another_cleaning_threshold_is_recorded_and_rebuilds_course_sft(tmp_path, monkeypatch):
    """The real products, in smoke and a private cache: chapter 01's NEAR_THRESHOLD reaches the record."""
    monkeypatch.setenv("FTLIB_HOME", str(tmp_path))
    sft = registry.model_dir("course-sft", profile="smoke")
    base = course_home() / "base-smoke-seed0"
    standard, sft_before = read_record(base), (sft / ".complete").stat().st_mtime_ns
    assert standard["built_with"]["params"]["near_threshold"] == 0.6
    registry.model_dir("course-base", profile="smoke", params={"near_threshold": 0.5})
    variant = read_record(base)
    assert variant["built_with"]["params"] == {**standard["built_with"]["params"], "near_threshold": 0.5}
    assert variant["built_with"]["rows_sha256"] != standard["built_with"]["rows_sha256"]   # other data
    assert variant["inputs"] == standard["inputs"]                          # same recipe, other parameters
    with pytest.warns(registry.NonDefaultProductWarning, match="near_threshold=0.5"):
        registry.model_dir("course-sft", profile="smoke")
    rebuilt = read_record(sft)
    assert rebuilt["inputs"]["needs"]["course-base"]["built_with"]["params"]["near_threshold"] == 0.5
    assert (sft / ".complete").stat().st_mtime_ns > max(sft_before, (base / ".complete").stat().st_mtime_ns)
