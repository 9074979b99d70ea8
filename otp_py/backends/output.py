"""A child's standard output and error: its stderr tail, its log files, its copies.

A process or command child's output reaches the supervisor through pipes read on
the event loop (:class:`OutputReader`). What is read goes to *destinations*:

* the child's log files, one per stream, when its output is captured
  (:class:`~otp_py.OutputCapture`), rotated by size, with a marker line at each
  start (:class:`ChildStreams` sets this up for one start of a child);
* the supervisor's own stdout or stderr: the plain copy of a child's stderr when
  nothing is captured (the library default: nothing is hidden), or, with
  ``passthrough``, each captured line prefixed with the child's path and ``" | "``.

The last :data:`TAIL_BYTES` of a child's stderr are kept as well, so that its crash
report can say what it printed last, whatever happens to the copies.

Nothing here may block the loop. A log directory on a slow disk (or a log file that
is a FIFO nobody reads), and a supervisor fd 2 that is a pipe nobody reads (a stalled
log collector, a test harness), would freeze calls, restarts, heartbeats and signal
handling for the whole tree if the loop wrote to them. So the loop never writes: it
hands the bytes to a *copier*, a writer thread with a bounded buffer
(:data:`BUFFER_BYTES`), and the thread does the blocking ``open``, ``write`` and
``rename``. There are three copiers per process, each with its own thread and
buffer, so that one stalled target does not hold up the others: one for the log
files, one for the supervisor's stdout, one for its stderr. Why threads rather than
non-blocking writes on the loop:

* ``O_NONBLOCK`` belongs to the open file description, which fd 2 shares with the
  parent shell and every other process that inherited it; a ``dup`` shares it too.
  Setting it would make *their* writes fail with ``EAGAIN``, and clearing it later
  would race with them. Reopening ``/proc/self/fd/2`` gives a description of our own
  only for pipes and terminals, not for sockets, and loses the file position of a
  plain file that is not in append mode.
* Files on a disk ignore ``O_NONBLOCK`` altogether: a write to a slow disk, an
  ``open`` on a hung network file system, a ``rename`` at rotation all block.
* A thread works whatever the target is, changes nothing for anyone else, and may
  block as long as it likes: only it waits, the loop only appends to memory.

What happens when a copier's buffer is full depends on whether its target moves:

* While the writer is getting its bytes out, a child whose output does not fit is
  paused: its pipe is not read for a while (the child then waits on its own writes,
  as it would writing to a file itself), so nothing is lost when the target keeps
  up, even a slow one.
* Once a single write (or open) has been stuck for :data:`STALL` seconds, the target
  is taken to be stalled: what does not fit is dropped, the child runs on at full
  speed, and the dropped bytes are counted. The count is reported as an
  :class:`~otp_py.reports.OutputDropped` (at most one per child and stream per
  second, and one at the child's end), and a line in the copy itself says how much
  is missing once it moves again. The tail is kept from the pipe, before the copies,
  so the crash history is complete either way.

Order is kept per child and destination (one queue, one writer). Lines of different
children do not interleave mid-line: only whole lines are handed to the writers,
except a line longer than :data:`LINE_BYTES` or one that stays unfinished for
:data:`PARTIAL_DELAY` seconds (a prompt), which go as they are.

A writer thread runs while a reader is open or bytes wait to be written; an exit hook
gives the writers a moment to finish (:func:`flush`), unless their target is stalled.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import errno
import logging
import os
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs

from otp_py._core.reports import OutputDropped

__all__ = [
    "BUFFER_BYTES",
    "TAIL_BYTES",
    "Capture",
    "ChildStreams",
    "OutputReader",
    "StderrTail",
    "TreeLog",
    "flush",
    "marker",
]

logger = logging.getLogger("otp_py")

TAIL_BYTES = 4096
"""How much of the end of a child's standard error its crash history keeps."""

