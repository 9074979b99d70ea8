"""A child's standard error: its tail for the crash history, and its copy.

A process or command child's standard error is a pipe read on the event loop. The
last :data:`TAIL_BYTES` of it are kept, so that when the child dies its crash report
can say what it printed last, and everything is copied to the supervisor's own
standard error (nothing is hidden).

The copy must never block the loop. The supervisor's fd 2 may be a pipe nobody reads
(a log collector that stalled, a test harness), and one write to it would freeze
calls, restarts, heartbeats and signal handling for the whole tree. So the loop never
writes it: it hands the bytes to :class:`_Copier`, one writer thread per process,
through a bounded buffer (:data:`BUFFER_BYTES`), and the thread does the blocking
writes. Why a thread rather than non-blocking writes on the loop:

* ``O_NONBLOCK`` belongs to the open file description, which fd 2 shares with the
  parent shell and every other process that inherited it; a ``dup`` shares it too.
  Setting it would make *their* writes fail with ``EAGAIN``, and clearing it later
  would race with them. Reopening ``/proc/self/fd/2`` gives a description of our own
  only for pipes and terminals, not for sockets, and loses the file position of a
  plain file that is not in append mode.
* A thread works whatever fd 2 is, changes nothing for anyone else, and may block as
  long as it likes: only it waits, the loop only appends to memory.

What happens when the buffer is full depends on whether the target moves:

* While the writer is getting its bytes out, a child whose output does not fit is
  paused: its pipe is not read for a while (the child then waits on its own writes,
  as it did when the copy was a blocking write), so nothing is lost when the target
  keeps up, even a slow one.
* Once a single write has been stuck for :data:`STALL` seconds, the target is taken
  to be stalled: what does not fit is dropped, the child runs on at full speed, and
  the dropped bytes are counted. The count is reported as an
  :class:`~otp_py.reports.OutputDropped` (at most one per child per second, and one at
  the child's end), and a line in the copy itself says how much is missing once it
  moves again. The tail is kept from the pipe, before the copy, so the crash history
  is complete either way.

Order is kept per child (one queue, one writer). Lines of different children do not
interleave mid-line: only whole lines are handed to the writer, except a line longer
than :data:`LINE_BYTES` or one that stays unfinished for :data:`PARTIAL_DELAY` seconds
(a prompt), which go as they are.

The writer thread runs while a tail is open or bytes wait to be written; an exit hook
gives it a moment to finish (:func:`flush`), unless the target is stalled.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from otp_py._core.reports import OutputDropped

__all__ = ["BUFFER_BYTES", "TAIL_BYTES", "StderrTail", "flush"]

TAIL_BYTES = 4096
"""How much of the end of a child's standard error its crash history keeps."""

BUFFER_BYTES = 1 << 20
"""Bytes that may wait for the writer (all children together) before a child is
paused or, with a stalled target, its output dropped."""

FINAL_BYTES = 2 * BUFFER_BYTES
"""The limit for what a child that has ended still had in its pipe: it cannot be
paused any more, so it may use a little more than the buffer."""

STALL = 1.0
"""Seconds one write may take before the target is taken to be stalled."""

LINE_BYTES = 8192
"""An unfinished line is held back (to keep lines whole) up to this size."""

PARTIAL_DELAY = 0.1
"""Seconds an unfinished line is held back at most."""

REPORT_EVERY = 1.0
"""At most one :class:`OutputDropped` per child in this many seconds."""

_READ_BYTES = 65536
_CLOSE_READS = 16  # what a child's pipe may still hold at its end: at most this many reads


