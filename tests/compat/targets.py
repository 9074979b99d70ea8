"""Targets for the OFASupervisor tests: module-level, so any start method can run them.

Every target first tells the test it is running, over the write end of a pipe
(``events``): ``(kind, pid, time.monotonic(), *details)``. Targets that behave
differently on later starts count their starts in a file (``starts``): one child
runs at a time under a one_for_all supervisor, so no lock is needed.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection
from typing import Any


def tell(events: Connection, kind: str, *details: Any) -> None:
    events.send((kind, os.getpid(), time.monotonic(), *details))


def start_number(starts: str) -> int:
    """1 on the first start, 2 on the second..."""
    with open(starts, "a+") as f:
        f.seek(0)
        number = len(f.read().splitlines()) + 1
        f.write(f"{os.getpid()}\n")
    return number


def forever() -> None:
    while True:
        time.sleep(3600)


def run_forever(events: Connection) -> None:
    tell(events, "running")
    forever()


def echo(events: Connection, *args: Any, **kwargs: Any) -> None:
    """Report the arguments it was called with."""
    tell(events, "running", args, kwargs)
    forever()


def report_process(events: Connection, starts: str, crashes: int) -> None:
    """Report the class of the process running us and its parent; crash the first
    ``crashes`` times."""
    number = start_number(starts)
    process = multiprocessing.current_process()
    tell(events, "running", number, type(process).__qualname__, os.getppid())
    if number <= crashes:
        raise RuntimeError(f"crash {number}")
    forever()


def return_at_once(events: Connection) -> None:
    tell(events, "running")


def crash(events: Connection) -> None:
    tell(events, "running")
    raise RuntimeError("crash")


def crash_first(events: Connection, starts: str, crashes: int, lifetime: float = 0.0) -> None:
    """Crash on each of the first ``crashes`` starts, ``lifetime`` seconds after
    starting; then run forever."""
    number = start_number(starts)
    tell(events, "running", number)
    if number <= crashes:
        if lifetime:
            time.sleep(lifetime)
        tell(events, "crashing", number)
        raise RuntimeError(f"crash {number}")
    forever()


def freeze(events: Connection) -> None:
    """Stop answering pings by freezing the whole process (SIGSTOP)."""
    tell(events, "running")
    tell(events, "freezing")
    os.kill(os.getpid(), signal.SIGSTOP)
    forever()


def hold_gil(events: Connection) -> None:
    """Stop answering pings by holding the GIL in a blocking C call, so the ping
    responder thread never runs; SIGTERM still interrupts the call and stops us."""
    tell(events, "running")
    tell(events, "freezing")
    ctypes.PyDLL(None).sleep(3600)  # PyDLL: the GIL stays held during the call
    forever()


def ignore_sigterm(events: Connection) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tell(events, "running")
    forever()


def square(n: int) -> int:
    return n * n


_both_busy: Any = None


def _share_barrier(barrier: Any) -> None:
    global _both_busy  # one per pool worker process
    _both_busy = barrier


def _busy(_: int) -> None:
    _both_busy.wait()
    forever()


def pool(events: Connection, then: str = "run") -> None:
    """Run a pool of two workers and report their pids; then ``"run"`` forever,
    ``"crash"``, ``"busy_crash"`` (crash once both workers are busy with a task), or
    ``"freeze"`` this process (not the workers) with SIGSTOP."""
    both_busy = multiprocessing.Barrier(3)
    with multiprocessing.Pool(2, initializer=_share_barrier, initargs=(both_busy,)) as workers:
        assert workers.map(square, range(4)) == [0, 1, 4, 9]
        pids = sorted(p.pid for p in multiprocessing.active_children() if p.pid is not None)
        tell(events, "running", pids)
        if then == "busy_crash":
            workers.map_async(_busy, range(2), chunksize=1)
            both_busy.wait(timeout=20)
            raise RuntimeError("the pool's process crashed")
        if then == "crash":
            raise RuntimeError("the pool's process crashed")
        if then == "freeze":
            tell(events, "freezing")
            os.kill(os.getpid(), signal.SIGSTOP)
        forever()
