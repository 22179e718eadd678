import pytest

from ftlib.engine.cache import cached, course_home, product_name


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
    left = [p.name for p in tmp_path.iterdir()]
    assert left == [".thing.lock"]             # neither the product nor its temporary folder (the lock stays)
    assert cached("thing", lambda out: (out / "ok").write_text("1")).joinpath("ok").exists()


def test_product_names_key_profile_and_seed():
    assert product_name("base", "cpu", 0) == "base-cpu-seed0"
    assert product_name("base", "cpu", 0) != product_name("base", "cpu", 1)


def test_display_path_hides_the_machine(tmp_path, monkeypatch):
    from ftlib.engine.cache import display_path
    monkeypatch.setenv("FTLIB_HOME", str(tmp_path / "home"))
    assert display_path(tmp_path / "home" / "base-cpu-seed0") == "$FTLIB_HOME/base-cpu-seed0"
    assert str(tmp_path) not in display_path(tmp_path / "elsewhere" / "x" / "y")


_BUILDER = """
import os, sys, time
from pathlib import Path
from ftlib.engine.cache import cached

def build(out):
    with open(os.environ["BUILD_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")
    (out / "weights.txt").write_text(f"built by {os.getpid()}")
    time.sleep(1.5)                      # long enough for the other process to arrive meanwhile

path = cached("shared", build, inputs={"recipe": 1})
print(path, (path / "weights.txt").read_text())
"""


def test_two_processes_building_the_same_product_build_it_once_and_both_use_it(tmp_path):
    import os
    import subprocess
    import sys
    env = {**os.environ, "FTLIB_HOME": str(tmp_path / "home"), "BUILD_LOG": str(tmp_path / "builds.log")}
    procs = [subprocess.Popen([sys.executable, "-c", _BUILDER], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    builders = (tmp_path / "builds.log").read_text().split()
    assert len(builders) == 1                                   # one build; the other process waited
    assert outs[0] == outs[1] == f"{tmp_path / 'home' / 'shared'} built by {builders[0]}"
    home = sorted(p.name for p in (tmp_path / "home").iterdir())
    assert home == [".shared.lock", "shared"]                   # no temporary or old copies left
    assert (tmp_path / "home" / "shared" / "weights.txt").exists()


def test_a_rebuild_replaces_the_product_only_when_the_new_one_is_complete(tmp_path, monkeypatch):
    monkeypatch.setenv("FTLIB_HOME", str(tmp_path))
    first = cached("thing", lambda out: (out / "w.txt").write_text("old"), inputs={"a": 1})

    def broken(out):
        (out / "w.txt").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cached("thing", broken, inputs={"a": 2})
    assert (first / "w.txt").read_text() == "old"               # the old product is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == [".thing.lock", "thing"]


def test_a_complete_current_product_is_returned_without_taking_the_lock(tmp_path, monkeypatch):
    """What makes a read-only shared FTLIB_HOME work: reading never needs to write a lock file."""
    import filelock
    monkeypatch.setenv("FTLIB_HOME", str(tmp_path))
    built = cached("thing", lambda out: (out / "w.txt").write_text("w"), inputs={"a": 1})

    def no_lock(*args, **kwargs):
        raise PermissionError("read-only FTLIB_HOME")
    monkeypatch.setattr(filelock, "FileLock", no_lock)
    assert cached("thing", lambda out: None, inputs={"a": 1}) == built
    with pytest.raises(PermissionError):                     # a build, by contrast, needs to write
        cached("thing", lambda out: None, inputs={"a": 2})


_SAVER = """
import os, sys, time
from ftlib.engine.cache import cached

def build(out):
    (out / "weights.txt").write_text(sys.argv[1])
    time.sleep(float(sys.argv[2]))

path = cached("shared", build, inputs={"recipe": 1}, rebuild=sys.argv[1] == "saved")
print((path / "weights.txt").read_text())
"""


def test_a_rebuild_that_waited_for_another_build_still_stores_its_own_product(tmp_path):
    """What save_product relies on: rebuild=True replaces the product even when another process
    finished a build of it while this one waited for the lock."""
    import os
    import subprocess
    import sys
    import time
    env = {**os.environ, "FTLIB_HOME": str(tmp_path / "home")}
    builder = subprocess.Popen([sys.executable, "-c", _SAVER, "built", "2.0"], env=env, stdout=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 60
    while not list((tmp_path / "home").glob(".shared.tmp-*")):              # the builder holds the lock
        assert time.time() < deadline and builder.poll() is None, "the builder never started building"
        time.sleep(0.05)
    saver = subprocess.run([sys.executable, "-c", _SAVER, "saved", "0"], env=env, capture_output=True, text=True,
                           timeout=120)
    assert builder.communicate(timeout=120)[0].strip() == "built"
    assert saver.stdout.strip() == "saved"
    assert (tmp_path / "home" / "shared" / "weights.txt").read_text() == "saved"
