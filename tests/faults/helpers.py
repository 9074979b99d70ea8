"""What every fault test checks the same way: the restart decision OTP requires, and
that nothing (process, zombie, thread, file descriptor) is left afterwards."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psutil
import pytest

import otp_py as otp
from otp_py import reasons
from tests.conftest import _descendants, _fds, _helper_pids
from tests.reports import DEFAULT_TIMEOUT

RESTARTS = ("permanent", "transient", "temporary")
"""One child per restart type in every cell; each child is named after its type."""

BACKENDS = ("process", "command", "thread", "asyncio")


def decision(restart: str, reason: reasons.ExitReason) -> str:
    """What a supervisor must decide when a child of type ``restart`` ends by itself
    with ``reason``: OTP's ``do_restart/3``, written out here rather than read from
    the library's own table, so the test does not trust what it checks."""
    if restart == "permanent":
        return "restart"
    if restart == "transient":
        return "restart" if reason.is_abnormal else "keep"
    assert restart == "temporary"
    return "remove"


def cells(fault: str, not_applicable: dict[str, str]) -> list[Any]:
    """One parameter per backend; a cell where the fault cannot apply is kept in the
    matrix and skipped with the reason, so the matrix shows every cell."""
    return [
        pytest.param(
            backend, id=backend,
            marks=[pytest.mark.skip(reason=f"{fault} x {backend}: {not_applicable[backend]}")]
            if backend in not_applicable else [],
        )
        for backend in BACKENDS
    ]


def wait_until(predicate: Callable[[], Any], what: str,
               timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Poll ``predicate`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


MARK = "OTP_PY_FAULTS_TREE"
"""The environment variable whose value marks the processes of one tree run in a
subprocess: every process descended from it inherits it, wherever it is reparented."""


def marked(token: str) -> list[int]:
    """Every live (non-zombie) process on the machine whose environment carries
    ``MARK=token``."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(MARK) == token and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except psutil.Error:
            pass
    return found


@contextlib.contextmanager
def script(tmp_path: Any, path: str, *args: str, stdin: bool = False,
           env: dict[str, str] | None = None,
           ) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Run ``python path args...`` marked with a fresh token (see :func:`marked`),
    its stdout piped (and its stdin, if asked) and its stderr kept in
    ``tmp_path/stderr``; ``env`` is added to the environment. On the way out the
    script is killed if it still runs, and so is anything left carrying its token,
    so that no test leaves a survivor to the next."""
    token = uuid.uuid4().hex
    with open(os.path.join(str(tmp_path), "stderr"), "wb") as stderr:
        # unbuffered: a line read must not leave the next one in a buffer select()
        # cannot see
        proc = subprocess.Popen([sys.executable, path, *args], stdout=subprocess.PIPE,
                                stdin=subprocess.PIPE if stdin else None,
                                stderr=stderr, env={**os.environ, **(env or {}), MARK: token},
                                bufsize=0)
    try:
        yield proc, token
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        if proc.stdin is not None:
            proc.stdin.close()
        for pid in marked(token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def read_line(proc: subprocess.Popen[bytes], timeout: float, tmp_path: Any) -> str:
    """The script's next line of output; fail with its stderr if none comes."""
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().decode() if readable else ""
    if not line:
        with open(os.path.join(str(tmp_path), "stderr")) as f:
            stderr = f.read()[-3000:]
        raise AssertionError(f"the script said nothing within {timeout} s "
                             f"(status {proc.poll()}); its stderr:\n{stderr}")
    return line


def stderr_of(tmp_path: Any) -> str:
    with open(os.path.join(str(tmp_path), "stderr")) as f:
        return f.read()


def wait_all_gone(token: str, since: float, within: float, what: str) -> None:
    """Fail unless every process marked with ``token`` is gone ``within`` seconds of
    ``since`` (a ``time.monotonic()`` reading)."""
    while True:
        survivors = marked(token)
        if not survivors:
            return
        if time.monotonic() - since > within:
            pytest.fail(f"{len(survivors)} process(es) outlived {what} by more than "
                        f"{within} s: {_describe_pids(survivors)}")
        time.sleep(0.01)


def _describe_pids(pids: Iterable[int]) -> list[tuple[int, str]]:
    out = []
    for pid in pids:
        try:
            out.append((pid, " ".join(psutil.Process(pid).cmdline())))
        except psutil.Error:
            out.append((pid, "?"))
    return out


def read_pids(path: str) -> list[int]:
    with open(path) as f:
        return [int(p) for p in f.read().split()]


class Baseline:
    """What the test process holds before a scenario: afterwards, every process the
    scenario started must be gone (and reaped: no zombie), and its threads and file
    descriptors back to what they were. Unlike the autouse ``no_leaks`` fixture, a
    leak found here fails the test itself, so an ``xfail`` mark can pin it."""

    def __init__(self) -> None:
        self.pids = {p.pid for p in _descendants()}
        self.threads = set(threading.enumerate())
        self.fds = _fds()

    def leftovers(self) -> list[str]:
        ignore = self.pids | _helper_pids()
        found = []
        procs = [p for p in _descendants() if p.pid not in ignore]
        if procs:
            found.append(f"processes {_describe(procs)}")
        zombies = []
        for p in _descendants():
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    zombies.append(p.pid)
            except psutil.Error:
                pass
        if zombies:
            found.append(f"zombies {zombies}")
        threads = [t.name for t in threading.enumerate()
                   if t not in self.threads and t.is_alive()]
        if threads:
            found.append(f"threads {threads}")
        fds = sorted(_fds() - self.fds)
        if fds:
            found.append(f"fds {[(fd, _target(fd)) for fd in fds]}")
        return found

    def assert_clean(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` s for the leftovers to go (a killed grandchild is
        reaped by init, not by us); fail naming what is left."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.leftovers()
            if not found:
                return
            if time.monotonic() > deadline:
                raise AssertionError("left behind: " + "; ".join(found))
            time.sleep(0.01)


def _describe(procs: Iterable[psutil.Process]) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        try:
            out.append((p.pid, " ".join(p.cmdline()) or p.name()))
        except psutil.Error:
            out.append((p.pid, "?"))
    return out


def _target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def straggling_threads() -> list[threading.Thread]:
    """Thread children declared unstoppable and still running."""
    from otp_py.backends.thread import stragglers

    return stragglers()


def no_memory_limit_option() -> bool:
    """True while neither spec offers a memory limit (the matrix's memory row is then
    skipped; once one exists the row fails until it is written)."""
    import attrs

    names = [f.name for cls in (otp.ChildSpec, otp.SupervisorSpec)
             for f in attrs.fields(cls)]
    return not any("mem" in name or "rss" in name for name in names)
