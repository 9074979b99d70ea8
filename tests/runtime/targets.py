"""Child targets for the runtime tests. Module-level, so forkserver and spawn
children can unpickle them."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import time

import otp_py as otp


def run_forever() -> None:
    while True:
        time.sleep(3600)


def return_normally() -> None:
    return None


def raise_error() -> None:
    raise ValueError("boom")


def exit_with(code: int) -> None:
    sys.exit(code)


def hard_exit(code: int) -> None:
    os._exit(code)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def segfault() -> None:
    ctypes.string_at(0)


def ignore_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    otp.notify_ready()
    run_forever()


def ready_then_run() -> None:
    otp.notify_ready()
    run_forever()


def never_ready() -> None:
    run_forever()


def fail_before_ready() -> None:
    raise RuntimeError("cannot start")


def write_pid_and_run(path: str) -> None:
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    run_forever()


def freeze() -> None:
    """Stop answering: SIGSTOP ourselves (a frozen process answers no ping)."""
    otp.notify_ready()
    os.kill(os.getpid(), signal.SIGSTOP)
    run_forever()


# ---- threads


def thread_until_stopped() -> None:
    otp.wait_for_stop()


def thread_ready_until_stopped() -> None:
    otp.notify_ready()
    otp.wait_for_stop()


def thread_silent() -> None:
    """Never calls heartbeat(); stops when asked."""
    otp.wait_for_stop()


# ---- asyncio tasks


async def task_forever() -> None:
    await asyncio.sleep(3600)


async def task_ready_forever() -> None:
    otp.notify_ready()
    await asyncio.sleep(3600)


async def task_raise() -> None:
    raise ValueError("boom")


async def task_return() -> None:
    return None
