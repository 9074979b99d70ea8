"""Children for the observe tests (module level: forkserver children import them)."""

from __future__ import annotations

import signal
import time
from typing import Any

import otp_py as otp


def _crash(signum: int, frame: Any) -> None:
    raise RuntimeError("asked to crash")


def crash_on_usr1() -> None:
    """Run until SIGUSR1 arrives, then crash with an exception (a real error exit);
    a graceful stop (SIGTERM) ends it at once, as usual. Ready (``ready=True``) once
    the signal would crash it, so a test never signals it too early."""
    signal.signal(signal.SIGUSR1, _crash)
    otp.notify_ready()
    while True:
        time.sleep(60)
