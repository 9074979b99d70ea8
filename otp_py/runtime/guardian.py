"""The guardian: a tiny separate process that kills our children if we die.

Process and command children run in process groups of their own (so a stop reaches
their grandchildren). If the supervising process dies abruptly, even by SIGKILL,
nothing in it can clean up; the guardian can. It is started once per process, on the
first process or command child, in a session of its own (so a Ctrl-C meant for us
does not reach it). We tell it which process groups exist; when its end of our pipe
reaches end-of-file (we are gone, however we went), it SIGKILLs every group it still
knows and exits. Forked children close their copy of the pipe at once, so only our
own death closes it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from typing import IO, ClassVar

__all__ = ["Guardian"]

_PROGRAM = r"""
import os, signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
    signal.signal(s, signal.SIG_IGN)
groups = set()
for line in sys.stdin.buffer:
    try:
        op, n = line[:1], int(line[1:])
    except ValueError:
        continue
    if op == b"+":
        groups.add(n)
    elif op == b"-":
        groups.discard(n)
for g in groups:
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
"""


class Guardian:
    """Kills registered process groups when this process dies."""

    _shared: ClassVar[Guardian | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe: IO[bytes] | None = None
        self._pid = os.getpid()

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
        self._send(b"+%d\n" % pgid)

    def unwatch(self, pgid: int) -> None:
        self._send(b"-%d\n" % pgid)

    def _send(self, line: bytes) -> None:
        with self._lock:
            if self._pid != os.getpid():
                return  # a forked copy: the parent's guardian is not ours to use
            if self._process is None or self._process.poll() is not None:
                self._launch()
            assert self._pipe is not None
            try:
                self._pipe.write(line)
                self._pipe.flush()
            except OSError:
                self._process = None

    def _launch(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _PROGRAM],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        self._pipe = self._process.stdin

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def close(self) -> None:
        """End the guardian (it kills any group still registered)."""
        with self._lock:
            if self._process is None:
                return
            if self._pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._pipe.close()
            self._process.wait()
            self._process = None

    def _after_fork_in_child(self) -> None:
        # Our copy of the pipe would keep the guardian from seeing our parent die.
        pipe = self._pipe
        self._process = None
        self._pipe = None
        self._lock = threading.Lock()
        if pipe is not None:
            with contextlib.suppress(OSError, ValueError):
                pipe.close()  # the buffer is always flushed, so this writes nothing


def _after_fork() -> None:
    guardian = Guardian._shared
    if guardian is not None:
        guardian._after_fork_in_child()
        Guardian._shared = None


os.register_at_fork(after_in_child=_after_fork)
