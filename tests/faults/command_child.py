"""Command children for the fault suite. Not a test module.

* ``python command_child.py MARKER HOW``: on its first run (MARKER does not exist
  yet) it ends the way HOW names, exactly as a Python program would; afterwards it
  runs until it is stopped.
* ``python command_child.py stubborn LOG NAME``: logs ``up NAME PID`` to LOG, then
  ``term NAME`` on every SIGTERM, which it otherwise ignores. (A shell's trap would
  run only once its foreground command ends, which makes the log racy.)
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time


def act(how: str) -> None:
    if how == "return":
        return
    if how == "raise":
        raise ValueError("boom")
    if how.startswith("exit"):
        sys.exit(int(how[4:]))
    if how.startswith("_exit"):
        os._exit(int(how[5:]))
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "sigsegv":
        ctypes.string_at(0)  # a real invalid read, not a signal sent
    raise AssertionError(f"unknown behaviour {how!r}")


def log_line(log: str, line: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


def stubborn(log: str, name: str) -> None:
    signal.signal(signal.SIGTERM, lambda signum, frame: log_line(log, f"term {name}"))
    log_line(log, f"up {name} {os.getpid()}")
    while True:
        signal.pause()


def main() -> None:
    if sys.argv[1] == "stubborn":
        stubborn(sys.argv[2], sys.argv[3])
        return
    marker, how = sys.argv[1], sys.argv[2]
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        while True:
            time.sleep(3600)
    os.close(fd)
    act(how)


if __name__ == "__main__":
    main()