class _Copier:
    """The writer of this process's copies: a bounded queue drained by one thread.

    The loop side (:meth:`offer`, :meth:`stalled`, :meth:`wake_me`) only takes a lock
    that the writer never holds while it writes, so it never waits on the target."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[bytes] = deque()
        self._queued = 0  # bytes queued or being written
        self._users = 0  # open tails
        self._busy_since: float | None = None  # when the write in progress began
        self._sleepers: set[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = set()
        self._thread: threading.Thread | None = None

    def attach(self) -> None:
        with self._cond:
            self._users += 1

    def detach(self) -> None:
        with self._cond:
            self._users -= 1
            self._cond.notify_all()

    def offer(self, data: bytes, *, final: bool = False) -> bool:
        """Queue ``data`` if it fits (an empty queue takes any chunk); False if not."""
        limit = FINAL_BYTES if final else BUFFER_BYTES
        with self._cond:
            if self._queued and self._queued + len(data) > limit:
                return False
            self._queue.append(data)
            self._queued += len(data)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="otp:stderr-copy", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return True

    def stalled(self) -> bool:
        """Whether the write in progress has been stuck for :data:`STALL` seconds."""
        busy_since = self._busy_since
        return busy_since is not None and time.monotonic() - busy_since > STALL

    def wake_me(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        """Have ``callback`` called on ``loop`` once the buffer is half empty."""
        with self._cond:
            self._sleepers.add((loop, callback))

    def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the queue to be written, but not for a
        stalled target."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queued and not self.stalled():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(min(left, 0.05))

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._queue:
                    if self._users == 0:
                        # (a short linger: a restarting child reuses the thread)
                        cond.wait(0.05)
                        if not self._queue and self._users == 0:
                            self._thread = None
                            return
                    else:
                        cond.wait()
                data = self._queue.popleft()
                self._busy_since = time.monotonic()
            _write(data)
            with cond:
                self._busy_since = None
                self._queued -= len(data)
                if self._sleepers and self._queued <= BUFFER_BYTES // 2:
                    sleepers, self._sleepers = self._sleepers, set()
                    for loop, callback in sleepers:
                        with contextlib.suppress(RuntimeError):  # (its loop has closed)
                            loop.call_soon_threadsafe(callback)
                cond.notify_all()


def _write(data: bytes) -> None:
    """Write ``data`` to the supervisor's standard error, blocking as long as it takes
    (on the writer thread only). Written to the descriptor, not through
    ``sys.stderr``'s buffer, whose lock the loop's own logging also takes."""
    stream = sys.stderr
    if stream is None:
        return
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # an in-memory stream
        with contextlib.suppress(Exception):
            stream.write(data.decode(errors="replace"))
            stream.flush()
        return
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:  # somebody else made the shared description non-blocking
            with contextlib.suppress(OSError, ValueError):
                select.select([], [fd], [], 1.0)
        except OSError:  # closed, broken pipe: nobody will read it
            return


_COPIER = _Copier()


def _new_copier() -> None:
    global _COPIER
    _COPIER = _Copier()  # a forked child has no writer thread, and maybe a held lock


os.register_at_fork(after_in_child=_new_copier)


def flush(timeout: float = 2.0) -> None:
    """Give the copies still queued ``timeout`` seconds to be written (at exit)."""
    _COPIER.flush(timeout)


atexit.register(flush)


class StderrTail:
    """Reads the pipe ``fd`` on ``loop`` until :meth:`close`, keeping its tail and
    copying it to the supervisor's standard error.

    ``env`` and ``sink`` are the child's: with both, the bytes dropped from the copy
    are reported to ``sink`` as :class:`~otp_py.reports.OutputDropped` reports made
    by ``env``."""

    __slots__ = (
        "_copier", "_env", "_eof", "_fd", "_last_report", "_loop", "_partial", "_partial_timer",
        "_paused", "_reading", "_report_timer", "_resume_timer", "_sink",
        "_tail", "_total", "_unmarked", "_unreported",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, env: Any = None, sink: Any = None
    ) -> None:
        self._loop = loop
        self._fd: int | None = fd
        self._tail = bytearray()
        self._partial = b""  # an unfinished line, held back
        self._partial_timer: asyncio.TimerHandle | None = None
        self._paused: bytes | None = None  # a chunk waiting for room in the buffer
        self._resume_timer: asyncio.TimerHandle | None = None
        self._eof = False
        self._total = 0  # bytes dropped from the copy
        self._unreported = 0
        self._unmarked = 0  # dropped, not yet said in the copy
        self._last_report = -REPORT_EVERY
        self._report_timer: asyncio.TimerHandle | None = None
        self._env = env
        self._sink = sink
        self._copier = _COPIER
        self._copier.attach()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._read)
        self._reading = True

    @property
    def dropped(self) -> int:
        """Bytes of this child's output dropped from the copy so far."""
        return self._total

    @property
    def tail(self) -> str | None:
        return self._tail.decode(errors="replace") if self._tail else None

    # -- reading

    def _read(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            data = os.read(fd, _READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # every writer is gone
            self._stop_reading()
            self._eof = True
            self._flush_partial()
            return
        self._keep(data)
        self._take(data)

    def _keep(self, data: bytes) -> None:
        self._tail += data
        if len(self._tail) > TAIL_BYTES:
            del self._tail[: len(self._tail) - TAIL_BYTES]

    def _stop_reading(self) -> None:
        if self._reading and self._fd is not None:
            self._reading = False
            with contextlib.suppress(OSError, ValueError):
                self._loop.remove_reader(self._fd)

    def _start_reading(self) -> None:
        if not self._reading and not self._eof and self._fd is not None:
            self._reading = True
            self._loop.add_reader(self._fd, self._read)

    # -- copying

    def _take(self, data: bytes) -> None:
        """Copy the whole lines of what was held back plus ``data``; hold back the
        unfinished rest (unless it is long)."""
        held = self._partial + data if self._partial else data
        cut = held.rfind(b"\n") + 1
        if len(held) - cut > LINE_BYTES:
            cut = len(held)
        chunk, self._partial = held[:cut], held[cut:]
        if self._partial:
            if self._partial_timer is None:
                self._partial_timer = self._loop.call_later(PARTIAL_DELAY, self._flush_partial)
        elif self._partial_timer is not None:
            self._partial_timer.cancel()
            self._partial_timer = None
        if chunk:
            self._send(chunk)

    def _flush_partial(self) -> None:
        self._partial_timer = None
        if not self._partial:
            return
        if self._paused is not None:  # (older bytes go first)
            self._partial_timer = self._loop.call_later(PARTIAL_DELAY, self._flush_partial)
            return
        chunk, self._partial = self._partial, b""
        self._send(chunk)

    def _send(self, chunk: bytes, *, final: bool = False) -> None:
        """Queue ``chunk`` for the writer; if there is no room, pause (the target
        moves) or drop it (the target is stalled, or the child has ended)."""
        copier = self._copier
        if not (final and copier.stalled()) and copier.offer(self._marked(chunk), final=final):
            self._unmarked = 0
            return
        if final or copier.stalled():
            self._drop(len(chunk))
            return
        self._paused = chunk
        self._stop_reading()
        copier.wake_me(self._loop, self._resume)
        # (and a look after a while: the target may have stalled meanwhile)
        self._resume_timer = self._loop.call_later(STALL, self._resume)

    def _marked(self, chunk: bytes) -> bytes:
        if not self._unmarked:
            return chunk
        where = self._env.name if self._env is not None else "a child"
        return (f"[otp_py: {self._unmarked} bytes of the stderr of {where} were dropped: "
                f"this stderr did not keep up]\n").encode() + chunk

    def _resume(self) -> None:
        chunk = self._paused
        if chunk is None or self._fd is None:  # (a second wake-up, or closed)
            return
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None
        self._paused = None
        self._send(chunk)
        if self._paused is None:
            self._start_reading()

    # -- dropped bytes

    def _drop(self, count: int) -> None:
        self._total += count
        self._unreported += count
        self._unmarked += count
        if self._report_timer is None and self._fd is not None:
            delay = max(0.0, self._last_report + REPORT_EVERY - self._loop.time())
            self._report_timer = self._loop.call_later(delay, self._report)

    def _report(self) -> None:
        self._report_timer = None
        if not self._unreported or self._env is None or self._sink is None:
            return
        report = self._env.make_report(
            OutputDropped, child_id=self._env.path[-1], stream="stderr",
            dropped=self._unreported, total=self._total)
        self._unreported = 0
        self._last_report = self._loop.time()
        if report is not None:
            self._sink.report(report)

    # -- the end

    def close(self) -> str | None:
        """Take what is left in the pipe, stop reading, hand the rest to the writer
        (or count it dropped), report what was dropped, and return the tail (or
        None). Never waits: a pipe still being written (a grandchild holds it) is
        read a bounded number of times."""
        fd = self._fd
        if fd is None:
            return self.tail
        self._stop_reading()
        self._fd = None
        for timer in (self._partial_timer, self._resume_timer):
            if timer is not None:
                timer.cancel()
        self._partial_timer = self._resume_timer = None
        rest = [self._paused] if self._paused is not None else []
        self._paused = None
        rest.append(self._partial)
        self._partial = b""
        with contextlib.suppress(OSError):
            for _ in range(_CLOSE_READS):
                data = os.read(fd, _READ_BYTES)
                if not data:
                    break
                self._keep(data)
                rest.append(data)
        os.close(fd)
        for chunk in rest:
            if chunk:
                self._send(chunk, final=True)
        if self._unmarked and not self._copier.stalled():
            self._copier.offer(self._marked(b""), final=True)
        self._copier.detach()
        if self._report_timer is not None:
            self._report_timer.cancel()
        self._report()
        return self.tail
