"""The course on top: the papermill runner (``python -m ftlib.course``), the exercise checkers and
the solutions that make the instructor notebooks."""
