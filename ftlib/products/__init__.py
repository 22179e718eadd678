"""Products: the course's checkpoints by name (:mod:`.registry`), and what each is built from
(:mod:`.catalog` for chapters 01-05, :mod:`.alignment` for the assistant's products of chapters 06-07)."""
from ftlib.products import alignment, catalog  # noqa: F401  (register the course's products)
