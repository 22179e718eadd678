import os
import time

import numpy as np
import torch

from ftlib.engine.hardware import measure, pick_device, pick_dtype, seed_everything


def test_device_and_dtype_follow_the_hardware(monkeypatch):
    device = pick_device("cpu")
    assert device.type == ("cuda" if torch.cuda.is_available() else device.type)
    assert pick_dtype("cpu") == torch.float32
    monkeypatch.setenv("FTLIB_DEVICE", "cpu")
    assert pick_device("gpu") == torch.device("cpu")


def test_seed_everything_repeats_all_generators():
    seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))
    seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))
    seed_everything(4)
    c = torch.rand(3)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not torch.equal(a[0], c)


def test_measure_sees_time_and_a_large_allocation():
    with measure("cpu") as idle:
        time.sleep(0.05)
    with measure("cpu") as busy:
        block = torch.ones(64 * 2**20 // 4 * 4)  # 256 MB of fp32, touched
        block.add_(1)
        time.sleep(0.05)
        del block
    assert idle.seconds >= 0.05 and busy.seconds >= 0.05
    # the sampler must have seen the 256 MB block, which is freed before the block ends
    assert busy.peak_mb - busy.start_mb > 200, busy


def test_importing_ftlib_first_makes_openmp_threads_sleep_instead_of_spin():
    import os
    import subprocess
    import sys
    code = "import ftlib, os, torch; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"                  # a learner's own choice wins


def test_threads_never_exceed_the_usable_cores(monkeypatch):
    from ftlib.engine.hardware import set_cpu_threads, usable_cores
    before = torch.get_num_threads()
    try:
        assert 1 <= usable_cores() <= (os.cpu_count() or 1)
        assert set_cpu_threads() <= usable_cores()
        monkeypatch.setenv("FTLIB_THREADS", "1")
        assert set_cpu_threads() == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
