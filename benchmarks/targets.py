"""The children the benchmarks supervise, and the log they keep of their own lives.

Process children re-import this module (forkserver, spawn), so it imports only the
standard library's cheapest modules: what a child costs to start must be the
supervisor's doing, not ours.

A process child stamps its life into a log file shared by every generation of it:
fixed-size records ``(kind, pid, ns)`` appended with ``O_APPEND`` (atomic for writes
this small), where ``ns`` is ``CLOCK_MONOTONIC``, the same clock in every process of
the machine. ``START`` is the first thing the target does; ``EXIT`` the last thing
before ``os._exit(1)``: an abrupt crash, like a segfault or an OOM kill, the same for
every supervisor compared. The tiny C program (``tiny.c``) writes the same records.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator

__all__ = ["EXIT", "RECORD", "START", "crash_after", "idle", "read_log"]

RECORD = struct.Struct("<qqq")  # kind, pid, CLOCK_MONOTONIC ns
START = 1
EXIT = 2


def life_s(pid: int, low_s: float, high_s: float) -> float:
    """A lifetime between ``low_s`` and ``high_s``, varied by pid (no ``random``
    import in the child), so crashes do not fall in step with anything periodic."""
    return low_s + (pid * 7919 % 1000) / 1000.0 * (high_s - low_s)


def crash_after(log_path: str, low_s: float, high_s: float) -> None:
    """Stamp START, live a little, stamp EXIT, and die with exit status 1."""
    started = time.monotonic_ns()
    pid = os.getpid()
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.write(fd, RECORD.pack(START, pid, started))
    time.sleep(life_s(pid, low_s, high_s))
    os.write(fd, RECORD.pack(EXIT, pid, time.monotonic_ns()))
    os._exit(1)


def idle(socket_path: str | None = None) -> None:
    """Say "up" on a Unix datagram socket (if given), then sleep until stopped."""
    if socket_path is not None:
        import socket

        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"u", socket_path)
    while True:
        time.sleep(3600)


def read_log(path: str) -> Iterator[tuple[int, int, int]]:
    """The ``(kind, pid, ns)`` records of a log, in the order they were written."""
    with open(path, "rb") as f:
        data = f.read()
    usable = len(data) - len(data) % RECORD.size
    yield from RECORD.iter_unpack(data[:usable])
