"""Children and probe functions for the probe tests (module level: a forkserver
child imports them)."""

from __future__ import annotations

import asyncio
import threading
import time

import otp_py as otp

BROKEN = threading.Event()
"""Set by a test: the probe functions below then say the child is not alive."""

RELEASE = threading.Event()
"""Set by a test to let :func:`blocking_check` return."""

CALLS: list[float] = []
"""When :func:`counting_check` was called (time.monotonic())."""


def sleep_forever() -> None:
    """A process child that runs until stopped."""
    while True:
        time.sleep(60)


def thread_forever() -> None:
    otp.wait_for_stop()


async def task_forever() -> None:
    await asyncio.Event().wait()


def alive() -> bool:
    return not BROKEN.is_set()


async def alive_async() -> bool:
    await asyncio.sleep(0)
    return not BROKEN.is_set()


def blocking_check() -> bool:
    """A plain-function probe that blocks (until the test sets RELEASE)."""
    RELEASE.wait(30)
    return True


def counting_check() -> None:
    CALLS.append(time.monotonic())


def serve_http(port: int, delay: float) -> None:
    """A process child serving HTTP on 127.0.0.1:port after ``delay`` seconds; with
    ``ready=True`` it says so once it has bound (before its probe can pass)."""
    import http.server

    time.sleep(delay)

    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with http.server.HTTPServer(("127.0.0.1", port), Quiet) as server:
        otp.notify_ready()  # (a no-op without ready=True)
        server.serve_forever()
