"""``python -m ftlib.course ...``: the runner's command line (see :mod:`ftlib.course.runner`), and
``python -m ftlib.course cohort ...`` for instructors (see :mod:`ftlib.course.cohort`)."""
import sys

if sys.argv[1:2] == ["cohort"]:
    from ftlib.course.grading import main as cohort_main
    raise SystemExit(cohort_main(sys.argv[2:]))

from ftlib.course.runner import main

raise SystemExit(main())
