"""A nested supervisor in an OS process of its own (``SupervisorSpec(backend="process")``).

The parent runs it as a process child whose target is :func:`subtree_main`: the
subtree gets its own event loop and runtime in the new process, signals readiness
once its root has started every child, stops in order on SIGTERM, and ends with its
root's exit reason, which the parent sees as the child's.

It stays part of the parent's tree over the child's pipe:

* its reports travel to the parent, so listeners and logging on the parent's handle
  see every decision of the whole tree, as with a subtree on the parent's loop;
* the parent's handle reaches it and every supervisor under it (``which_children``,
  ``terminate_child``...): calls travel down the pipe, answers come back.

Messages up the pipe are sent by a thread of their own, in order (an answer after the
reports of what the call did; readiness after the reports of the starts): a parent
slow to read never stalls the subtree's supervision.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import queue
import signal
import threading
from collections.abc import Callable
from typing import Any

import attrs

from otp_py._core import events as ev
from otp_py._core.reasons import Abnormal, ExitReason, Normal
from otp_py._core.reports import Report
from otp_py._core.types import INFINITY
from otp_py.backends.context import ChildContext, current_child, notify_ready
from otp_py.backends.reasons import ExitWith
from otp_py.runtime import loop as loops
from otp_py.runtime.guardian import Guardian
from otp_py.runtime.output import inherit
from otp_py.runtime.tree import Tree
from otp_py.spec import ChildSpec, OutputCapture

__all__ = ["ReportForwarder", "as_process_child", "subtree_main"]

_DONE = object()


@attrs.frozen
class _Then:
    action: Callable[[], None]


@attrs.frozen
class _Answer:
    call_id: int
    ok: bool
    value: Any


class ReportForwarder:
    """A report listener that sends ``("report", report)`` messages with ``send``,
    from a thread of its own; answers to calls (:meth:`answer`) and other actions
    (:meth:`then`) keep their place among them.

    At most ``limit`` reports wait to be sent; beyond that they are counted in
    ``dropped`` rather than held up (a crash storm under a stalled parent must not
    grow the subtree's memory). A report that cannot be pickled (a reason carrying an
    unpicklable term) is sent with its reasons as text."""

    def __init__(self, send: Callable[[Any], None], limit: int = 10_000) -> None:
        self._send = send
        self._limit = limit
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.dropped = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="otp:reports", daemon=True)
        self._thread.start()

    def __call__(self, report: Report) -> None:
        if self._queue.qsize() >= self._limit:
            self.dropped += 1
        else:
            self._queue.put(report)

    def then(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the sending thread once the reports before it are sent
        (the parent hears of the subtree's children before it hears it is up)."""
        self._queue.put(_Then(action))

    def answer(self, call_id: int, ok: bool, value: Any) -> None:
        """Send the answer to call ``call_id`` after the reports before it."""
        self._queue.put(_Answer(call_id, ok, value))

    def close(self, timeout: float = 2.0) -> None:
        """Send what waits (for at most ``timeout`` seconds), then stop the thread:
        after this returns, it sends nothing more (what was left is counted in
        ``dropped``)."""
        self._queue.put(_DONE)
        self._thread.join(timeout)
        self._closed = True
        if self._thread.is_alive():  # the parent does not read: give up on the rest
            self.dropped += self._queue.qsize()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE or self._closed:
                return
            try:
                if isinstance(item, _Then):
                    item.action()
                elif isinstance(item, _Answer):
                    self._send_answer(item)
                else:
                    self._send_report(item)
            except (OSError, ValueError, EOFError):
                return  # the parent is gone: nobody to tell

    def _send_report(self, report: Report) -> None:
        try:
            self._send(("report", report))
        except (OSError, ValueError, EOFError):
            raise
        except Exception:  # unpicklable
            try:
                self._send(("report", _as_text(report)))
            except (OSError, ValueError, EOFError):
                raise
            except Exception:
                self.dropped += 1

    def _send_answer(self, answer: _Answer) -> None:
        # (the answer travels pickled inside the message: one the parent cannot
        # read fails that call alone)
        ok = answer.ok
        try:
            payload = pickle.dumps(answer.value)
        except Exception as exc:  # an answer that cannot be pickled
            ok, payload = False, pickle.dumps(TypeError(
                f"the subtree's answer could not be sent to its parent: {exc}"))
        self._send(("reply", answer.call_id, ok, payload))


