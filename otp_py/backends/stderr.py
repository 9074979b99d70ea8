"""The tail of a child's standard error, for its crash history.

A process or command child's standard error is a pipe read on the event loop: every
chunk is copied to the supervisor's own standard error at once (nothing is hidden),
and the last :data:`TAIL_BYTES` are kept, so that when the child dies its crash
report can say what it printed last.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

__all__ = ["TAIL_BYTES", "StderrTail"]

TAIL_BYTES = 4096


class StderrTail:
    """Reads the pipe ``fd`` on ``loop`` until :meth:`close`."""

    __slots__ = ("_fd", "_loop", "_tail")

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self._loop = loop
        self._fd: int | None = fd
        self._tail = bytearray()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._read)

    def _read(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # every writer is gone
            self._loop.remove_reader(fd)
            return
        self._keep(data)

    def _keep(self, data: bytes) -> None:
        self._tail += data
        if len(self._tail) > TAIL_BYTES:
            del self._tail[: len(self._tail) - TAIL_BYTES]
        _forward(data)

    def close(self) -> str | None:
        """Take what is left in the pipe, stop reading, return the tail (or None)."""
        fd = self._fd
        if fd is None:
            return self.tail
        self._fd = None
        with contextlib.suppress(OSError, ValueError):
            self._loop.remove_reader(fd)
        with contextlib.suppress(OSError):
            while data := os.read(fd, 65536):
                self._keep(data)
        os.close(fd)
        return self.tail

    @property
    def tail(self) -> str | None:
        return self._tail.decode(errors="replace") if self._tail else None


def _forward(data: bytes) -> None:
    stream = sys.stderr
    if stream is None:
        return
    try:
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            buffer.write(data)
        else:
            stream.write(data.decode(errors="replace"))
        stream.flush()
    except (OSError, ValueError):
        pass
