"""ftlib: the small helper library behind the ftcourse notebooks.

One module per concept (see README.md). Import what you need, e.g.::

    from ftlib.profiles import resolve
    from ftlib.models import load_model
"""

__version__ = "0.1.0"

import warnings as _warnings

# tqdm.auto asks for ipywidgets inside Jupyter; the course uses text progress bars on purpose
# (they survive papermill and nbval), so the hint is noise for a learner.
_warnings.filterwarnings("ignore", message="IProgress not found")
