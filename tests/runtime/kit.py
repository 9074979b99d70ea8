"""Helpers shared by the runtime tests: a backend matrix, tree builders, and ways to
wait for processes and commands without sleeping and hoping."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
import psutil
import pytest
import targets

import otp_py as otp
from otp_py import reasons
from tests.reports import DEFAULT_TIMEOUT

PY = sys.executable


def tree(*children: otp.ChildSpec | otp.SupervisorSpec, **flags: Any) -> otp.SupervisorSpec:
    """A root supervisor with a roomy restart budget (tests decide its children)."""
    flags.setdefault("intensity", otp.SlidingWindow(10, 5))
    flags.setdefault("id", "root")
    return otp.SupervisorSpec(children=list(children), **flags)


def info(children: Iterable[otp.ChildInfo], child_id: str) -> otp.ChildInfo:
    return next(c for c in children if c.id == child_id)


def pid_of(sup: otp.Supervisor, child: str) -> int:
    """The pid of a running process or command child (``child`` may be a path)."""
    parent, _, name = child.rpartition("/")
    found = info(sup.which_children(parent), name)
    assert found.pid is not None, found
    return found.pid


def gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie awaiting a foreign reaper counts as
    gone: it runs no code and holds nothing but its table entry)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: Iterable[int], timeout: float = DEFAULT_TIMEOUT) -> None:
    """Block until every pid is gone; fail naming the survivors after ``timeout``."""
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while True:
        pending = {p for p in pending if not gone(p)}
        if not pending:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"still running after {timeout} s: {describe_pids(pending)}")
        time.sleep(0.01)


def describe_pids(pids: Iterable[int]) -> list[tuple[int, str]]:
    out = []
    for pid in sorted(pids):
        try:
            out.append((pid, " ".join(psutil.Process(pid).cmdline())))
        except psutil.Error:
            out.append((pid, "?"))
    return out


def read_pid(path: str) -> int:
    with open(path) as f:
        return int(f.read())


class Fifo:
    """A named pipe a command child writes a line to when it has reached a point (for
    example: its SIGTERM handler is installed). The test blocks on it with a timeout.
    Opened read-write, so it never reports end-of-file while nobody writes."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.mkfifo(path)
        self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)

    def wait_line(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        readable, _, _ = select.select([self._fd], [], [], timeout)
        if not readable:
            pytest.fail(f"nothing written to {self.path} within {timeout} s")
        return os.read(self._fd, 4096).decode()

    def close(self) -> None:
        os.close(self._fd)


@contextlib.contextmanager
def fifo(directory: Any, name: str = "fifo") -> Iterator[Fifo]:
    f = Fifo(os.path.join(str(directory), name))
    try:
        yield f
    finally:
        f.close()


# ------------------------------------------------------------------ the backend matrix


@attrs.frozen
class Kind:
    """One way to run a worker: a backend (and, for processes, a start method)."""

    backend: str
    start_method: str | None = None

    @property
    def name(self) -> str:
        return self.start_method or self.backend

    def __str__(self) -> str:
        return self.name

    def spec(self, child_id: str, start: Any, **fields: Any) -> otp.ChildSpec:
        if self.start_method is not None:
            fields.setdefault("start_method", self.start_method)
        return otp.ChildSpec(id=child_id, start=start, backend=self.backend, **fields)

    def once(self, child_id: str, marker: str, how: str, **fields: Any) -> otp.ChildSpec:
        """A child that ends ``how`` on its first run and then runs well."""
        if self.backend == "command":
            return self.spec(child_id, _command_once(marker, how), **fields)
        target = {
            "process": targets.proc_once,
            "thread": targets.thread_once,
            "asyncio": targets.task_once,
        }[self.backend]
        return self.spec(child_id, target, args=(marker, how), **fields)

    def forever(self, child_id: str, **fields: Any) -> otp.ChildSpec:
        """A child that runs until stopped, and stops when asked. Process children
        signal readiness, so a stop never finds one still in its bootstrap (see
        test_a_sigterm_the_moment_the_handler_is_installed_still_means_shutdown)."""
        if self.backend == "process":
            fields.setdefault("ready", True)
        start = {
            "process": targets.ready_then_run,
            "thread": targets.thread_until_stopped,
            "asyncio": targets.task_forever,
            "command": ("sleep", "3600"),
        }[self.backend]
        return self.spec(child_id, start, **fields)


PROCESS = Kind("process")
FORK = Kind("process", "fork")
SPAWN = Kind("process", "spawn")
COMMAND = Kind("command")
THREAD = Kind("thread")
TASK = Kind("asyncio")

WORKER_KINDS = (PROCESS, COMMAND, THREAD, TASK)
"""Every backend, processes with their default start method."""

OS_KINDS = (PROCESS, FORK, COMMAND)
"""Backends whose children are OS processes (signals, exit statuses)."""


def _command_once(marker: str, how: str) -> tuple[str, ...]:
    act = {
        "return": "exit 0",
        "exit0": "exit 0",
        "exit3": "exit 3",
        "_exit1": "exit 1",
        "raise": f"exec {PY} -c \"raise ValueError('boom')\"",
        "sigkill": "kill -KILL $$",
        "sigsegv": "kill -SEGV $$",
    }[how]
    script = f'if [ -e "$1" ]; then exec sleep 3600; fi; : > "$1"; {act}'
    return ("sh", "-c", script, "sh", marker)


def expected_reason(kind: Kind, how: str) -> reasons.ExitReason:
    """What the supervisor must be told when a child of ``kind`` ends ``how``."""
    if how in ("return", "exit0"):
        return reasons.Normal()
    if how == "raise":
        if kind.backend == "command":  # the program's traceback goes to its stderr
            return reasons.Exited(1)
        return reasons.Crashed("ValueError", "boom")
    if how == "exit3":
        return reasons.Exited(3)
    if how == "_exit1":
        return reasons.Exited(1)
    if how == "sigkill":
        return reasons.Signaled(9)
    if how == "sigsegv":
        return reasons.Signaled(11)
    raise AssertionError(how)


# ----------------------------------------------------- leak checks a test runs itself


class LeakCheck:
    """For a test marked ``allow_leaks`` that checks for leftovers itself: a leak
    fails the test (not its teardown, so an xfail mark can pin one), and
    :meth:`clean_up` removes leftovers so later tests start clean.

    The garbage collector is off meanwhile: a descriptor that only a finalizer would
    close, some time later, is a leak, and the check must not pass or fail depending
    on when the collector happens to run."""

    def __init__(self) -> None:
        import gc

        from tests.conftest import _descendants, _fds

        gc.disable()
        self._descendants = _descendants
        self._fds = _fds
        self.fds = _fds()
        self.pids = {p.pid for p in _descendants()}

    def _leftovers(self) -> tuple[list[psutil.Process], set[int]]:
        from tests.conftest import _helper_pids

        ignore = self.pids | _helper_pids()
        procs = [p for p in self._descendants() if p.pid not in ignore]
        return procs, self._fds() - self.fds

    def assert_clean(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` for every new process, zombie and fd to go."""
        deadline = time.monotonic() + timeout
        while True:
            procs, fds = self._leftovers()
            if not procs and not fds:
                return
            if time.monotonic() > deadline:
                targets_ = []
                for fd in sorted(fds):
                    try:
                        targets_.append(os.readlink(f"/proc/self/fd/{fd}"))
                    except OSError:
                        targets_.append("?")
                zombies = [p.pid for p in procs if gone(p.pid)]
                raise AssertionError(
                    f"left behind: processes {[p.pid for p in procs]} (zombies {zombies}), "
                    f"fds {sorted(fds)} -> {targets_}"
                )
            time.sleep(0.01)

    def clean_up(self) -> None:
        """Kill and reap leftover processes, and close leftover pidfds. Other
        descriptors (pipes, sockets) belong to Python objects whose finalizers close
        them; closing them here could close a reused number twice."""
        import gc

        gc.enable()
        gc.collect()
        procs, fds = self._leftovers()
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.kill()
        for p in procs:
            with contextlib.suppress(ChildProcessError, OSError, psutil.Error):
                if p.ppid() == os.getpid():
                    os.waitpid(p.pid, 0)
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[pidfd]":
                    os.close(fd)
