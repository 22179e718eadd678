import pytest

from ftlib.checkpoints import cached, course_home, product_name


def test_cache_builds_once_and_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("FTLIB_HOME", str(tmp_path))
    calls = []

    def build(out):
        calls.append(out)
        (out / "weights.txt").write_text("w")

    first = cached("thing", build)
    second = cached("thing", build)
    assert first == second == course_home() / "thing" and len(calls) == 1
    assert (first / "weights.txt").read_text() == "w"
    cached("thing", build, rebuild=True)
    assert len(calls) == 2


def test_interrupted_build_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("FTLIB_HOME", str(tmp_path))

    def broken(out):
        (out / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached("thing", broken)
    assert list(tmp_path.iterdir()) == []      # neither the product nor its temporary folder
    assert cached("thing", lambda out: (out / "ok").write_text("1")).joinpath("ok").exists()


def test_product_names_key_profile_and_seed():
    assert product_name("base", "cpu", 0) == "base-cpu-seed0"
    assert product_name("base", "cpu", 0) != product_name("base", "cpu", 1)


def test_display_path_hides_the_machine(tmp_path, monkeypatch):
    from ftlib.checkpoints import display_path
    monkeypatch.setenv("FTLIB_HOME", str(tmp_path / "home"))
    assert display_path(tmp_path / "home" / "base-cpu-seed0") == "$FTLIB_HOME/base-cpu-seed0"
    assert str(tmp_path) not in display_path(tmp_path / "elsewhere" / "x" / "y")
