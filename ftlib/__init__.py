"""ftlib: the small helper library behind the ftcourse notebooks.

One module per concept (see README.md). Import what you need, e.g.::

    from ftlib.profiles import resolve
    from ftlib.models import load_model
"""

__version__ = "0.1.0"
