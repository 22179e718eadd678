"""The course cache: a directory per product, rebuilt when what it was built from changes.

Everything the chapters hand to each other (the dequantized SmolLM2, the course base model, the
SFT and aligned checkpoints) lives under ``FTLIB_HOME`` (default ``~/.cache/ftlib``), one
directory per product. Each directory records in ``product.json`` the inputs it was built from
(profile, seed, recipe, data hash, package versions); asking for it with other inputs rebuilds it.
This module only stores; :mod:`ftlib.products.registry` knows the products by name and how to build them.
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


def rows_hash(rows) -> str:
    """sha256 of what a product was trained on: a tensor of token ids (its shape and values) or a
    JSON-able value such as a list of texts or rows."""
    digest = hashlib.sha256()
    if hasattr(rows, "detach"):                                   # a torch tensor
        array = rows.detach().cpu().contiguous().numpy()
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    else:
        digest.update(json.dumps(rows, sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()


def _valid(final: Path, inputs: dict, accept: Callable[[dict], bool] | None) -> bool:
    if not (final / _DONE).exists():
        return False
    record = read_record(final) or {}
    return record.get("inputs", {}) == inputs and (accept is None or accept(record))


def cached(name: str, build: Callable[[Path], object], *, inputs: dict | None = None,
           rebuild: bool = False, accept: Callable[[dict], bool] | None = None) -> Path:
    """Return ``course_home()/name``, first calling ``build(tmp_dir)`` if it is missing, was
    built from other ``inputs`` (any JSON-able dict), ``accept(record)`` says no (e.g. it was built
    with other parameters), or ``rebuild`` is set (then ``build`` always runs: its product replaces
    whatever is there).

    Safe to share between processes (two kernels, a cohort on one server):

    - a product that is complete and current is returned without taking a lock, so a read-only
      ``FTLIB_HOME`` works once everything in it is built;
    - a build holds ``.<name>.lock`` (``filelock``); a second process asking for the same product
      waits, then finds the first one's product and uses it instead of building again;
    - the build writes into a temporary directory that replaces the old product only when it has
      finished, so a crashed or interrupted build leaves no half-written product behind (and what a
      killed build left is removed by the next one).

    Not covered: a process that is reading a product's files at the moment another one replaces
    it (a rebuild) can read some files of each. Rebuilds happen when inputs change or on request;
    a shared, read-only ``FTLIB_HOME`` has none.

    ``product.json`` records the inputs, what ``build`` returned if it is a dict (``built_with``:
    the parameters and data a registry product was really built with) and the build time.
    """
    from filelock import FileLock

    inputs = json.loads(json.dumps(inputs or {}))          # normalise (tuples -> lists)
    final = course_home() / name
    if not rebuild and _valid(final, inputs, accept):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.with_name(f".{name}.lock"))):
        if not rebuild and _valid(final, inputs, accept):   # built by another process while we waited
            return final
        for kind in ("tmp", "old"):                         # what a killed build left behind
            for left in final.parent.glob(f".{name}.{kind}-*"):
                shutil.rmtree(left, ignore_errors=True)
        tmp = final.with_name(f".{name}.tmp-{os.getpid()}")
        tmp.mkdir(parents=True)
        start = time.perf_counter()
        try:
            made = build(tmp)
            record = {"name": name, "inputs": inputs,
                      "built_with": json.loads(json.dumps(made)) if isinstance(made, dict) else None,
                      "build_seconds": round(time.perf_counter() - start, 1)}
            (tmp / RECORD).write_text(json.dumps(record, indent=1) + "\n")
            (tmp / _DONE).write_text("ok\n")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = final.with_name(f".{name}.old-{os.getpid()}")
        if final.exists():
            os.replace(final, old)                          # both renames are atomic on one filesystem
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    return final
