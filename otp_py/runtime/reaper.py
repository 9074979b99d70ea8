"""The supervising process as a child subreaper, where otp_py owns the process.

``otp-py run`` and :func:`otp_py.run` make the process a child subreaper
(``PR_SET_CHILD_SUBREAPER``): a descendant whose parent dies (the daemon of a
double fork, a ``setsid`` grandchild whose child crashed) is reparented to us
rather than to init, so it is still ours to stop. :func:`otp_py.start` does not by
default (``subreaper=True`` opts in): a library does not own its host's process,
and a subreaper adopts the orphans of *every* descendant, the host's too.

**The rule: which children are adopted orphans.** Nothing in ``/proc`` says that a
child was adopted rather than forked by us, so the rule is by elimination. A direct
child of this process is an adopted orphan when

1. it is not in our own process group: every process or command child of a tree
   leads a group of its own (and the guardian and the fork server run in sessions
   of their own), so whatever a child leaves behind is outside our group, while a
   subprocess the program starts itself stays in our group unless it asks
   otherwise; and
2. no live :class:`subprocess.Popen` (which :mod:`asyncio`'s subprocesses use too)
   nor :mod:`multiprocessing` process object of this interpreter holds its pid
   unwaited (``returncode`` still ``None``): those are the pids someone here will
   wait for. The command backend, the guardian and the fork server all hold theirs.
   While such an object is being started (forked, its pid not stored yet) the
   children not yet classified wait for the next look: its child may already be a
   zombie that no object names. A verdict, once made, is kept for the life of the
   process (by pid and start time), so the heap is walked once per new child
   outside our group, not at every ``SIGCHLD``.

Such a child was forked by nobody here, so nobody here waits for it: reaping it
(``waitpid(pid, WNOHANG)``, never ``waitpid(-1)``) steals nothing. What the rule
cannot see: a child the program forks with ``os.fork``/``os.posix_spawn`` (no Popen
object) *and* moves out of our group, then waits for by pid: its status could be
taken. Children in our group are never touched.

**When.** Orphans are reaped when they die, on ``SIGCHLD`` (a handler on the tree's
loop: an adoption itself sends no signal, a death does; no polling). An orphan
that keeps its child's process group is stopped with that child (the group is
signalled, as ever); one in a session of its own (a daemon) cannot be attributed
to a child (nothing links it to one), so it is SIGKILLed when the tree ends (an
orderly stop or the root giving up), then reaped, and so is whatever it had
started (its own orphans come back to us in turn). Then the process stops being a
subreaper (unless it was one before the tree), so a program that goes on after
``otp.run()`` returns (a test suite) adopts nothing more; if it stays one, orphans
adopted after the tree ended are killed and reaped at interpreter exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import gc
import os
import select
import signal
import threading
import time
from collections.abc import Iterator

from otp_py.backends.containment import children_of_self

__all__ = ["become", "end", "is_subreaper", "kill_orphans", "orphans", "reap_orphans", "reaping",
           "set_subreaper"]

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_lock = threading.RLock()  # a plain SIGCHLD handler may run while it is held
_at_exit = False


def _prctl(option: int, arg: int | ctypes.c_int | None = None) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if arg is None:
        value = ctypes.c_int(0)
        if libc.prctl(option, ctypes.byref(value), 0, 0, 0) != 0:
            return -1
        return value.value
    return int(libc.prctl(option, arg, 0, 0, 0))


def set_subreaper(on: bool = True) -> bool:
    """Make this process a child subreaper (or stop being one). True if done."""
    try:
        return _prctl(_PR_SET_CHILD_SUBREAPER, 1 if on else 0) == 0
    except (AttributeError, OSError):
        return False


def is_subreaper() -> bool:
    """Whether this process is a child subreaper now."""
    try:
        return _prctl(_PR_GET_CHILD_SUBREAPER) == 1
    except (AttributeError, OSError):
        return False


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time) of ``pid``, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    try:
        return fields[0], int(fields[2]), int(fields[19])
    except (IndexError, ValueError):
        return None


_verdicts: dict[int, tuple[int, bool]] = {}
"""pid -> (start time, adopted orphan?): a verdict holds for the life of the
process (an orphan never gets a Popen; a Popen's pid is its own until reaped),
so the heap is walked once per child outside our group, not at every SIGCHLD."""


def _waited_for() -> set[int] | None:
    """The pids a live Popen (subprocess, asyncio, multiprocessing) will wait for;
    None while one is being started (forked, its pid not yet stored: its child may
    already be a zombie that no object names yet). Walks the heap: only called when
    an unclassified child outside our group exists."""
    pids: set[int] = set()
    for obj in gc.get_objects():
        kind = type(obj)
        if kind.__name__ != "Popen" or not kind.__module__.startswith(
                ("subprocess", "multiprocessing", "asyncio")):
            continue
        if getattr(obj, "returncode", None) is not None:
            continue
        pid = getattr(obj, "pid", None)
        if isinstance(pid, int):
            pids.add(pid)
        elif _starting(obj):
            return None
    return pids


def _starting(popen: object) -> bool:
    """A Popen with no pid yet: being started. (One whose program could not be run
    has a pid and a return code; one refused before the fork lives no longer than
    the exception that refused it.)"""
    return not getattr(popen, "_child_created", False) and getattr(popen, "pid", None) is None


def orphans(zombies_only: bool = False) -> list[int] | None:
    """This process's adopted orphans (the rule in the module's docstring); None
    when a Popen is being started elsewhere in the process and the children not
    yet classified must wait for the next look."""
    ours = os.getpgrp()
    found: list[int] = []
    unknown: list[tuple[int, int]] = []
    children = children_of_self()
    for pid in children:
        stat = _stat(pid)
        if stat is None or stat[1] == ours or (zombies_only and stat[0] != "Z"):
            continue
        verdict = _verdicts.get(pid)
        if verdict is not None and verdict[0] == stat[2]:
            if verdict[1]:
                found.append(pid)
        else:
            unknown.append((pid, stat[2]))
    if unknown:
        waited = _waited_for()
        if waited is None:
            return None
        for pid, started in unknown:
            _verdicts[pid] = (started, pid not in waited)
            if pid not in waited:
                found.append(pid)
    if len(_verdicts) > 4 * len(children) + 64:  # forget the dead
        alive = set(children)
        for pid in [p for p in _verdicts if p not in alive]:
            del _verdicts[pid]
    return found


def reap_orphans() -> list[int] | None:
    """Reap the adopted orphans that have died; return their pids (None: a Popen
    was being started, look again shortly)."""
    reaped = []
    with _lock:
        found = orphans(zombies_only=True)
        if found is None:
            return None
        for pid in found:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    reaped.append(pid)
    return reaped


def _on_sigchld(loop: asyncio.AbstractEventLoop) -> None:
    if reap_orphans() is None:  # a start in progress: its fork ends in microseconds
        loop.call_later(0.02, _on_sigchld, loop)


def kill_orphans(timeout: float = 2.0, rounds: int = 64) -> list[int]:
    """SIGKILL every adopted orphan and reap it; again for what they leave (their
    orphans come back to us), until none is left. Returns the pids killed."""
    killed: list[int] = []
    with _lock:
        for _ in range(rounds):
            found = orphans()
            if found is None:
                time.sleep(0.01)  # a Popen being started elsewhere
                continue
            if not found:
                break
            fds = {}
            for pid in found:
                with contextlib.suppress(OSError):
                    fds[pid] = os.pidfd_open(pid)
            for pid, fd in fds.items():
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                killed.append(pid)
            for pid, fd in fds.items():
                with contextlib.suppress(OSError):
                    select.select([fd], [], [], timeout)  # readable once it has exited
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                os.close(fd)
    return killed


def _kill_at_exit() -> None:
    if is_subreaper():
        kill_orphans()


def become(loop: asyncio.AbstractEventLoop | None = None) -> bool:
    """Make the process a child subreaper and reap dead orphans on ``SIGCHLD``:
    through ``loop``'s signal handling when given (call on the main thread), else
    with a plain handler if called on the main thread (none elsewhere: orphans are
    then reaped when the tree ends). Orphans adopted later are killed and reaped at
    interpreter exit. True if the process is now a subreaper."""
    global _at_exit
    if not set_subreaper(True):
        return False
    with _lock:
        if not _at_exit:
            atexit.register(_kill_at_exit)
            _at_exit = True
    if threading.current_thread() is threading.main_thread():
        if loop is not None:
            loop.add_signal_handler(signal.SIGCHLD, _on_sigchld, loop)
        else:
            signal.signal(signal.SIGCHLD, lambda _s, _f: reap_orphans())
    return True


def end(was_subreaper: bool) -> None:
    """The tree is over: stop being a subreaper unless the process was one before
    (later orphans go to init again, as they would without us), then kill and reap
    every orphan adopted meanwhile."""
    if not was_subreaper:
        set_subreaper(False)
    kill_orphans()


@contextlib.contextmanager
def reaping(loop: asyncio.AbstractEventLoop, enabled: bool = True) -> Iterator[bool]:
    """Be a child subreaper for the duration of a tree run on ``loop`` (see
    :func:`become`); when the block ends, stop being one (unless the process was
    already) and kill and reap every orphan left. Yields whether the process is a
    subreaper."""
    was = is_subreaper()
    on = enabled and become(loop)
    try:
        yield on
    finally:
        if on:
            if threading.current_thread() is threading.main_thread():
                loop.remove_signal_handler(signal.SIGCHLD)
            end(was)
