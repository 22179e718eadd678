"""ftlib: the small helper library behind the ftcourse notebooks.

One module per concept (see README.md). Import what you need, e.g.::

    from ftlib.profiles import resolve
    from ftlib.models import load_model
"""

__version__ = "0.1.0"

import os as _os
import sys as _sys
import warnings as _warnings

# Shared CPUs: by default OpenMP threads spin-wait for each other, which on a laptop where another
# process uses a core makes torch several times slower (measured in ftlib/hardware.py's docstring).
# Sleeping instead costs little when the machine is idle. OpenMP reads this once, when torch loads,
# so it only takes effect if ftlib is imported first (run.sh, the kernel spec and the tests set it too).
if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# tqdm.auto asks for ipywidgets inside Jupyter; the course uses text progress bars on purpose
# (they survive papermill and nbval), so the hint is noise for a learner.
_warnings.filterwarnings("ignore", message="IProgress not found")
