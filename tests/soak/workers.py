"""The soak's workers: they run well until the chaos injector tells them to fail.

Process workers take orders by signal (SIGUSR1: crash, SIGUSR2: hold the GIL, i.e.
hang; SIGKILL and SIGSTOP come straight from the injector). Thread and task workers
share the test's process, so they take orders from :data:`ORDERS`, keyed by their
path in the tree. Module-level, so the fork server can unpickle them.
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


def process_worker() -> None:
    signal.signal(signal.SIGUSR1, _crash)
    signal.signal(signal.SIGUSR2, _hold_the_gil)
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
    while True:
        await asyncio.sleep(POLL)
        order = _take(context.path)
        if order == "crash":
            raise ChaosCrash("chaos: crash")
        if order == "hang":
            time.sleep(LOOP_BLOCK)  # a blocking call: the whole loop stalls
