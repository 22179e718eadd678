"""The course cache: a directory per product, rebuilt when what it was built from changes.

Everything the chapters hand to each other (the dequantized SmolLM2, the course base model, the
SFT and aligned checkpoints) lives under ``FTLIB_HOME`` (default ``~/.cache/ftlib``), one
directory per product. Each directory records in ``product.json`` the inputs it was built from
(profile, seed, recipe, data hash, package versions); asking for it with other inputs rebuilds it.
This module only stores; :mod:`ftlib.registry` knows the products by name and how to build them.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

_DONE = ".complete"
RECORD = "product.json"
PACKAGES = ("torch", "transformers", "tokenizers", "peft", "trl")


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


def package_versions(packages=PACKAGES) -> dict[str, str]:
    """Installed versions of the packages a build depends on (missing ones as ``"absent"``)."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def file_hash(*paths: str | Path) -> str:
    """sha256 over the bytes of ``paths`` (in order): the data a product was built from."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def read_record(directory: str | Path) -> dict | None:
    """The ``product.json`` of a built product, or None if there is none."""
    path = Path(directory) / RECORD
    return json.loads(path.read_text()) if path.exists() else None


def cached(name: str, build: Callable[[Path], object], *, inputs: dict | None = None,
           rebuild: bool = False) -> Path:
    """Return ``course_home()/name``, first calling ``build(tmp_dir)`` if it is missing, was
    built from other ``inputs`` (any JSON-able dict), or ``rebuild`` is set.

    The build writes into a temporary directory that is renamed only when it finished, so an
    interrupted build never leaves a half-written product behind. ``product.json`` records the
    inputs and the build time in seconds.
    """
    inputs = json.loads(json.dumps(inputs or {}))          # normalise (tuples -> lists)
    final = course_home() / name
    if (final / _DONE).exists() and not rebuild:
        record = read_record(final) or {}
        if record.get("inputs", {}) == inputs:
            return final
    tmp = final.with_name(f".{name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    try:
        build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    record = {"name": name, "inputs": inputs, "build_seconds": round(time.perf_counter() - start, 1)}
    (tmp / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    (tmp / _DONE).write_text("ok\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final
