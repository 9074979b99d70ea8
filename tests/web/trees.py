"""Trees for the web observer's tests and screenshots, importable by path
(``tests.web.trees:HEALTHY``) from the repository's root, where ``otp-py`` runs."""

from __future__ import annotations

import asyncio
import sys
import time

import otp_py as otp


def serve_forever(name: str) -> None:
    """A process child that logs a line now and then and runs until it is stopped."""
    print(f"{name}: listening", flush=True)
    count = 0
    while True:
        time.sleep(5)
        count += 1
        print(f"{name}: {count * 5} s up, all well", flush=True)


def parse_feed(after: float) -> None:
    """A process child that reads a feed, and crashes on a bad record ``after`` s in."""
    print("reader: connected to the feed", flush=True)
    time.sleep(after)
    print("reader: record 1042 has no 'price' field", file=sys.stderr, flush=True)
    record = {"id": 1042, "qty": 3}
    price = record["price"]  # the crash the page shows, with its traceback
    print(price)


def wait_in_thread() -> None:
    """A thread child that runs until it is asked to stop."""
    otp.wait_for_stop()


async def idle() -> None:
    """An asyncio child that runs until it is cancelled."""
    await asyncio.Event().wait()


def shop(*, crash_every: float | None) -> otp.SupervisorSpec:
    """A small shop's tree: a web front, an API, a cache, a pool of workers and an
    ingest pipeline whose reader crashes every ``crash_every`` seconds (None: never)."""
    reader = (otp.ChildSpec.process("reader", parse_feed, args=(crash_every,))
              if crash_every is not None else
              otp.ChildSpec.process("reader", serve_forever, args=("reader",)))
    return otp.SupervisorSpec(
        id="shop",
        strategy="one_for_one",
        intensity=otp.SlidingWindow(max_restarts=10, period=10),
        children=[
            otp.ChildSpec.command("web", [sys.executable, "-u", "-c", (
                "import time\nprint('web: serving on :8000')\nwhile True: time.sleep(60)")]),
            otp.ChildSpec.process("api", serve_forever, args=("api",)),
            otp.ChildSpec.asyncio("cache", idle),
            otp.SupervisorSpec(
                id="workers",
                strategy="one_for_all",
                intensity=otp.SlidingWindow(max_restarts=5, period=30),
                children=[
                    otp.ChildSpec.process("worker-1", serve_forever, args=("worker-1",)),
                    otp.ChildSpec.process("worker-2", serve_forever, args=("worker-2",)),
                    otp.ChildSpec.thread("scheduler", wait_in_thread),
                ],
            ),
            otp.SupervisorSpec(
                id="ingest",
                strategy="rest_for_one",
                intensity=otp.SlidingWindow(max_restarts=40, period=20)
                & otp.ExponentialBackoff(initial=0.2, maximum=0.4, reset_after=30.0),
                children=[
                    reader,
                    otp.ChildSpec.asyncio("parser", idle),
                ],
            ),
        ],
    )


HEALTHY = shop(crash_every=None)
"""Every child stays up."""

CRASH_LOOP = shop(crash_every=0.4)
"""``ingest/reader`` crashes 0.4 s after each start; its supervisor keeps restarting it."""


def crash_once(flag: str) -> None:
    """A process child that prints a line, then crashes on its first run only (the
    file ``flag`` remembers); later runs stay up."""
    import os

    print("worker: hello from the worker", flush=True)
    if not os.path.exists(flag):
        with open(flag, "w"):
            pass
        raise RuntimeError("first run fails on purpose")
    while True:
        time.sleep(1)


async def crash_when(event: asyncio.Event) -> None:
    """An asyncio child that crashes when ``event`` is set (and stays up after its
    restart, once the event is cleared)."""
    await event.wait()
    event.clear()
    raise ConnectionResetError("connection lost on purpose")
