import pytest

from ftlib.engine.profiles import NAMES, PROFILES, by_profile, default_profile, resolve


def test_every_profile_is_defined_and_grows():
    assert tuple(PROFILES) == NAMES
    smoke, cpu, gpu = (PROFILES[n] for n in NAMES)
    assert smoke.train_steps < cpu.train_steps < gpu.train_steps
    assert smoke.eval_examples < cpu.eval_examples < gpu.eval_examples


def test_default_comes_from_environment(monkeypatch):
    monkeypatch.setenv("FTLIB_PROFILE", "gpu")
    assert default_profile() == "gpu" and resolve().name == "gpu"
    monkeypatch.delenv("FTLIB_PROFILE")
    assert default_profile() == "cpu"


def test_unknown_profile_names_the_choices(monkeypatch):
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        resolve("laptop")
    monkeypatch.setenv("FTLIB_PROFILE", "fast")
    with pytest.raises(ValueError, match="'fast'"):
        default_profile()


def test_by_profile_picks_and_insists_on_all_three():
    assert by_profile("smoke", smoke=1, cpu=2, gpu=3) == 1
    assert by_profile("gpu", smoke=1, cpu=2, gpu=3) == 3
    with pytest.raises(ValueError, match="missing"):
        by_profile("cpu", smoke=1, cpu=2)
    with pytest.raises(ValueError, match="unknown"):
        by_profile("cpu", smoke=1, cpu=2, gpu=3, tpu=4)
