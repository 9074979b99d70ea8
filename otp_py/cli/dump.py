"""What ``otp-py run`` prints on SIGQUIT: the state of the tree, and of the process.

A JVM prints every thread's stack on SIGQUIT (``kill -3``) and carries on; a Go
program prints every goroutine's. ``otp-py run`` does the same for what an operator
of a stuck tree needs: the tree table (every supervisor and child, its state,
restarts, pid and last exit), the last events, the stack of every thread of the
supervising process, and the stack of every asyncio task on the tree's loop (where a
child task that will not stop is waiting). The tree keeps running.

The text goes to standard error from a thread of its own, with plain ``os.write``
calls: a dump can be long, and standard error may be a pipe that nobody reads; the
event loop must not wait on it (the tree would stop answering), and a thread stuck
there must hold no lock that the interpreter needs at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
import traceback
from typing import Final

import otp_py as otp
from otp_py.cli.render import table_lines
from otp_py.cli.snapshot import Recorder, snapshot
from otp_py.cli.view import clock, summary

__all__ = ["state_dump", "write_detached"]

EVENTS: Final = 20
"""How many of the last events a dump shows."""

TASK_FRAMES: Final = 12
"""How many frames of each asyncio task's await chain a dump shows (outermost first)."""


async def state_dump(sup: otp.AsyncSupervisor | None, spec: otp.SupervisorSpec,
                     recorder: Recorder, signal_name: str = "SIGQUIT") -> str:
    """The dump, as text (``sup`` is None while the tree is still starting)."""
    now = time.time()
    lines = [f"otp-py: {signal_name}: state of tree {spec.id!r} (pid {os.getpid()}) at "
             f"{clock(now)}; the tree keeps running"]
    if sup is None:
        lines.append("the tree is still starting")
    else:
        root = await snapshot(sup, spec, recorder)
        lines.append(f"tree {spec.id!r}: {summary(root)}")
        lines.extend(table_lines(root, now))
    events = recorder.recent(EVENTS)
    lines.append(f"last {len(events)} events:")
    lines.extend(f"  {clock(float(e['at']))} {e['text']}" for e in events)
    lines.extend(_threads())
    lines.extend(_tasks())
    lines.append(f"otp-py: end of the {signal_name} dump")
    return "\n".join(lines) + "\n"


def _threads() -> list[str]:
    names = {t.ident: t for t in threading.enumerate()}
    lines: list[str] = []
    frames = sys._current_frames()
    lines.append(f"{len(frames)} thread{'s' if len(frames) != 1 else ''}:")
    for ident, frame in frames.items():
        thread = names.get(ident)
        label = f"{thread.name} (daemon)" if thread is not None and thread.daemon else \
            (thread.name if thread is not None else "?")
        lines.append(f"thread {label}, id {ident}:")
        lines.extend(line.rstrip("\n") for line in traceback.format_stack(frame))
    return lines


def _tasks() -> list[str]:
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:  # no running loop
        return []
    lines = [f"{len(tasks)} asyncio task{'s' if len(tasks) != 1 else ''}:"]
    for task in sorted(tasks, key=lambda t: t.get_name()):
        coro = task.get_coro()
        lines.append(f"task {task.get_name()} ({getattr(coro, '__qualname__', coro)}):")
        lines.extend(_awaiting(coro))
    return lines


def _awaiting(coro: object) -> list[str]:
    """Where a suspended coroutine waits: its frame, then the frame of what it awaits,
    and so on (``Task.get_stack`` shows only the outermost frame)."""
    lines: list[str] = []
    while coro is not None and len(lines) < TASK_FRAMES:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, '
                         f"in {code.co_name}")
        inner = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        if inner is not None and not hasattr(inner, "cr_frame") \
                and not hasattr(inner, "gi_frame"):
            name = type(inner).__name__
            lines.append("  awaiting a future" if name in ("FutureIter", "Future", "generator")
                         else f"  awaiting {name}")
            break
        coro = inner
    return lines


def write_detached(text: str, fd: int = 2) -> None:
    """Write ``text`` to ``fd`` from a daemon thread; never block the caller."""

    def write() -> None:
        data = text.encode(errors="replace")
        with contextlib.suppress(OSError):
            while data:
                data = data[os.write(fd, data):]

    threading.Thread(target=write, name="otp-py:dump", daemon=True).start()
