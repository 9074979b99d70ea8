"""A nested supervisor in an OS process of its own (``SupervisorSpec(backend="process")``).

The parent runs it as a process child whose target is :func:`subtree_main`: the
subtree gets its own event loop and runtime in the new process, signals readiness
once its root has started every child, stops in order on SIGTERM, and ends with its
root's exit reason, which the parent sees as the child's.

Its reports travel to the parent over the child's pipe, so listeners and logging on
the parent's handle see every decision of the whole tree, as with a subtree on the
parent's loop. They are sent from a thread of their own: a parent that is slow to
read never stalls the subtree's supervision.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import signal
import threading
from collections.abc import Callable
from typing import Any

import attrs

from otp_py._core.reasons import Abnormal, ExitReason, Normal
from otp_py._core.reports import Report
from otp_py.backends.context import current_child, notify_ready
from otp_py.backends.reasons import ExitWith
from otp_py.runtime.guardian import Guardian
from otp_py.runtime.tree import Tree
from otp_py.spec import ChildSpec

__all__ = ["ReportForwarder", "as_process_child", "subtree_main"]

_DONE = object()


class ReportForwarder:
    """A report listener that hands reports to ``send`` on a thread of its own.

    At most ``limit`` reports wait to be sent; beyond that they are counted in
    ``dropped`` rather than held up (a crash storm under a stalled parent must not
    grow the subtree's memory). A report that cannot be pickled (a reason carrying an
    unpicklable term) is sent with its reasons as text."""

    def __init__(self, send: Callable[[Any], None], limit: int = 10_000) -> None:
        self._send = send
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=limit)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="otp:reports", daemon=True)
        self._thread.start()

    def __call__(self, report: Report) -> None:
        try:
            self._queue.put_nowait(report)
        except queue.Full:
            self.dropped += 1

    def then(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the sending thread once the reports before it are sent
        (the parent hears of the subtree's children before it hears it is up)."""
        self._queue.put(_Then(action))

    def close(self, timeout: float = 2.0) -> None:
        """Send what waits (for at most ``timeout`` seconds), then stop the thread."""
        with contextlib.suppress(queue.Full):
            self._queue.put(_DONE, timeout=timeout)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            report = self._queue.get()
            if report is _DONE:
                return
            if isinstance(report, _Then):
                with contextlib.suppress(OSError, ValueError):
                    report.action()
                continue
            try:
                self._send(report)
            except (OSError, ValueError, EOFError):
                return  # the parent is gone: nobody to tell
            except Exception:  # unpicklable
                try:
                    self._send(_as_text(report))
                except (OSError, ValueError, EOFError):
                    return
                except Exception:
                    self.dropped += 1


@attrs.frozen
class _Then:
    action: Callable[[], None]


def _as_text(report: Report) -> Report:
    """``report`` with each exit reason replaced by its text."""
    changes: dict[str, Any] = {}
    for field in attrs.fields(type(report)):
        value = getattr(report, field.name)
        if isinstance(value, ExitReason):
            changes[field.name] = Abnormal(str(value))
    return attrs.evolve(report, **changes)


def subtree_main(spec: Any) -> None:
    """The target of a subtree process: run ``spec`` until it ends."""
    context = current_child()
    forwarder = (ReportForwarder(context.forward)
                 if context is not None and context.forward is not None else None)

    async def main() -> ExitReason:
        loop = asyncio.get_running_loop()
        tree = Tree(spec, loop, guardian=Guardian.shared())
        if forwarder is not None:
            tree.listeners.append(forwarder)
            tree.log_reports = False  # the parent logs what it receives
        loop.add_signal_handler(signal.SIGTERM, tree.request_stop)
        tree.start()
        await asyncio.shield(tree.initialized)
        if tree.root.initialized:
            if forwarder is not None and context is not None:
                # (the sending thread does not see our context variable: give it
                # the context itself)
                forwarder.then(context.notify_ready)
            else:
                notify_ready()
        return await asyncio.shield(tree.done)

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        reason = asyncio.run(main())
    finally:
        if forwarder is not None:
            forwarder.close()
    if not isinstance(reason, Normal):
        raise ExitWith(reason)


def as_process_child(spec: Any) -> ChildSpec:
    """The process child that runs the supervisor ``spec`` (backend "process")."""
    inline = attrs.evolve(spec, backend="inline")
    return ChildSpec(
        id=spec.id,
        start=subtree_main,
        args=(inline,),
        restart=spec.restart,
        shutdown=spec.shutdown,
        significant=spec.significant,
        backend="process",
        ready=True,
        start_timeout=float("inf"),
    )
