"""Child targets for the fault suite, beyond those of tests/runtime/targets.py.

Module-level, so forkserver and spawn children can unpickle them. The "once" targets
misbehave on their first run (a marker file does not exist yet) and run well after,
so a restarted child stays up and a test sees exactly one decision per child.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

import targets as runtime_targets  # tests/runtime/targets.py (see conftest.py)

import otp_py as otp

PY = sys.executable
HERE = os.path.dirname(os.path.abspath(__file__))
COMMAND_CHILD = os.path.join(HERE, "command_child.py")

RELEASE = threading.Event()
"""Set by a test to let the stubborn thread children below end."""

first_run = runtime_targets._first_run  # one helper, shared with the runtime suite


def _append(path: str, line: str) -> None:
    """One ``write`` on an ``O_APPEND`` descriptor: lines from many children (and
    threads) never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


def _write_atomically(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


# ------------------------------------------------------------------- commands


def command_once(marker: str, how: str) -> list[str]:
    """A Python program that ends ``how`` on its first run, then runs until stopped."""
    return [PY, COMMAND_CHILD, marker, how]


def command_ignoring_sigterm(ready_file: str) -> list[str]:
    """A shell that ignores SIGTERM (as do the ``sleep`` processes it runs), then
    creates ``ready_file``: commands cannot signal readiness otherwise."""
    script = 'trap "" TERM; : > "$1"; while :; do sleep 1; done'
    return ["sh", "-c", script, "sh", ready_file]


def command_grandchildren_then_exit(marker: str, pid_file: str) -> list[str]:
    """First run: start two background ``sleep`` grandchildren, write
    ``"<own pid> <gc1> <gc2>"`` to ``pid_file`` and exit with status 3."""
    script = (
        'if [ -e "$1" ]; then exec sleep 3600; fi; : > "$1"; '
        "sleep 3600 & a=$!; sleep 3600 & b=$!; "
        'echo "$$ $a $b" > "$2.tmp"; mv "$2.tmp" "$2"; exit 3'
    )
    return ["sh", "-c", script, "sh", marker, pid_file]


def command_stubborn_grandchild(pid_file: str) -> list[str]:
    """A shell whose background grandchild ignores SIGTERM; the shell itself obeys."""
    script = (
        '(trap "" TERM; exec sleep 3600) & '
        'echo "$$ $!" > "$1.tmp"; mv "$1.tmp" "$1"; wait'
    )
    return ["sh", "-c", script, "sh", pid_file]


def command_self_deleting(script_path: str) -> list[str]:
    """Write an executable script that deletes itself and exits with status 3: its
    first run crashes, and every restart fails to start (there is nothing to run)."""
    with open(script_path, "w") as f:
        f.write('#!/bin/sh\nrm -f "$0"\nexit 3\n')
    os.chmod(script_path, 0o755)
    return [script_path]


_READY_ONCE = """
import os, socket, sys, time
counter = sys.argv[1]
runs = int(open(counter).read()) if os.path.exists(counter) else 0
open(counter, "w").write(str(runs + 1))
if runs:
    time.sleep(3600)  # never ready again
address = os.environ["NOTIFY_SOCKET"]
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
    sock.sendto(b"READY=1", "\\0" + address[1:])
time.sleep(0.2)
sys.exit(3)
"""


def command_ready_once(counter: str) -> list[str]:
    """A command child (ready=True) whose first run says READY=1 over its notify
    socket and exits with status 3; every later run never becomes ready."""
    return [PY, "-I", "-S", "-c", _READY_ONCE, counter]  # (-I -S: a quicker start)


def command_stubborn_logged(log: str, name: str) -> list[str]:
    """Logs ``up NAME PID`` and, on each SIGTERM, ``term NAME``; never stops by itself."""
    return [PY, COMMAND_CHILD, "stubborn", log, name]


# ------------------------------------------------------------------- processes


def gil_hang_once(marker: str) -> None:
    """First run: hold the GIL forever in a C call (as a stuck C extension would): the
    heartbeat responder thread can no longer answer. Afterwards: run well."""
    if first_run(marker):
        otp.notify_ready()
        libc = ctypes.PyDLL(None)  # PyDLL: the GIL stays held during the call
        while True:
            libc.sleep(3600)
    runtime_targets.ready_then_run()


def _bump(counter: str) -> int:
    """Count this run in ``counter``; return its number (1 for the first)."""
    _append(counter, "x")
    return os.path.getsize(counter) // 2


def proc_crash_then_fail_start(counter: str, then: str) -> None:
    """Run 1: up, then crash. Later runs: fail before ready (``then="fail"``) or never
    become ready (``then="never"``)."""
    if _bump(counter) == 1:
        otp.notify_ready()
        raise ValueError("boom")
    if then == "fail":
        raise RuntimeError("cannot start")
    runtime_targets.run_forever()


def thread_crash_then_fail_start(counter: str, then: str) -> None:
    if _bump(counter) == 1:
        otp.notify_ready()
        raise ValueError("boom")
    if then == "fail":
        raise RuntimeError("cannot start")
    otp.wait_for_stop()


async def task_crash_then_fail_start(counter: str, then: str) -> None:
    if _bump(counter) == 1:
        otp.notify_ready()
        raise ValueError("boom")
    if then == "fail":
        raise RuntimeError("cannot start")
    await asyncio.sleep(3600)


def spawn_grandchildren_then_crash(marker: str, pid_file: str) -> None:
    """First run: start two ``sleep`` grandchildren, write ``"<own pid> <gc1> <gc2>"``
    to ``pid_file``, then crash. Afterwards: run well."""
    if first_run(marker):
        sleepers = [subprocess.Popen(["sleep", "3600"]) for _ in range(2)]
        _write_atomically(pid_file, " ".join(str(p) for p in
                                             (os.getpid(), *(s.pid for s in sleepers))))
        raise ValueError("boom")
    runtime_targets.ready_then_run()


def fork_stubborn_grandchild(pid_file: str) -> None:
    """Fork a grandchild that ignores SIGTERM; once it does, write ``"<own pid>
    <grandchild pid>"`` to ``pid_file`` and run until stopped (we obey SIGTERM)."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the grandchild
        try:
            os.close(ready_r)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.write(ready_w, b"x")
            while True:
                time.sleep(3600)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.read(ready_r, 1)
    os.close(ready_r)
    _write_atomically(pid_file, f"{os.getpid()} {pid}")
    runtime_targets.ready_then_run()


def crash_soon(delay: float) -> None:
    """Run ``delay`` seconds, then crash: a restart storm, paced."""
    time.sleep(delay)
    raise ValueError("crash")


def proc_stubborn_logged(log: str, name: str) -> None:
    """Log ``up NAME PID``; on each SIGTERM log ``term NAME`` and carry on."""

    def on_term(signum: int, frame: object) -> None:
        _append(log, f"term {name}")

    signal.signal(signal.SIGTERM, on_term)
    _append(log, f"up {name} {os.getpid()}")
    otp.notify_ready()
    runtime_targets.run_forever()


# ------------------------------------------------------------ threads and tasks


def thread_stubborn_logged(log: str, name: str) -> None:
    """Log ``term NAME`` when asked to stop, then ignore it until RELEASE."""
    otp.notify_ready()
    otp.wait_for_stop()
    _append(log, f"term {name}")
    RELEASE.wait()


async def task_stubborn_logged(log: str, name: str) -> None:
    """Log ``term NAME`` on the graceful stop (a cancellation) and swallow it; the
    kill (a second cancellation) ends it."""
    otp.notify_ready()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        _append(log, f"term {name}")
    await asyncio.sleep(3600)


async def task_swallowing_every_cancellation() -> None:
    """Swallow every cancellation, the graceful stop's and the kill's alike: the
    supervisor reports it unstoppable and closes its coroutine."""
    otp.notify_ready()
    while True:
        try:  # noqa: SIM105 - the shape of the fault, as written in the wild
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass


async def task_block_loop_once(marker: str, delay: float, seconds: float) -> None:
    """First run: after ``delay`` seconds, block the event loop for ``seconds`` (a
    synchronous call in a coroutine), then idle. Afterwards: idle."""
    if first_run(marker):
        await asyncio.sleep(delay)
        time.sleep(seconds)
    await asyncio.sleep(3600)


LOOP_RESUMED = threading.Event()
"""Set by :func:`task_block_loop_then_mark` once the loop has turned for a while."""


async def task_block_loop_then_mark(seconds: float, settle: float) -> None:
    """Block the event loop for ``seconds``, let it turn for ``settle`` seconds, then
    set LOOP_RESUMED."""
    await asyncio.sleep(0.2)
    time.sleep(seconds)
    await asyncio.sleep(settle)
    LOOP_RESUMED.set()
    await asyncio.sleep(3600)


async def task_block_loop(seconds: float) -> None:
    """Block the event loop for ``seconds`` at once, then idle."""
    time.sleep(seconds)
    await asyncio.sleep(3600)


# ------------------------------------------------ descendants that leave the group


def command_setsid_grandchild(pid_file: str) -> list[str]:
    """A shell whose background grandchild leaves the process group (``setsid``);
    writes ``"<own pid> <grandchild pid>"`` to ``pid_file`` and waits."""
    script = ('setsid sleep 3600 & '
              'echo "$$ $!" > "$1.tmp"; mv "$1.tmp" "$1"; wait')
    return ["sh", "-c", script, "sh", pid_file]


def command_daemonising(pid_file: str) -> list[str]:
    """A shell that starts a daemon the classic way (double fork + setsid: the
    daemon's parent is gone at once, it is reparented, in a session of its own);
    writes ``"<own pid> <daemon pid>"`` to ``pid_file`` and runs until stopped."""
    script = ('(setsid sleep 3600 & echo $! > "$1.daemon"); '
              'echo "$$ $(cat "$1.daemon")" > "$1.tmp"; rm "$1.daemon"; '
              'mv "$1.tmp" "$1"; exec sleep 3600')
    return ["sh", "-c", script, "sh", pid_file]


def setsid_grandchild(pid_file: str) -> None:
    """A grandchild started with ``start_new_session=True`` (out of our group);
    writes ``"<own pid> <grandchild pid>"`` to ``pid_file``, then runs until stopped.
    The grandchild is not waited for: like a careless program, we just leave."""
    grandchild = subprocess.Popen(["sleep", "3600"], start_new_session=True)
    _write_atomically(pid_file, f"{os.getpid()} {grandchild.pid}")
    runtime_targets.ready_then_run()


def daemonising(pid_file: str) -> None:
    """Start a daemon the classic way (fork, setsid, fork, the middle one exits);
    write ``"<own pid> <daemon pid>"`` to ``pid_file``, then run until stopped."""
    ready_r, ready_w = os.pipe()
    middle = os.fork()
    if middle == 0:
        try:
            os.close(ready_r)
            os.setsid()
            daemon = os.fork()
            if daemon == 0:
                os.close(ready_w)
                os.execvp("sleep", ["sleep", "3600"])
            os.write(ready_w, str(daemon).encode())
        finally:
            os._exit(0)
    os.close(ready_w)
    daemon_pid = int(os.read(ready_r, 32))
    os.close(ready_r)
    os.waitpid(middle, 0)
    _write_atomically(pid_file, f"{os.getpid()} {daemon_pid}")
    runtime_targets.ready_then_run()