BUFFER_BYTES = 1 << 20
"""Bytes that may wait for one writer (all children together) before a child is
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
"""At most one :class:`OutputDropped` per child and stream in this many seconds."""

MARKER: Final = b"--- otp-py: "
"""How the lines otp_py writes into a child's log file begin (its start markers)."""

_READ_BYTES = 65536
_CLOSE_READS = 16  # what a child's pipe may still hold at its end: at most this many reads
_CLOSE = None  # a queue item's data that closes its target


# ---------------------------------------------------------------------- targets
# Run on a writer thread only: each may block as long as its file or stream does.


class _Std:
    """The supervisor's own stdout or stderr, looked up at each write (a test or an
    application may replace ``sys.stderr``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.label = f"the supervisor's {name}"

    def write(self, data: bytes) -> None:
        """Write to the descriptor, not through the stream's buffer, whose lock the
        loop's own logging also takes."""
        stream = getattr(sys, self.name)
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

    def close(self) -> None:
        pass


class _LogFile:
    """A log file, rotated by size as supervisord's ``*_logfile_maxbytes`` and
    ``*_backups`` do: before a write would take it past ``max_bytes`` (0: never), it
    is renamed ``.1`` (the older ``.1`` becoming ``.2``...; ``backups`` of them are
    kept, and with 0 the file is emptied instead). A write is cut at a line end when
    it can be, so lines stay whole across files; only a line longer than a whole file
    is split. Opened on the first write, closed by the reader at the child's end."""

    def __init__(self, path: str, max_bytes: int, backups: int) -> None:
        self.path = path
        self.label = f"its log file {path}"
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd: int | None = None
        self._size = 0
        self._failed: str | None = None  # the last error said, to say each one once

    def write(self, data: bytes) -> None:
        try:
            if self._fd is None:
                self._open()
            limit = self.max_bytes
            while data:
                if not limit or self._size + len(data) <= limit:
                    self._write(data)
                    break
                room = limit - self._size
                cut = data.rfind(b"\n", 0, room) + 1 if room > 0 else 0
                if not cut and self._size == 0:
                    cut = limit  # one line longer than a whole file
                if cut:
                    self._write(data[:cut])
                    data = data[cut:]
                self._rotate()
            self._failed = None
        except OSError as exc:
            self._fail(exc)

    def _open(self, flags: int = 0) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        flags |= os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            self._fd = os.open(self.path, flags | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno != errno.ELOOP or not _trusted_link(self.path):
                raise
            self._fd = os.open(self.path, flags, 0o644)  # a link the user made: followed
        self._size = 0 if flags & os.O_TRUNC else os.fstat(self._fd).st_size

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self._size += written

    def _rotate(self) -> None:
        self.close()
        if self.backups <= 0:
            self._open(os.O_TRUNC)
            return
        for number in range(self.backups - 1, 0, -1):
            older = f"{self.path}.{number}"
            if os.path.lexists(older):
                os.replace(older, f"{self.path}.{number + 1}")
        os.replace(self.path, f"{self.path}.1")
        self._open()

    def _fail(self, exc: OSError) -> None:
        text = exc.strerror or str(exc)
        if text != self._failed:  # (said once, not at every line)
            self._failed = text
            logger.warning("otp_py: cannot write the log file %s: %s; its output is lost "
                           "until it can be written again", self.path, text)
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            self.close()  # (opened again at the next write)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def _trusted_link(path: str) -> bool:
    """Whether to follow the symbolic link at ``path`` (a log file's name): always in a
    directory only its owner can write, else only a link of ours or of the
    directory's owner (the kernel's ``fs.protected_symlinks`` rule, which not every
    machine turns on). Another user could otherwise plant a link in a shared log
    directory and have a child's output appended to a file of ours."""
    link = os.lstat(path)
    folder = os.stat(os.path.dirname(path))
    if not folder.st_mode & 0o022:
        return True
    return link.st_uid in (os.geteuid(), folder.st_uid)


# ---------------------------------------------------------------------- writers


class _Copier:
    """A writer thread and its bounded queue of ``(target, data)``.

    The loop side (:meth:`offer`, :meth:`stalled`, :meth:`wake_me`) only takes a lock
    that the writer never holds while it writes, so it never waits on the target."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[tuple[Any, bytes | None]] = deque()
        self._queued = 0  # bytes queued or being written
        self._users = 0  # open readers and logs
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

    def offer(self, target: Any, data: bytes | None, *, final: bool = False) -> bool:
        """Queue ``data`` for ``target`` if it fits (an empty queue takes any chunk;
        ``None`` closes the target and always fits); False if not."""
        size = len(data) if data is not None else 0
        limit = FINAL_BYTES if final else BUFFER_BYTES
        with self._cond:
            if size and self._queued and self._queued + size > limit:
                return False
            self._queue.append((target, data))
            self._queued += size
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"otp:{self.name}-copy", daemon=True)
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
            while self._queue or self._busy_since is not None:
                if self.stalled():
                    return
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
                target, data = self._queue.popleft()
                self._busy_since = time.monotonic()
            try:
                if data is _CLOSE:
                    target.close()
                else:
                    target.write(data)
            except Exception:  # a target's bug must not end the writer
                logger.exception("otp_py: writing %s failed", target.label)
            with cond:
                self._busy_since = None
                self._queued -= len(data) if data is not None else 0
                if self._sleepers and self._queued <= BUFFER_BYTES // 2:
                    sleepers, self._sleepers = self._sleepers, set()
                    for loop, callback in sleepers:
                        with contextlib.suppress(RuntimeError):  # (its loop has closed)
                            loop.call_soon_threadsafe(callback)
                cond.notify_all()


def _new_copiers() -> dict[str, _Copier]:
    return {name: _Copier(name) for name in ("files", "stdout", "stderr")}


_COPIERS = _new_copiers()


def _after_fork_in_child() -> None:
    global _COPIERS
    _COPIERS = _new_copiers()  # a forked child has no writer thread, and maybe a held lock


os.register_at_fork(after_in_child=_after_fork_in_child)


def flush(timeout: float = 2.0) -> None:
    """Give the copies still queued ``timeout`` seconds to be written (at exit)."""
    deadline = time.monotonic() + timeout
    for copier in list(_COPIERS.values()):
        copier.flush(max(deadline - time.monotonic(), 0.0))


atexit.register(flush)


# ---------------------------------------------------------------------- reading


class _Destination:
    """Where a reader's bytes go: a target on a copier, with an optional prefix for
    each line (passthrough), and what was dropped from it not yet said in it."""

    __slots__ = ("at_line_start", "copier", "prefix", "target", "unmarked")

    def __init__(self, copier: _Copier, target: Any, prefix: bytes = b"") -> None:
        self.copier = copier
        self.target = target
        self.prefix = prefix
        self.at_line_start = True
        self.unmarked = 0

    def render(self, chunk: bytes, stream: str, where: str) -> tuple[bytes, bool]:
        """The bytes to queue for ``chunk`` (after a note of what was dropped before
        it, each line prefixed), and whether they leave a line open."""
        note = b""
        start = self.at_line_start
        if self.unmarked:
            note = (f"[otp_py: {self.unmarked} bytes of the {stream} of {where} were "
                    f"dropped: {self.target.label} did not keep up]\n").encode()
            if not start:
                note = b"\n" + note
            start = True
        body = chunk
        prefix = self.prefix
        if prefix and chunk:
            head = prefix if start else b""
            if chunk.endswith(b"\n"):
                body = head + chunk[:-1].replace(b"\n", b"\n" + prefix) + b"\n"
            else:
                body = head + chunk.replace(b"\n", b"\n" + prefix)
        open_line = not chunk.endswith(b"\n") if chunk else not start
        return note + body, open_line


class OutputReader:
    """Reads the pipe ``fd`` on ``loop`` until :meth:`close`, handing what it reads
    to ``destinations`` (and keeping its tail if ``keep_tail``).

    ``stream`` (``"stdout"``, ``"stderr"``) names it in reports and notes; ``env``
    and ``sink`` are the child's: with both, the bytes dropped from a copy are
    reported to ``sink`` as :class:`~otp_py.reports.OutputDropped` reports made by
    ``env``."""

    __slots__ = (
        "_dests", "_env", "_eof", "_fd", "_last_report", "_loop", "_partial",
        "_partial_timer", "_paused", "_reading", "_report_timer", "_resume_timer", "_sink",
        "_stream", "_tail", "_total", "_unreported", "_worst", "keep_tail",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, destinations: Sequence[_Destination],
        *, stream: str = "stderr", keep_tail: bool = True, env: Any = None, sink: Any = None,
    ) -> None:
        self._loop = loop
        self._fd: int | None = fd
        self._dests = list(destinations)
        self._stream = stream
        self.keep_tail = keep_tail
        self._tail = bytearray()
        self._partial = b""  # an unfinished line, held back
        self._partial_timer: asyncio.TimerHandle | None = None
        # a chunk waiting for room in some buffers, and the destinations still to take it
        self._paused: tuple[bytes, list[_Destination]] | None = None
        self._resume_timer: asyncio.TimerHandle | None = None
        self._eof = False
        self._total = 0  # bytes dropped from a copy
        self._unreported = 0
        self._worst = ""  # the target that dropped last, for the report
        self._last_report = -REPORT_EVERY
        self._report_timer: asyncio.TimerHandle | None = None
        self._env = env
        self._sink = sink
        for dest in self._dests:
            dest.copier.attach()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._read)
        self._reading = True

    @property
    def dropped(self) -> int:
        """Bytes of this child's output dropped from a copy so far."""
        return self._total

    @property
    def tail(self) -> str | None:
        return self._tail.decode(errors="replace") if self._tail else None

    @property
    def _where(self) -> str:
        return self._env.name if self._env is not None else "a child"

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
        if not self.keep_tail:
            return
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
            self._send(chunk, self._dests)

    def _flush_partial(self) -> None:
        self._partial_timer = None
        if not self._partial:
            return
        if self._paused is not None:  # (older bytes go first)
            self._partial_timer = self._loop.call_later(PARTIAL_DELAY, self._flush_partial)
            return
        chunk, self._partial = self._partial, b""
        self._send(chunk, self._dests)

    def _send(self, chunk: bytes, dests: list[_Destination], *, final: bool = False) -> None:
        """Queue ``chunk`` for each of ``dests``; for those without room, pause (their
        target moves) or drop it (their target is stalled, or the child has ended)."""
        waiting: list[_Destination] = []
        dropped = False
        for dest in dests:
            copier = dest.copier
            if not (final and copier.stalled()):
                data, open_line = dest.render(chunk, self._stream, self._where)
                if copier.offer(dest.target, data, final=final):
                    dest.unmarked = 0
                    dest.at_line_start = not open_line
                    continue
            if final or copier.stalled():
                dest.unmarked += len(chunk)
                self._worst = dest.target.label
                dropped = True
            else:
                waiting.append(dest)
        if dropped:
            self._drop(len(chunk))
        if not waiting:
            return
        self._paused = (chunk, waiting)
        self._stop_reading()
        for dest in waiting:
            dest.copier.wake_me(self._loop, self._resume)
        # (and a look after a while: the target may have stalled meanwhile)
        if self._resume_timer is None:
            self._resume_timer = self._loop.call_later(STALL, self._resume)

    def _resume(self) -> None:
        paused = self._paused
        if paused is None or self._fd is None:  # (a second wake-up, or closed)
            return
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None
        self._paused = None
        self._send(*paused)
        if self._paused is None:
            self._start_reading()

    # -- dropped bytes

    def _drop(self, count: int) -> None:
        self._total += count
        self._unreported += count
        if self._report_timer is None and self._fd is not None:
            delay = max(0.0, self._last_report + REPORT_EVERY - self._loop.time())
            self._report_timer = self._loop.call_later(delay, self._report)

    def _report(self) -> None:
        self._report_timer = None
        if not self._unreported or self._env is None or self._sink is None:
            return
        report = self._env.make_report(
            OutputDropped, child_id=self._env.path[-1], stream=self._stream,
            dropped=self._unreported, total=self._total, target=self._worst)
        self._unreported = 0
        self._last_report = self._loop.time()
        if report is not None:
            self._sink.report(report)

    # -- the end

    def close(self, last_words: bytes = b"") -> str | None:
        """Take what is left in the pipe, stop reading, hand the rest to the writers
        (or count it dropped), report what was dropped, and return the tail (or
        None). ``last_words`` go to the destinations after the child's own bytes.
        Never waits: a pipe still being written (a grandchild holds it) is read a
        bounded number of times."""
        fd = self._fd
        if fd is None:
            return self.tail
        self._stop_reading()
        self._fd = None
        for timer in (self._partial_timer, self._resume_timer):
            if timer is not None:
                timer.cancel()
        self._partial_timer = self._resume_timer = None
        paused, self._paused = self._paused, None
        rest = [self._partial]
        self._partial = b""
        with contextlib.suppress(OSError):
            for _ in range(_CLOSE_READS):
                data = os.read(fd, _READ_BYTES)
                if not data:
                    break
                self._keep(data)
                rest.append(data)
        os.close(fd)
        if paused is not None:
            self._send(*paused, final=True)
        for chunk in rest:
            if chunk:
                self._send(chunk, self._dests, final=True)
        for dest in self._dests:
            if dest.unmarked and not dest.copier.stalled():
                data, _ = dest.render(b"", self._stream, self._where)
                dest.copier.offer(dest.target, data, final=True)
            if last_words and isinstance(dest.target, _LogFile):
                last = last_words if dest.at_line_start else b"\n" + last_words
                dest.copier.offer(dest.target, last, final=True)
            dest.copier.offer(dest.target, _CLOSE)
            dest.copier.detach()
        if self._report_timer is not None:
            self._report_timer.cancel()
        self._report()
        return self.tail


class StderrTail(OutputReader):
    """A child's stderr when its output is not captured: the tail for its crash
    history, and a plain copy to the supervisor's standard error (the reader of
    earlier versions; :class:`ChildStreams` builds the readers now)."""

    __slots__ = ()

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, env: Any = None, sink: Any = None
    ) -> None:
        copier = _COPIERS["stderr"]
        super().__init__(loop, fd, [_Destination(copier, _STDERR)], stream="stderr",
                         env=env, sink=sink)


