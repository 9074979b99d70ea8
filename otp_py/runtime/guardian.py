"""The guardian: a tiny separate process that kills our children if we die.

Process and command children run in process groups of their own (so a stop reaches
their grandchildren) and, where a writable cgroup v2 hierarchy exists, in cgroups of
their own (so a stop reaches even the descendants that left the group: see
:mod:`otp_py.runtime.containment`). If the supervising process dies abruptly, even
by SIGKILL, nothing in it can clean up; the guardian can. It is started once per
process, on the first process or command child, in a session of its own (so a Ctrl-C
meant for us does not reach it). We tell it which process groups and cgroups exist;
when its end of our pipe reaches end-of-file (we are gone, however we went), it
SIGKILLs every group it still knows, writes ``1`` to every cgroup's ``cgroup.kill``,
removes the emptied cgroup directories and exits. Forked children close their copy
of the pipe at once, so only our own death closes it.

The list of what to kill lives here, in the supervising process, not only in the
guardian: if the guardian itself dies (killed by a hostile child, the OOM killer, a
careless ``kill``), a thread that waits on its pidfd starts a new one at once and
tells it *everything* still alive, not just what is created afterwards.

The guardian also removes the cgroup of a child that has ended, once the last of its
processes is gone (the kernel refuses to remove a populated cgroup, and SIGKILLed
processes take a moment to die); it waits for that on ``cgroup.events``, without
polling.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import threading
from typing import IO, ClassVar

from otp_py.backends.containment import Cgroup
from otp_py.runtime.containment import Containment

__all__ = ["Guardian"]

_PROGRAM = r"""
import os, select, signal, sys, time
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
    signal.signal(s, signal.SIG_IGN)
groups, cgroups, parents = set(), set(), []
ending = {}  # cgroup -> fd of its cgroup.events: killed, to remove once empty

def kill(path):
    try:
        fd = os.open(path + "/cgroup.kill", os.O_WRONLY)
    except OSError:
        try:
            with open(path + "/cgroup.procs") as f:
                pids = [int(p) for p in f.read().split()]
        except (OSError, ValueError):
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return
    try:
        os.write(fd, b"1")
    except OSError:
        pass
    os.close(fd)

def remove(path):
    # bottom-up: a nested tree's guardian may have died before removing its own
    for top, dirs, files in os.walk(path, topdown=False):
        try:
            os.rmdir(top)
        except FileNotFoundError:
            pass
        except OSError:
            return False
    return True

def end(path):
    kill(path)
    try:
        fd = os.open(path + "/cgroup.events", os.O_RDONLY)
        os.pread(fd, 64, 0)  # poll reports changes made after a read
    except OSError:
        return
    ending[path] = fd
    poller.register(fd, select.POLLPRI)
    settle(path)

def settle(path):
    if remove(path) or not os.path.isdir(path):
        fd = ending.pop(path)
        poller.unregister(fd)
        os.close(fd)

poller = select.poll()
stdin = sys.stdin.fileno()
poller.register(stdin, select.POLLIN)
by_fd = {}
buffered = b""
eof = False
while not eof:
    by_fd = {fd: path for path, fd in ending.items()}
    for fd, _ in poller.poll():
        if fd in by_fd:
            if ending.get(by_fd[fd]) == fd:
                os.pread(fd, 64, 0)
                settle(by_fd[fd])
            continue
        data = os.read(stdin, 65536)
        if not data:
            eof = True
            break
        buffered += data
        *lines, buffered = buffered.split(b"\n")
        for line in lines:
            op, arg = line[:1], line[1:]
            try:
                if op == b"+":
                    groups.add(int(arg))
                elif op == b"-":
                    groups.discard(int(arg))
                elif op == b"C":
                    cgroups.add(os.fsdecode(arg))
                elif op == b"R":
                    path = os.fsdecode(arg)
                    cgroups.discard(path)
                    if path not in ending:
                        end(path)
                elif op == b"P":
                    parents.append(os.fsdecode(arg))
            except ValueError:
                pass
for g in groups:
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
for path in cgroups:
    if path not in ending:
        end(path)
deadline = time.monotonic() + 5.0
while ending and time.monotonic() < deadline:
    by_fd = {fd: path for path, fd in ending.items()}
    for fd, _ in poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
        if fd in by_fd and ending.get(by_fd[fd]) == fd:
            os.pread(fd, 64, 0)
            settle(by_fd[fd])
for path in reversed(parents):
    remove(path)
