"""The kernel that runs a learner's submission under the autograder: a memory cap and a guard on files.

``python -m ftlib.course.sandbox -f CONNECTION_FILE`` starts an IPython kernel (it is the kernelspec
``ftcourse-grader`` that :mod:`ftlib.course.cohort` writes) after it has

- capped the process's address space (``FTLIB_SANDBOX_MEMORY_GB``, default 6): an allocation past it
  raises ``MemoryError`` in the cell instead of taking the machine's memory from everyone else;
- installed a Python audit hook (PEP 578; once installed it cannot be removed from Python code) that
  refuses, with ``PermissionError``, and logs as JSON lines to ``FTLIB_SANDBOX_LOG``:
  - writing, renaming or deleting anything outside the submission's folder (the kernel's working
    directory) and its own temporary folder (``TMPDIR``);
  - reading anything under the roots in ``FTLIB_SANDBOX_DENY`` (``os.pathsep``-separated: the
    solutions, the tests, the course directory with the instructor copies and other learners' work),
    except the submission's own folder;
  - starting a process, or opening a network connection, straight from a notebook cell (a library
    the course calls, such as ``ftlib.engine.ddp_demo`` launching ``torchrun``, may still do so).

What it does not stop: Python code in the same kernel can still reach the checker's module and
change it. The grader (:func:`ftlib.course.cohort.suspicious`) therefore also reads every answer
cell before running it and gives no points to one that touches the checkers, the environment or
the library function that is the answer. Network access is additionally absent on the course's
grading machines (offline).
"""
from __future__ import annotations

import json
import os
import re
import resource
import sys
import sysconfig

MEMORY_ENV, LOG_ENV, DENY_ENV = "FTLIB_SANDBOX_MEMORY_GB", "FTLIB_SANDBOX_LOG", "FTLIB_SANDBOX_DENY"
_CELL_FILE = re.compile(r"(ipykernel_\d+[/\\]\d+\.py$)|(^<ipython-input-)")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = {"os.remove": 0, "os.rename": 0, "os.replace": 0, "os.rmdir": 0, "os.mkdir": 0,
                "os.symlink": 1, "os.link": 1, "os.truncate": 0, "os.chmod": 0, "os.chown": 0,
                "shutil.rmtree": 0, "shutil.move": 1, "shutil.copyfile": 1}
_DEVICES = {"/dev/null", "/dev/tty", "/dev/stdout", "/dev/stderr"}
_PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                   "os.forkpty", "pty.spawn"}
_NETWORK_EVENTS = {"socket.connect", "socket.bind", "socket.sendto"}


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


class Guard:
    """The audit hook's state: where writes may go, which reads are refused, and the log."""

    def __init__(self, write_roots: list[str], deny_roots: list[str], log_path: str | None):
        self.write_roots = [os.path.realpath(r) for r in write_roots]
        self.deny_roots = [os.path.realpath(r) for r in deny_roots if r]
        self.log = open(log_path, "a", encoding="utf-8") if log_path else None   # opened before the hook
        skip = {sysconfig.get_paths()["stdlib"]}
        self._skip = tuple(os.path.realpath(p) for p in skip)
        self._busy = False

    def refuse(self, what: str, target: str) -> None:
        frame = self._cell_frame()
        where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else "library code"
        if self.log:
            self.log.write(json.dumps({"what": what, "target": target, "where": where}) + "\n")
            self.log.flush()
        raise PermissionError(f"the grader does not allow this submission to {what} {target}")

    def _cell_frame(self):
        """The innermost frame of a notebook cell on the stack, or None."""
        frame = sys._getframe(2)
        while frame is not None:
            if _CELL_FILE.search(frame.f_code.co_filename):
                return frame
            frame = frame.f_back
        return None

    def _from_cell(self) -> bool:
        """Whether the nearest caller outside the standard library, IPython and ipykernel is a cell."""
        frame = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_filename
            if _CELL_FILE.search(name):
                return True
            module = frame.f_globals.get("__name__", "")
            stdlib = name.startswith(self._skip) or name.startswith("<frozen")
            if not (stdlib or module.split(".")[0] in ("IPython", "ipykernel")
                    or module == __name__):
                return False
            frame = frame.f_back
        return False

    def __call__(self, event: str, args: tuple) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            self._check(event, args)
        finally:
            self._busy = False

    def _check(self, event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (list(args) + [None, None])[:3]
            if not isinstance(path, (str, bytes, os.PathLike)):
                return                                                    # an open file descriptor
            real = os.path.realpath(os.fsdecode(path))
            writing = (isinstance(mode, str) and any(m in mode for m in "wax+")) or \
                      (isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writing and not (_under(real, self.write_roots) or real in _DEVICES):
                self.refuse("write", real)
            if _under(real, self.deny_roots) and not _under(real, self.write_roots):
                self.refuse("read", real)
        elif event in _PATH_EVENTS:
            for arg in args[:_PATH_EVENTS[event] + 1]:
                if isinstance(arg, (str, bytes, os.PathLike)):
                    real = os.path.realpath(os.fsdecode(arg))
                    if not _under(real, self.write_roots):
                        self.refuse("change", real)
        elif event in _PROCESS_EVENTS and self._from_cell():
            self.refuse("start a process:", repr(args[0] if args else event)[:200])
        elif event in _NETWORK_EVENTS and self._from_cell():
            self.refuse("open a network connection to", repr(args[1] if len(args) > 1 else args)[:200])


def install(write_roots: list[str], deny_roots: list[str], log_path: str | None, memory_gb: float | None) -> Guard:
    """Cap memory and install the guard in this process (for good: audit hooks cannot be removed)."""
    if memory_gb:
        cap = int(memory_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    guard = Guard(write_roots, deny_roots, log_path)
    sys.addaudithook(guard)
    return guard


def main() -> None:
    import tempfile
    env = os.environ
    install(write_roots=[os.getcwd(), tempfile.gettempdir()],
            deny_roots=env.get(DENY_ENV, "").split(os.pathsep),
            log_path=env.get(LOG_ENV), memory_gb=float(env.get(MEMORY_ENV, "6")))
    from ipykernel import kernelapp
    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
