"""The course cache: find a chapter's product, or build it.

Everything the chapters hand to each other (the dequantized SmolLM2, the course base model,
later the SFT and aligned checkpoints) lives under ``FTLIB_HOME`` (default ``~/.cache/ftlib``),
one directory per product, keyed by profile and seed. A notebook asks for what it needs; if it
is missing, the same function the earlier chapter teaches builds it, at this profile's size.
So a learner who opens chapter 07 first still gets a working notebook.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

_DONE = ".complete"


def course_home() -> Path:
    """Root of the course cache: ``$FTLIB_HOME`` or ``~/.cache/ftlib``."""
    return Path(os.environ.get("FTLIB_HOME", Path.home() / ".cache" / "ftlib")).expanduser()


def display_path(path: str | Path) -> str:
    """A path as a learner should read it: ``$FTLIB_HOME/base-cpu-seed0``, not this machine's home.

    >>> import os; os.environ["FTLIB_HOME"] = "/tmp/x"; display_path("/tmp/x/base-cpu-seed0")
    '$FTLIB_HOME/base-cpu-seed0'
    >>> display_path("/somewhere/else/model")
    '…/else/model'
    """
    path = Path(path).resolve()
    try:
        return str(Path("$FTLIB_HOME") / path.relative_to(course_home().resolve()))
    except ValueError:
        return str(Path("…", *path.parts[-2:]))


def product_name(kind: str, profile: str, seed: int) -> str:
    """``product_name("base", "cpu", 0) == "base-cpu-seed0"``."""
    return f"{kind}-{profile}-seed{seed}"


def cached(name: str, build: Callable[[Path], object], *, rebuild: bool = False) -> Path:
    """Return ``course_home()/name``, first calling ``build(tmp_dir)`` if it is not there.

    The build writes into a temporary directory that is renamed only when it finished, so an
    interrupted build never leaves a half-written product behind.
    """
    final = course_home() / name
    if (final / _DONE).exists() and not rebuild:
        return final
    tmp = final.with_name(f".{name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / _DONE).write_text("ok\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def base_model_dir(profile: str | None = None, seed: int = 0, *, rebuild: bool = False) -> Path:
    """The course base model for ``(profile, seed)``: pretrained by chapter 01's recipe if missing."""
    from ftlib.pretrain import build_base_model
    from ftlib.profiles import resolve

    profile = resolve(profile).name
    return cached(product_name("base", profile, seed),
                  lambda out: build_base_model(out, profile=profile, seed=seed), rebuild=rebuild)
