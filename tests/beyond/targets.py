"""Child targets for the "beyond OTP" tests. Module-level, in an importable module,
so forkserver children can unpickle them and exception classes keep their qualified
names across the process boundary (a decider matches classes by those names)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import otp_py as otp


class ConfigError(Exception):
    """A failure no restart can fix."""


class MissingSetting(ConfigError):
    """A subclass: rules on ConfigError match it too."""


def _raise(what: str) -> None:
    if what == "config":
        raise MissingSetting("missing setting 'api_key'")
    if what == "value":
        raise ValueError("boom")
    if what == "do_not_restart":
        raise otp.DoNotRestart("nothing left to do")
    if what == "shutdown_tree":
        raise otp.ShutdownTree("all work done")
    if what.startswith("exit"):
        sys.exit(int(what[4:]))
    if what == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError(f"unknown failure {what!r}")


def _count_run(counter: str) -> int:
    """Count this run in the file ``counter``; return its number (1 for the first).
    Runs of one child never overlap, so a plain read and write is enough."""
    try:
        with open(counter) as f:
            runs = int(f.read() or 0)
    except FileNotFoundError:
        runs = 0
    with open(counter, "w") as f:
        f.write(str(runs + 1))
    return runs + 1


# ---- fail on the first ``times`` runs (counted in a file), then run until stopped


def proc_fail(counter: str, what: str, times: int = 1, after: float = 0.0,
              say: str = "") -> None:
    if _count_run(counter) <= times:
        if say:
            print(say, file=sys.stderr, flush=True)
        time.sleep(after)
        _raise(what)
    while True:
        time.sleep(3600)


def thread_fail(counter: str, what: str, times: int = 1, after: float = 0.0) -> None:
    if _count_run(counter) <= times:
        if otp.wait_for_stop(after):
            return
        _raise(what)
    otp.wait_for_stop()


async def task_fail(counter: str, what: str, times: int = 1, after: float = 0.0) -> None:
    if _count_run(counter) <= times:
        await asyncio.sleep(after)
        _raise(what)
    await asyncio.sleep(3600)


FAIL = {"process": proc_fail, "thread": thread_fail, "asyncio": task_fail}
"""The failing target of each in-process or process backend."""


# ---- the loop watchdog and heartbeats


async def block_loop_once(counter: str, after: float, seconds: float) -> None:
    """First run: after ``after`` seconds, block the event loop for ``seconds`` with a
    synchronous sleep in this coroutine. Later runs: behave."""
    if _count_run(counter) == 1:
        await asyncio.sleep(after)
        time.sleep(seconds)
    await asyncio.sleep(3600)


async def schedule_blocking_callback_once(counter: str, after: float, seconds: float) -> None:
    """First run: schedule a plain callback that blocks the loop for ``seconds``; no
    task child is on the loop's stack while it runs. Later runs: behave."""
    if _count_run(counter) == 1:
        asyncio.get_running_loop().call_later(after, time.sleep, seconds)
    await asyncio.sleep(3600)


async def behave() -> None:
    await asyncio.sleep(3600)


def tick_then_fall_silent_once(counter: str, ticks: int, every: float) -> None:
    """First run: call otp.heartbeat() ``ticks`` times, then never again (still
    running, still stoppable). Later runs: tick steadily."""
    first = _count_run(counter) == 1
    for _ in range(ticks if first else sys.maxsize):
        otp.heartbeat()
        if otp.wait_for_stop(every):
            return
    otp.wait_for_stop()


def tick_steadily(every: float) -> None:
    while not otp.wait_for_stop(every):
        otp.heartbeat()


def thread_until_stopped() -> None:
    otp.wait_for_stop()
