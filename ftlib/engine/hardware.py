"""Hardware: pick the device and dtype, seed everything, measure time and peak memory.

Nothing in the course hard-codes ``cuda``: notebooks call :func:`pick_device` and
:func:`pick_dtype`, so the same cell runs on a laptop CPU, a CUDA GPU or Apple's MPS.

**Shared CPUs.** torch runs its CPU kernels on an OpenMP thread pool. Two things make it slow
when other processes use the cores, as they always do on a learner's laptop:

- *spin-waiting*: at the end of each parallel region an OpenMP thread busy-waits for the others
  (libgomp's default), burning the core the other process or the slower thread needs. Measured
  on 2 cores (SmolLM2 forward + backward, batch 4 x 64): 1.5 s per step alone; two such
  processes side by side, 5.0 s each when spinning (18 s on the first step), 2.8 s each with
  ``OMP_WAIT_POLICY=PASSIVE``, which costs about 15% when the machine is idle.
  ``import ftlib`` sets PASSIVE unless you set ``OMP_WAIT_POLICY`` yourself (set ``ACTIVE`` on a
  dedicated machine);
- *more threads than cores*: torch sizes its pool from the machine's cores, not from the cores
  this process may use (CPU affinity, a container's CPU quota). :func:`usable_cores` reads both, and
  importing this module caps torch's threads to it (``FTLIB_THREADS`` overrides).
"""
from __future__ import annotations

import os
import random
import threading
import time
import warnings

import numpy as np
import torch


def usable_cores() -> int:
    """Cores this process may really use: CPU affinity, capped by a cgroup v2 CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def set_cpu_threads(n: int | None = None) -> int:
    """Size torch's CPU thread pool: ``n``, else ``$FTLIB_THREADS``, else :func:`usable_cores`."""
    n = n or int(os.environ.get("FTLIB_THREADS", 0)) or min(torch.get_num_threads(), usable_cores())
    torch.set_num_threads(n)
    return n


def threads_summary() -> str:
    """One line for an environment check: threads, usable cores and the OpenMP wait policy."""
    return (f"{torch.get_num_threads()} torch threads on {usable_cores()} usable cores, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset (spin)')}")


set_cpu_threads()


def pick_device(profile: str | None = None) -> torch.device:
    """CUDA if present, else Apple MPS, else CPU. ``FTLIB_DEVICE`` overrides.

    The ``gpu`` profile on a machine without a GPU still runs (slowly) on the CPU, with a warning.
    """
    forced = os.environ.get("FTLIB_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    if profile == "gpu":
        warnings.warn("PROFILE='gpu' but no GPU is visible: running on the CPU, which will be slow. "
                      "Use PROFILE='cpu' for a laptop-sized run.", stacklevel=2)
    return torch.device("cpu")


def pick_dtype(device: torch.device | str) -> torch.dtype:
    """bf16 on a GPU that supports it, fp16 on an older GPU, fp32 on the CPU.

    fp32 on the CPU is the safe default: bf16 is only faster on CPUs with native bf16 units.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so that a rerun gives the same numbers."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _rss_bytes() -> int:
    import psutil
    return psutil.Process().memory_info().rss


class measure:
    """Wall time and peak memory of a block::

        with measure() as m:
            train(...)
        print(m.seconds, m.peak_mb)

    On CUDA, ``peak_mb`` is ``torch.cuda.max_memory_allocated`` during the block (tensors only).
    On the CPU it is the peak resident memory of the whole process during the block, sampled
    every ``interval`` seconds by a background thread (so it includes the Python process and
    everything already loaded; compare ``peak_mb - start_mb`` for what the block added).
    """

    def __init__(self, device: torch.device | str | None = None, interval: float = 0.01):
        self.device = torch.device(device) if device is not None else pick_device()
        self.interval = interval
        self.seconds = 0.0
        self.peak_mb = 0.0
        self.start_mb = 0.0

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start_mb = torch.cuda.memory_allocated() / 2**20
        else:
            self._peak = _rss_bytes()
            self.start_mb = self._peak / 2**20
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self._peak, _rss_bytes()) / 2**20
        self.seconds = time.perf_counter() - self._t0
        return False

    def __repr__(self):
        return f"measure(seconds={self.seconds:.2f}, peak_mb={self.peak_mb:.0f}, start_mb={self.start_mb:.0f})"
