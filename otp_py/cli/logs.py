"""``otp-py logs``: print the end of a log file, and follow it across rotations.

The files are the ones a tree writes when it captures its children's output (see
:class:`~otp_py.OutputCapture`): a rotation renames the file ``.1`` and starts a new
one, so a follower reads the old file to its end, then the new one from its start;
a file emptied in place (``backups = 0``) is read again from its start. Restarts
need nothing special: each start of a child writes a marker line into its log.

Following waits on inotify (through ``ctypes``: the standard library has no binding)
for the log's directory, with a bounded wait as a safety net; where inotify is not
available it looks again every :data:`POLL` seconds. This is a client: the tree
itself never polls.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import struct
import sys
import time
from collections.abc import Callable
from typing import BinaryIO, Final

__all__ = ["POLL", "follow", "last_lines"]

POLL: Final = 0.25
"""Seconds between two looks at the file without inotify."""

WAKE: Final = 1.0
"""With inotify, look again after this long even without an event (a file system
that sends none, such as some network ones)."""

_BLOCK = 65536
_IN_MODIFY = 0x002
_IN_ATTRIB = 0x004
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_FROM = 0x040
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")
_MASK = (_IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO
         | _IN_CREATE | _IN_DELETE)


def _tail_of(path: str, count: int, limit: int | None = None) -> tuple[list[bytes], int]:
    """The last ``count`` lines of the file at ``path`` (fewer if it has fewer; none
    if it is missing), read backwards from its end, reading at most ``limit`` bytes;
    and the bytes read. Cut by ``limit``, the first line is the end of a longer one
    (kept when it is the only one: a file with no newline shows its end)."""
    if count <= 0 or (limit is not None and limit <= 0):
        return [], 0
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed below, after a seek loop
    except OSError:
        return [], 0
    with file:
        end = file.seek(0, os.SEEK_END)
        blocks: list[bytes] = []  # (newest last; joined once: no quadratic copying)
        newlines = 0
        position = end
        while position > 0 and newlines <= count and (limit is None or end - position < limit):
            step = min(_BLOCK, position, _BLOCK if limit is None else limit - (end - position))
            position -= step
            file.seek(position)
            block = file.read(step)
            newlines += block.count(b"\n")
            blocks.append(block)
    lines = b"".join(reversed(blocks)).splitlines(keepends=True)
    if position > 0 and len(lines) > 1:
        lines = lines[1:]  # (the first may be the end of a longer line)
    return lines[-count:], end - position


def last_lines(path: str, count: int, *, limit: int | None = None) -> list[bytes]:
    """The last ``count`` lines logged at ``path``, taken from its rotated files
    (``path.1``, ``path.2``...) too when the file itself has fewer; reading at most
    ``limit`` bytes in all (a child that writes no newline makes one line of a whole
    file: a viewer that shows a tail must not read gigabytes for it)."""
    lines, used = _tail_of(path, count, limit)
    number = 1
    while len(lines) < count and os.path.exists(f"{path}.{number}") and \
            (limit is None or used < limit):
        more, read = _tail_of(f"{path}.{number}", count - len(lines),
                              None if limit is None else limit - used)
        lines = more + lines
        used += read
        number += 1
    return lines


class _Inotify:
    """A watch on one directory (None if the kernel or libc offers none)."""

    def __init__(self, directory: str) -> None:
        self.fd: int | None = None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        except (OSError, AttributeError):
            return
        if fd < 0:
            return
        if libc.inotify_add_watch(fd, os.fsencode(directory), _MASK) < 0:
            os.close(fd)
            return
        self.fd = fd

    def wait(self, name: str, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for an event about the file ``name``."""
        deadline = time.monotonic() + timeout
        assert self.fd is not None
        wanted = os.fsencode(name)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select([self.fd], [], [], left)
            if not readable:
                return
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            offset = 0
            while offset + _EVENT.size <= len(data):
                _wd, _mask, _cookie, length = _EVENT.unpack_from(data, offset)
                raw = data[offset + _EVENT.size: offset + _EVENT.size + length]
                offset += _EVENT.size + length
                if raw.rstrip(b"\0") == wanted:
                    return

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _same_file(file: BinaryIO, path: str) -> bool | None:
    """Whether ``path`` is still ``file`` (None: there is no file at ``path``)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    mine = os.fstat(file.fileno())
    return (info.st_dev, info.st_ino) == (mine.st_dev, mine.st_ino)


def follow(path: str, count: int, write: Callable[[bytes], None], *,
           keep_going: bool = True) -> None:
    """Write the last ``count`` lines of ``path``, then (``keep_going``) what is
    appended to it, across its rotations, until interrupted (KeyboardInterrupt).
    ``write`` gets bytes as they come. A missing file is waited for."""
    file: BinaryIO | None = None
    with contextlib.suppress(OSError):
        file = open(path, "rb")  # noqa: SIM115 - kept open while following
    try:
        # The tail and what follows come from the same open file: nothing written in
        # between is lost or shown twice.
        if file is not None:
            end = file.seek(0, os.SEEK_END)
            lines = last_lines(path, count)
            if lines:
                write(b"".join(lines))
            file.seek(end)
        else:
            lines = last_lines(path, count)  # (rotated files, if any)
            if lines:
                write(b"".join(lines))
        if not keep_going:
            return
        directory, name = os.path.split(path)
        watch: _Inotify | None = None
        try:
            while True:
                if file is not None:
                    while chunk := file.read(_BLOCK):
                        write(chunk)
                    same = _same_file(file, path)
                    if same is False:  # rotated: the old file is read to its end above
                        while chunk := file.read(_BLOCK):
                            write(chunk)
                        file.close()
                        file = None
                    elif same and os.fstat(file.fileno()).st_size < file.tell():
                        file.seek(0)  # emptied in place (no backups kept)
                        continue
                if file is None:
                    with contextlib.suppress(OSError):
                        file = open(path, "rb")  # noqa: SIM115
                    if file is not None:
                        continue
                if watch is None and os.path.isdir(directory or "."):
                    watch = _Inotify(directory or ".")
                if watch is not None and watch.fd is not None:
                    watch.wait(name, WAKE)
                else:
                    time.sleep(POLL)
        finally:
            if watch is not None:
                watch.close()
    finally:
        if file is not None:
            file.close()


def stdout_writer() -> Callable[[bytes], None]:
    """Write bytes to standard output at once (a follower's output is read live)."""
    stream = sys.stdout.buffer

    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()

    return write
