"""Children that decline their start (raise otp.Ignore before they are up), for
tests/runtime/test_ignore.py; a module of its own so process children can import it."""

from __future__ import annotations

import threading
import time

import otp_py as otp


def proc_ignore() -> None:
    raise otp.Ignore("not configured here")


def thread_ignore() -> None:
    raise otp.Ignore("not configured here")


async def task_ignore() -> None:
    raise otp.Ignore("not configured here")


_runs: dict[str, int] = {}
_lock = threading.Lock()


def thread_ignore_after_up(key: str) -> None:
    """Up at once (no readiness): raising Ignore on its first run is an exit, too
    late to decline; its restart runs until stopped."""
    with _lock:
        _runs[key] = _runs.get(key, 0) + 1
        first = _runs[key] == 1
    if first:
        raise otp.Ignore("too late")
    while not otp.stop_requested():
        time.sleep(0.01)
