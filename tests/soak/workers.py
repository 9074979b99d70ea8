"""The soak's workers: they run well until the chaos injector tells them to fail.

Process workers take orders by signal (SIGUSR1: crash, SIGUSR2: hold the GIL, i.e.
hang; SIGHUP: flood standard error; SIGWINCH: leave a daemon behind that escaped the
process group, then crash; SIGKILL and SIGSTOP come straight from the injector).
Command workers (``soak_command.py``) take SIGUSR1, SIGHUP and SIGWINCH alike. Thread
and task workers share the test's process, so they take orders from :data:`ORDERS`,
keyed by their path in the tree. Module-level, so the fork server can unpickle them.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import os
import signal
import sys
import threading
import time

import otp_py as otp

HERE = os.path.dirname(os.path.abspath(__file__))
COMMAND = [sys.executable, os.path.join(HERE, "soak_command.py")]
"""A command worker: exits with status 3 on SIGUSR1, obeys SIGTERM."""

POLL = 0.1
"""How often thread and task workers look for an order (and beat)."""

LOOP_BLOCK = 0.8
"""How long a hung task blocks the event loop (the watchdog's timeout is shorter)."""

FLOOD_BYTES = 8 * 2**20
"""How much a worker told to flood writes to its standard error, at once."""

DAEMON_NAME = "otp-soak-daemon"
"""The ``argv[0]`` of the daemons that escaping workers leave behind, so that the
soak can find any that survived, wherever they were reparented."""

STUBBORN = 3.0
"""How long a stubborn task swallows every cancellation, from the first one (longer
than its shutdown timeout, so its supervisor must give up on it and carry on)."""

ORDERS: dict[tuple[str, ...], str] = {}
EXECUTED: collections.Counter[str] = collections.Counter()
_lock = threading.Lock()


def give(path: tuple[str, ...], order: str) -> None:
    with _lock:
        ORDERS[path] = order


def _take(path: tuple[str, ...]) -> str | None:
    with _lock:
        order = ORDERS.pop(path, None)
        if order is not None:
            EXECUTED[order] += 1
        return order


def _forget(path: tuple[str, ...]) -> None:
    """A new life starts with no order left over from the previous one."""
    with _lock:
        ORDERS.pop(path, None)


class ChaosCrash(RuntimeError):
    """Raised by a worker told to crash."""


def _crash(signum: int, frame: object) -> None:
    raise ChaosCrash("chaos: crash")


def _hold_the_gil(signum: int, frame: object) -> None:
    libc = ctypes.PyDLL(None)  # the GIL stays held: the heartbeat responder starves
    while True:
        libc.sleep(3600)


def flood_stderr(*_: object) -> None:
    """Write :data:`FLOOD_BYTES` to standard error as fast as it is taken."""
    chunk = b"flood " * 10922 + b"\n"
    written = 0
    while written < FLOOD_BYTES:
        written += os.write(2, chunk)


def leave_a_daemon() -> None:
    """Double fork and ``setsid``: a ``sleep`` that is no longer in this process's
    group nor its child, as a daemonising program leaves behind."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", [DAEMON_NAME, "3600"])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _escape_and_crash(signum: int, frame: object) -> None:
    leave_a_daemon()
    raise ChaosCrash("chaos: crash, leaving a daemon behind")


def process_worker() -> None:
    signal.signal(signal.SIGUSR1, _crash)
    signal.signal(signal.SIGUSR2, _hold_the_gil)
    signal.signal(signal.SIGHUP, flood_stderr)
    signal.signal(signal.SIGWINCH, _escape_and_crash)
    otp.notify_ready()
    while True:
        time.sleep(3600)


def thread_worker() -> None:
    context = otp.current_child()
    assert context is not None
    _forget(context.path)
    otp.notify_ready()
    beating = True
    while not otp.wait_for_stop(POLL):
        order = _take(context.path)
        if order == "crash":
            raise ChaosCrash("chaos: crash")
        if order == "hang":
            beating = False  # still honours its stop token
        if beating:
            otp.heartbeat()


async def task_worker() -> None:
    context = otp.current_child()
    assert context is not None
    _forget(context.path)
    otp.notify_ready()
    stubborn = False
    while True:
        try:
            await asyncio.sleep(POLL)
        except asyncio.CancelledError:
            if not stubborn:
                raise
            await _swallow_cancellations(STUBBORN)
            return
        order = _take(context.path)
        if order == "crash":
            raise ChaosCrash("chaos: crash")
        if order == "hang":
            time.sleep(LOOP_BLOCK)  # a blocking call: the whole loop stalls
        if order == "stubborn":
            stubborn = True


async def _swallow_cancellations(seconds: float) -> None:
    """Ignore every cancellation for ``seconds`` (then end: the soak must not leave
    tasks behind for ever)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while loop.time() < until:
        try:
            await asyncio.sleep(until - loop.time())
        except asyncio.CancelledError:
            EXECUTED["swallowed a cancellation"] += 1