_STDOUT = _Std("stdout")
_STDERR = _Std("stderr")


# ---------------------------------------------------------------------- one start


@attrs.frozen
class Capture:
    """Where the output of one start of a child goes, as its tree resolved it."""

    stdout: str
    """The log file of its standard output."""
    stderr: str
    """The log file of its standard error."""
    max_bytes: int
    backups: int
    passthrough: bool
    start: int = 1
    """Which start of the child this is (1: the first, 2: the first restart...)."""


def marker(text: str) -> bytes:
    """A line otp_py writes into a child's log file: ``--- otp-py: TEXT at TIME``."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return MARKER + f"{text} at {stamp}\n".encode()


class ChildStreams:
    """The standard output and error of one start of a process or command child.

    Made before the child starts, with the pipes it is to write to (:attr:`stdout_w`,
    :attr:`stderr_w`; ``None`` for a stream it inherits from the supervisor): its
    stdout is piped when captured (``env.output``, a :class:`Capture`, set by the
    runtime), its stderr when captured or when its tail is kept
    (``spec.capture_stderr``). Then, once the child runs, :meth:`started` closes our
    copies of its ends and reads ours on the loop; at its end :meth:`close` returns
    its stderr tail. :meth:`abort` closes everything if it never started."""

    __slots__ = ("_capture", "_env", "_keep_tail", "_pid", "_read", "_readers", "_sink",
                 "stderr_w", "stdout_w")

    def __init__(self, spec: Any, env: Any, sink: Any) -> None:
        self._capture: Capture | None = getattr(env, "output", None)
        self._env = env
        self._sink = sink
        self._keep_tail = bool(spec.capture_stderr)
        self._pid: int | None = None
        self._readers: list[OutputReader] = []
        self._read: dict[str, int] = {}
        self.stdout_w: int | None = None
        self.stderr_w: int | None = None
        try:
            if self._capture is not None:
                self._read["stdout"], self.stdout_w = os.pipe()
            if self._capture is not None or self._keep_tail:
                self._read["stderr"], self.stderr_w = os.pipe()
        except BaseException:
            self.abort()
            raise

    def close_child_ends(self) -> None:
        """Close our copies of the child's ends (once it has its own)."""
        for name in ("stdout_w", "stderr_w"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                os.close(fd)

    def abort(self) -> None:
        """The child did not start: close every pipe."""
        self.close_child_ends()
        for fd in self._read.values():
            os.close(fd)
        self._read = {}

    def started(self, pid: int) -> None:
        """The child ``pid`` runs: read its pipes, after the start markers."""
        self.close_child_ends()
        self._pid = pid
        capture = self._capture
        loop = self._env.loop
        for stream, fd in self._read.items():
            dests = []
            if capture is None:
                dests.append(_Destination(_COPIERS["stderr"], _STDERR))
            else:
                log = _LogFile(getattr(capture, stream), capture.max_bytes, capture.backups)
                files = _COPIERS["files"]
                again = f" (restart {capture.start - 1})" if capture.start > 1 else ""
                files.offer(log, marker(f"started pid {pid}{again}"), final=True)
                dests.append(_Destination(files, log))
                if capture.passthrough:
                    std = _STDOUT if stream == "stdout" else _STDERR
                    dests.append(_Destination(_COPIERS[stream], std,
                                              f"{self._env.name} | ".encode()))
            self._readers.append(OutputReader(
                loop, fd, dests, stream=stream, keep_tail=self._keep_tail and stream ==
                "stderr", env=self._env, sink=self._sink))
        self._read = {}

    def close(self, reason: Any = None) -> str | None:
        """The child has ended (``reason``, for the end marker): take the rest of its
        output and return its stderr tail (None if none was kept)."""
        self.abort()  # (pipes never handed to a reader)
        last = marker(f"pid {self._pid} ended: {reason}") if reason is not None else b""
        tail = None
        for reader in self._readers:
            text = reader.close(last)
            if reader.keep_tail:
                tail = text
        self._readers = []
        return tail


# ---------------------------------------------------------------------- the tree's log


class TreeLog:
    """The tree's own event log (``tree.log``): lines handed to the files writer.

    It never pauses anything: a line that does not fit the writer's buffer is
    dropped and counted, and a note in the log says so once it moves again."""

    def __init__(self, path: str, max_bytes: int, backups: int) -> None:
        self.path = path
        self._file = _LogFile(path, max_bytes, backups)
        self._copier = _COPIERS["files"]
        self._copier.attach()
        self._closed = False
        self.dropped = 0
        self._unmarked = 0

    def line(self, text: str) -> None:
        """Append ``text`` (one line, stamped with the wall-clock time)."""
        if self._closed:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        fraction = f"{time.time() % 1:.3f}"[1:]
        data = f"{stamp}{fraction} {text}\n".encode(errors="replace")
        if self._unmarked:
            data = (f"[otp_py: {self._unmarked} lines of this log were dropped: the log "
                    "file did not keep up]\n").encode() + data
        if self._copier.offer(self._file, data):
            self._unmarked = 0
        else:
            self.dropped += 1
            self._unmarked += 1

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._copier.offer(self._file, _CLOSE)
            self._copier.detach()
