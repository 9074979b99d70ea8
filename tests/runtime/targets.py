"""Child targets for the runtime tests. Module-level, so forkserver and spawn
children can unpickle them."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
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
    # Written whole or not at all: a child killed mid-write must not leave an empty
    # pid file behind for the test to read.
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
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


# ---- "once" targets: misbehave on the first run (the marker file does not exist yet),
#      then run well, so a restarted child stays up and the test sees one decision.


def _first_run(marker: str) -> bool:
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def _act(how: str) -> None:
    """Do what ``how`` names: end the child one way or another."""
    if how == "return":
        return
    if how == "raise":
        raise ValueError("boom")
    if how.startswith("exit"):
        sys.exit(int(how[4:]))
    if how.startswith("_exit"):
        os._exit(int(how[5:]))
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "sigsegv":
        import faulthandler

        faulthandler.disable()  # pytest enables it; its dump would only be noise
        segfault()
    if how == "shutdown_term":
        raise otp.Shutdown("bye")
    raise AssertionError(f"unknown behaviour {how!r}")


def proc_once(marker: str, how: str) -> None:
    if _first_run(marker):
        _act(how)
        return
    otp.notify_ready()
    run_forever()


def thread_once(marker: str, how: str) -> None:
    if _first_run(marker):
        _act(how)
        return
    otp.notify_ready()
    otp.wait_for_stop()


async def task_once(marker: str, how: str) -> None:
    if _first_run(marker):
        _act(how)
        return
    otp.notify_ready()
    await asyncio.sleep(3600)


def freeze_once(marker: str) -> None:
    """Freeze (SIGSTOP) on the first run; answer pings afterwards."""
    if _first_run(marker):
        freeze()
    ready_then_run()


def thread_silent_once(marker: str) -> None:
    """Never call heartbeat() on the first run; tick steadily afterwards."""
    if _first_run(marker):
        otp.notify_ready()
        otp.wait_for_stop()
        return
    otp.notify_ready()
    while not otp.wait_for_stop(0.05):
        otp.heartbeat()


def thread_ticking() -> None:
    otp.notify_ready()
    while not otp.wait_for_stop(0.05):
        otp.heartbeat()


def thread_return() -> None:
    return None


def thread_raise() -> None:
    raise ValueError("boom")


def thread_fail_before_ready() -> None:
    raise RuntimeError("cannot start")


def thread_never_ready() -> None:
    otp.wait_for_stop()


async def task_fail_before_ready() -> None:
    raise RuntimeError("cannot start")


async def task_never_ready() -> None:
    await asyncio.sleep(3600)


# ---- children that ignore a graceful stop

RELEASE = threading.Event()
"""Set by a test to let an unstoppable thread child (below) end."""


def thread_ignore_stop() -> None:
    """Ignores its stop token: only RELEASE ends it."""
    otp.notify_ready()
    RELEASE.wait()


async def task_ignore_cancel() -> None:
    """Swallows the first cancellation (the graceful stop); the second (the kill) ends it."""
    otp.notify_ready()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(3600)
    await asyncio.sleep(3600)


# ---- children that start children of their own


def with_pool(size: int) -> None:
    """A multiprocessing pool (fork workers, in our process group) that stays up."""
    import multiprocessing

    pool = multiprocessing.get_context("fork").Pool(size)
    try:
        pool.apply(os.getpid)  # the workers are up
        otp.notify_ready()
        run_forever()
    finally:
        pool.terminate()


def with_sleepers(count: int) -> None:
    """``count`` ``sleep`` subprocesses that outlive nothing of ours."""
    import subprocess

    procs = [subprocess.Popen(["sleep", "3600"]) for _ in range(count)]
    otp.notify_ready()
    try:
        run_forever()
    finally:
        for p in procs:
            p.kill()
            p.wait()


def spawn_sleeper_and_return(path: str) -> None:
    """Start a ``sleep`` grandchild, write our pid and its pid to ``path``, and
    return at once."""
    import subprocess

    proc = subprocess.Popen(["sleep", "3600"])
    with open(path + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {proc.pid}")
    os.rename(path + ".tmp", path)


def write_pid_ready(path: str) -> None:
    """Write our pid to ``path`` (atomically), then signal readiness and run."""
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)
    otp.notify_ready()
    run_forever()


def clean_up_on_stop(path: str) -> None:
    """A graceful stop raises in us: ``finally`` runs and leaves a mark."""
    try:
        otp.notify_ready()  # the stop may come as soon as this has been sent
        run_forever()
    finally:
        with open(path, "w") as f:
            f.write("cleaned")


class SigtermOnHandlerInstall(multiprocessing.get_context("fork").Process):  # type: ignore[misc, name-defined]
    """A process child that gets SIGTERM the instant its SIGTERM handler is installed:
    a supervisor's stop that arrives as early as it possibly can."""

    def run(self) -> None:
        install = signal.signal

        def installing(signum: int, handler: object) -> object:
            previous = install(signum, handler)  # type: ignore[arg-type]
            if signum == signal.SIGTERM and callable(handler):
                signal.signal = install  # once
                os.kill(os.getpid(), signal.SIGTERM)  # handled at the next bytecode
            return previous

        signal.signal = installing  # type: ignore[assignment]
        super().run()


async def task_raise_after_ready() -> None:
    otp.notify_ready()
    await asyncio.sleep(0.01)
    raise ValueError("boom")


class TwoArgs(Exception):
    """Pickles, but cannot be unpickled (pickle rebuilds it from its message alone)."""

    def __init__(self, a: str, b: int) -> None:
        super().__init__(f"{a}{b}")


async def task_shutdown_unreadable() -> None:
    raise otp.Shutdown(TwoArgs("a", 1))
