"""Products: the course's checkpoints by name (:mod:`.registry`), and what each is built from (:mod:`.catalog`)."""
from ftlib.products import catalog  # noqa: F401  (registers the course's products)