def _as_text(report: Report) -> Report:
    """``report`` with each exit reason replaced by its text."""
    changes: dict[str, Any] = {}
    for field in attrs.fields(type(report)):
        value = getattr(report, field.name)
        if isinstance(value, ExitReason):
            changes[field.name] = Abnormal(str(value))
    return attrs.evolve(report, **changes)


def _serve_calls(
    context: ChildContext, tree: Tree, loop: asyncio.AbstractEventLoop,
    forwarder: ReportForwarder,
) -> None:
    """Read calls from the parent (on a thread of its own) and answer each from the
    subtree's loop, in the order they came."""
    assert context.receive is not None

    async def answer(call_id: int, payload: bytes) -> None:
        try:
            path, request = pickle.loads(payload)
            value = await tree.call(path, request)
            if isinstance(request, ev.WhichChildren):
                value = tree.with_details(path, value)
            elif isinstance(request, ev.GetChildInfo):
                [value] = tree.with_details(path, [value])
        except Exception as exc:
            forwarder.answer(call_id, False, exc)
        else:
            forwarder.answer(call_id, True, value)

    def start(call_id: int, payload: bytes) -> None:
        loop.create_task(answer(call_id, payload))

    # Read until the pipe closes, even once the loop has: a parent writing a call
    # must never block on a pipe nobody reads.
    while True:
        try:
            message = pickle.loads(context.receive())
        except (EOFError, OSError):
            return
        except Exception:  # not ours to read; the next may be
            continue
        if isinstance(message, tuple) and len(message) == 3 and message[0] == "call":
            _, call_id, payload = message
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(start, call_id, payload)


def subtree_main(spec: Any) -> None:
    """The target of a subtree process: run ``spec`` until it ends."""
    context = current_child()
    send = context.send if context is not None else None
    forwarder = ReportForwarder(send) if send is not None else None

    async def main() -> ExitReason:
        loop = asyncio.get_running_loop()
        # Its paths are its parent tree's: the child's path is where its root sits.
        place = context.path[:-1] if context is not None else ()
        tree = Tree(spec, loop, guardian=Guardian.shared(), place=place)
        if forwarder is not None:
            assert context is not None
            tree.listeners.append(forwarder)
            tree.log_reports = False  # the parent logs what it receives
            if context.receive is not None:
                threading.Thread(target=_serve_calls, args=(context, tree, loop, forwarder),
                                 name="otp:calls", daemon=True).start()
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
        reason = loops.run(main())
    finally:
        if forwarder is not None:
            forwarder.close()
    if not isinstance(reason, Normal):
        raise ExitWith(reason)


def as_process_child(spec: Any, output: OutputCapture | None = None) -> ChildSpec:
    """The process child that runs the supervisor ``spec`` (backend "process"),
    ``output`` being the output capture it inherits: the subtree's root takes it
    along (its children capture their own output, in its process); the process
    itself keeps the supervisor's streams (what its children pass through reaches
    the tree's stdout and stderr)."""
    inline = attrs.evolve(spec, backend="inline", output=inherit(output, spec))
    return ChildSpec(
        id=spec.id,
        start=subtree_main,
        args=(inline,),
        restart=spec.restart,
        shutdown=spec.shutdown,
        significant=spec.significant,
        backend="process",
        ready=True,
        start_timeout=INFINITY,
        output=OutputCapture(enabled=False),
    )
