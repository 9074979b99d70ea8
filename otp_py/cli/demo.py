"""The tree ``otp-py demo`` runs: every kind of child, some crashing on purpose.

::

    demo                 one_for_one, at most 20 restarts in 10 s
    ├── clock            asyncio task, stays up
    ├── steady           OS process, stays up
    ├── flaky-proc       OS process, raises RuntimeError every 2 s
    ├── flaky-thread     thread, raises ValueError every 3 s
    ├── batch            external command, exits with status 3 every 3 s (transient)
    └── pool             one_for_all, with a backoff before restarts
        ├── conn         asyncio task, loses its connection every 2.5 s
        └── reader       asyncio task; restarted with conn (one_for_all)

Restarts show within the first seconds, and the budgets are roomy enough that the
tree runs until it is stopped. The children are module-level functions so that
process children can be loaded by otp_py's fork server.
"""

from __future__ import annotations

import asyncio
import sys
import time

import otp_py as otp

__all__ = ["flaky_connection", "flaky_process", "flaky_thread", "idle", "steady_process",
           "tree"]


def steady_process() -> None:
    """An OS process that stays up until it is stopped."""
    while True:
        time.sleep(3600)


def flaky_process(every: float) -> None:
    """An OS process that crashes ``every`` seconds after it starts."""
    time.sleep(every)
    raise RuntimeError(f"crashed on purpose after {every:g} s")


def flaky_thread(every: float) -> None:
    """A thread that crashes ``every`` seconds after it starts, unless asked to stop
    first (threads stop cooperatively)."""
    if otp.wait_for_stop(every):
        return
    raise ValueError(f"thread crashed on purpose after {every:g} s")


async def idle() -> None:
    """An asyncio task that stays up until it is cancelled."""
    while True:
        await asyncio.sleep(3600)


async def flaky_connection(every: float) -> None:
    """An asyncio task that 'loses its connection' ``every`` seconds after it starts."""
    await asyncio.sleep(every)
    raise ConnectionResetError(f"connection lost on purpose after {every:g} s")


def tree() -> otp.SupervisorSpec:
    """The demo tree (see the module docstring)."""
    batch = [sys.executable, "-c", "import sys, time; time.sleep(3); sys.exit(3)"]
    return otp.SupervisorSpec(
        id="demo",
        strategy="one_for_one",
        intensity=otp.SlidingWindow(max_restarts=20, period=10),
        children=[
            otp.ChildSpec.task("clock", idle),
            otp.ChildSpec.process("steady", steady_process),
            otp.ChildSpec.process("flaky-proc", flaky_process, args=(2.0,)),
            otp.ChildSpec.thread("flaky-thread", flaky_thread, args=(3.0,)),
            otp.ChildSpec.command("batch", batch, restart="transient", shutdown=2.0),
            otp.SupervisorSpec(
                id="pool",
                strategy="one_for_all",
                intensity=otp.SlidingWindow(max_restarts=5, period=10)
                & otp.ExponentialBackoff(initial=0.5, maximum=4.0, reset_after=2.0),
                children=[
                    otp.ChildSpec.task("conn", flaky_connection, args=(2.5,)),
                    otp.ChildSpec.task("reader", idle),
                ],
            ),
        ],
    )


INTRO = (
    "demo: a tree of process, thread, command and asyncio children; flaky-proc, "
    "flaky-thread, batch and pool/conn crash on purpose and are restarted",
)