"""


class Guardian:
    """Kills registered process groups and cgroups when this process dies."""

    _shared: ClassVar[Guardian | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe: IO[bytes] | None = None
        self._pid = os.getpid()
        # What a new guardian must be told: everything still alive.
        self._groups: set[int] = set()
        self._cgroups: set[str] = set()
        self._ending: set[str] = set()
        self._parents: list[str] = []
        self._closing = False
        self._watcher: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self.containment = Containment(self)

    @classmethod
    def shared(cls) -> Guardian:
        """The process-wide guardian (started lazily, on the first :meth:`watch`)."""
        with cls._shared_lock:
            if cls._shared is None or cls._shared._pid != os.getpid():
                cls._shared = cls()
            return cls._shared

    def ensure_started(self) -> None:
        """Start the guardian now rather than on the first :meth:`watch`."""
        self._send(b"\n")

    def watch(self, pgid: int) -> None:
        """Kill process group ``pgid`` if this process dies."""
        self._send(b"+%d\n" % pgid, lambda: self._groups.add(pgid))

    def unwatch(self, pgid: int) -> None:
        self._send(b"-%d\n" % pgid, lambda: self._groups.discard(pgid))

    def new_cgroup(self) -> Cgroup | None:
        """A cgroup for a child about to start, in cgroup mode (see
        :mod:`otp_py.runtime.containment`); None otherwise."""
        return self.containment.new_cgroup()

    def release_cgroup(self, cgroup: Cgroup, unused: bool = False) -> None:
        """The child of ``cgroup`` has ended: kill its leftovers, remove the cgroup
        (``unused``: nothing ever entered it; it may serve the next child)."""
        self.containment.release(cgroup, unused)

    def watch_cgroup(self, path: str) -> None:
        """``cgroup.kill`` the cgroup at ``path`` (and remove it) if this process dies."""
        self._send(b"C" + os.fsencode(path) + b"\n", lambda: self._cgroups.add(path))

    def end_cgroup(self, path: str) -> None:
        """The child of the cgroup at ``path`` has ended: kill what is left in it and
        remove the directory once it is empty."""
        def forget() -> None:
            self._cgroups.discard(path)
            self._ending.add(path)
        self._send(b"R" + os.fsencode(path) + b"\n", forget)

    def forget_cgroup(self, path: str) -> None:
        """The cgroup at ``path`` is gone (removed by us): nothing to do for it."""
        self._send(b"R" + os.fsencode(path) + b"\n", lambda: self._cgroups.discard(path))

    def remove_at_exit(self, path: str) -> None:
        """Remove the (by then empty) cgroup directory ``path`` when this process dies,
        after the cgroups under it."""
        self._send(b"P" + os.fsencode(path) + b"\n", lambda: self._parents.append(path))

    def _send(self, line: bytes, record: object = None) -> None:
        with self._lock:
            if self._pid != os.getpid():
                return  # a forked copy: the parent's guardian is not ours to use
            if callable(record):
                record()
            if self._process is None or self._process.poll() is not None:
                self._launch()  # tells the new guardian everything, this line included
                return
            self._write(line)

    def _write(self, data: bytes) -> None:
        assert self._pipe is not None
        try:
            self._pipe.write(data)
            self._pipe.flush()
        except OSError:
            pass  # it died: the watcher starts a new one and tells it everything

    def _launch(self) -> None:
        """Start a guardian and tell it all we know. Holds ``_lock``."""
        if self._pipe is not None:
            with contextlib.suppress(OSError, ValueError):
                self._pipe.close()
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _PROGRAM],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        self._pipe = self._process.stdin
        lines = [b"P" + os.fsencode(p) + b"\n" for p in self._parents]
        lines += [b"+%d\n" % g for g in self._groups]
        lines += [b"C" + os.fsencode(c) + b"\n" for c in self._cgroups]
        lines += [b"R" + os.fsencode(c) + b"\n" for c in self._ending if os.path.isdir(c)]
        self._ending = {c for c in self._ending if os.path.isdir(c)}
        self._write(b"".join(lines) or b"\n")
        if self._watcher is None:
            if self._wake_r < 0:
                self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
            self._watcher = threading.Thread(target=self._watch_guardian,
                                             name="otp:guardian", daemon=True)
            self._watcher.start()
        else:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")  # wait on the new one

    def _watch_guardian(self) -> None:
        """Wait for the guardian to die (on its pidfd: no polling); unless we are
        closing it, start a new one, told everything still alive."""
        while True:
            with self._lock:
                process = self._process
                if self._closing or process is None or self._pid != os.getpid():
                    return
                try:
                    pidfd = os.pidfd_open(process.pid)
                except OSError:
                    pidfd = -1
            try:
                poller = select.poll()
                poller.register(self._wake_r, select.POLLIN)
                if pidfd >= 0:
                    poller.register(pidfd, select.POLLIN)
                events = dict(poller.poll())
            finally:
                if pidfd >= 0:
                    os.close(pidfd)
            if self._wake_r in events:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 64)
                continue
            with self._lock:
                if self._closing or self._process is not process:
                    continue
                process.wait()
                try:
                    self._launch()
                except OSError:
                    # (out of processes or descriptors: the next watch tries again)
                    self._process = None
                    self._watcher = None  # (the next launch starts another)
                    return

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def close(self) -> None:
        """End the guardian (it kills any group still registered)."""
        with self._lock:
            self._closing = True
            if self._wake_w >= 0:
                with contextlib.suppress(OSError):
                    os.write(self._wake_w, b"x")
            if self._process is None:
                return
            if self._pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._pipe.close()
            self._process.wait()
            self._process = None
        if self._watcher is not None:
            self._watcher.join()

    def _after_fork_in_child(self) -> None:
        # Our copy of the pipe would keep the guardian from seeing our parent die.
        pipe = self._pipe
        self._process = None
        self._pipe = None
        self._lock = threading.Lock()
        self._watcher = None  # (threads do not survive a fork)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1
        if pipe is not None:
            with contextlib.suppress(OSError, ValueError):
                pipe.close()  # the buffer is always flushed, so this writes nothing


def _after_fork() -> None:
    guardian = Guardian._shared
    if guardian is not None:
        guardian._after_fork_in_child()
        Guardian._shared = None


os.register_at_fork(after_in_child=_after_fork)
