"""ftlib: the small helper library behind the ftcourse notebooks.

One module per concept (see README.md). Import what you need, e.g.::

    from ftlib.engine.profiles import resolve
    from ftlib.products.registry import load_model  # checkpoints by name, built on demand
"""

__version__ = "0.1.0"

import logging as _logging
import os as _os
import sys as _sys
import warnings as _warnings

# Shared CPUs: by default OpenMP threads spin-wait for each other, which on a laptop where another
# process uses a core makes torch several times slower (measured in ftlib/engine/hardware.py's docstring).
# Sleeping instead costs little when the machine is idle. OpenMP reads this once, when torch loads,
# so it only takes effect if ftlib is imported first (run.sh, the kernel spec and the tests set it too).
if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# tqdm.auto asks for ipywidgets inside Jupyter; the course uses text progress bars on purpose
# (they survive papermill and nbval), so the hint is noise for a learner.
_warnings.filterwarnings("ignore", message="IProgress not found")

class _DropRecord(_logging.Filter):
    """Drops the records of one logger whose message starts with ``prefix``; every other record passes."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: _logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


# (logger, the start of the one message dropped from it)
_NOTICES = (
    # bitsandbytes, on CPUs with AVX-512-BF16: the optional ``kernels`` package (which would download a CPU
    # kernel from the hub) is missing; bitsandbytes then uses the kernel it ships.
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community"),
    # DeepSpeed (which transformers and TRL import when it is installed), on a machine without a GPU:
    # "Setting accelerator to CPU. If you have GPU or other accelerator, we were unable to detect it."
    ("DeepSpeed", "Setting accelerator to CPU"),
)


def quiet_library_notices() -> None:
    """Silence three harmless notices at their source, and nothing else (idempotent). It runs when
    ``ftlib`` is imported, so it covers bitsandbytes and DeepSpeed however they are imported later
    (directly, or by peft, transformers and TRL):

    - the log lines in :data:`_NOTICES` (bitsandbytes' missing optional kernel, DeepSpeed's "Setting
      accelerator to CPU");
    - the ``FutureWarning`` that ``peft.PeftModel`` triggers by reading the deprecated
      ``is_gradient_checkpointing`` property of a transformers model.
    """
    for name, prefix in _NOTICES:
        logger = _logging.getLogger(name)
        if not any(isinstance(f, _DropRecord) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_DropRecord(prefix))
    _warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)


quiet_library_notices()
