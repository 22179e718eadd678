"""``python -m ftlib.course ...``: the runner's command line (see :mod:`ftlib.course.runner`)."""
from ftlib.course.runner import main

raise SystemExit(main())
