"""Profiles: how big a notebook run is.

Every notebook has a papermill ``parameters`` cell with ``PROFILE``. Three profiles exist:

- ``smoke``: seconds per notebook. CI runs it; it proves the code runs, not that it learns.
- ``cpu``:   minutes on a 2-core laptop; big enough that each chapter's effect shows.
- ``gpu``:   full size on one GPU, bf16.

The default comes from the environment variable ``FTLIB_PROFILE`` (else ``cpu``), so
``FTLIB_PROFILE=smoke pytest --nbval-lax notebooks`` runs every chapter small.

>>> resolve("smoke").name
'smoke'
>>> by_profile("cpu", smoke=10, cpu=400, gpu=4000)
400
"""
from __future__ import annotations

import os
from dataclasses import dataclass

NAMES = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Profile:
    name: str             # smoke | cpu | gpu
    train_steps: int      # optimiser steps for a chapter's main training run
    batch_size: int       # sequences per optimiser step (before accumulation)
    seq_len: int          # tokens per training sequence
    eval_examples: int    # held-out examples per evaluation
    max_new_tokens: int   # generation budget when scoring answers
    note: str             # one line for tables


PROFILES = {
    "smoke": Profile("smoke", train_steps=4, batch_size=2, seq_len=64, eval_examples=4,
                     max_new_tokens=12, note="seconds; CI; proves it runs"),
    "cpu": Profile("cpu", train_steps=150, batch_size=4, seq_len=128, eval_examples=100,
                   max_new_tokens=24, note="minutes on 2 cores; shows the effect"),
    "gpu": Profile("gpu", train_steps=600, batch_size=16, seq_len=256, eval_examples=400,
                   max_new_tokens=32, note="full size on one GPU, bf16"),
}


def default_profile() -> str:
    """The profile named by ``FTLIB_PROFILE``, else ``cpu``."""
    return check_name(os.environ.get("FTLIB_PROFILE", "cpu"))


def check_name(name: str) -> str:
    """Return ``name`` if it is a profile, else raise a ValueError that lists the valid ones."""
    if name not in PROFILES:
        raise ValueError(f"unknown PROFILE {name!r}: choose one of {', '.join(NAMES)} "
                         "(set it in the parameters cell, with papermill -p PROFILE ..., "
                         "or with the FTLIB_PROFILE environment variable)")
    return name


def resolve(name: str | None = None) -> Profile:
    """The :class:`Profile` for ``name`` (default: :func:`default_profile`)."""
    return PROFILES[check_name(name or default_profile())]


def by_profile(name: str, **values):
    """Pick a chapter's own knob by profile: ``by_profile(PROFILE, smoke=8, cpu=200, gpu=2000)``.

    Every profile must be given, so that no profile silently falls back to another's size.
    """
    check_name(name)
    missing = [p for p in NAMES if p not in values]
    if missing:
        raise ValueError(f"by_profile needs a value for every profile; missing {missing}")
    unknown = sorted(set(values) - set(NAMES))
    if unknown:
        raise ValueError(f"by_profile got unknown profiles {unknown}")
    return values[name]
