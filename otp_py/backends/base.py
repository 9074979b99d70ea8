"""The contract between the runtime and the backends that run one child each.

A backend starts one child and reports what happens to it through a
:class:`ChildSink`; the runtime hands it stop and kill requests through the
:class:`Runner` it returns. Backends decide nothing: when to stop, kill or restart is
the core's business. They only translate between the operating system (a process, a
thread, a task, a command) and the core's vocabulary (up, start failed, down with a
reason, hung).

All sink methods must be called on the event loop's thread; backends whose children
live elsewhere (threads, processes) hop onto the loop with ``call_soon_threadsafe``
or a reader callback. Exits are always *events*: a task's done-callback, a thread's
final callback, a readable process sentinel or pidfd. Nothing polls.
"""

from __future__ import annotations

import asyncio
import pickle
from typing import Any, Protocol

from otp_py._core.reasons import ExitReason

__all__ = ["BackendEnv", "ChildSink", "Runner", "settle_reply"]


class ChildSink(Protocol):
    """Where a backend reports on its child. Loop thread only; each of
    ``start_failed`` and ``down`` is called at most once, and never both."""

    def up(self) -> None:
        """The child is up (and ready, if its spec asks it to signal readiness)."""

    def start_failed(self, reason: ExitReason) -> None:
        """The child failed before it was up; nothing of it is left running. An
        :class:`~otp_py.reasons.Ignored` reason (it raised :class:`otp_py.Ignore`)
        means it declined: the runtime tells the core so, not a failure."""

    def down(self, reason: ExitReason, stderr: str | None = None) -> None:
        """The child has ended and been reaped; ``stderr`` is the tail of its
        standard error, if captured."""

    def hung(self, reason: ExitReason) -> None:
        """The child stopped answering its heartbeat (it is still running)."""

    def report(self, report: Any) -> None:
        """Deliver a runtime report (e.g. an unstoppable thread)."""


class Runner(Protocol):
    """A running child, as the runtime sees it."""

    def stop(self) -> None:
        """Ask the child to stop gracefully (SIGTERM, stop token, cancellation)."""

    def kill(self) -> None:
        """End the child now (SIGKILL to its process group, or as close as the
        backend can come). Must lead to ``down`` (or ``start_failed``) soon."""

    def describe(self) -> dict[str, Any]:
        """Facts for the tree view: pid, thread name..."""


class BackendEnv:
    """What a backend may use: the loop, the child's path in the tree, the runtime's
    guardian (which kills process groups if the supervisor dies), a way to make
    runtime reports stamped like the supervisor's, and where its output goes.

    A plain slotted class, one per child path, cheap to build: a tree of 10,000
    children builds 10,000 of them."""

    __slots__ = ("_name", "_reporter", "guardian", "loop", "notify", "output", "path")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        path: tuple[str, ...],
        guardian: Any = None,
        reporter: Any = None,
    ) -> None:
        self.loop = loop
        self.path = path
        self.guardian = guardian
        self._reporter = reporter
        self._name: str | None = None
        # Where the output of the child's next start goes (an output.Capture), set
        # by the runtime before each start; None: not captured.
        self.output: Any = None
        # The child's notify socket for its next start (a runtime.notify channel:
        # environ(), attach(pid), on_ready...), set by the runtime for a child with
        # ready=True; None: it has none.
        self.notify: Any = None

    @property
    def name(self) -> str:
        """The path as text (``"root/pool/w"``), for task, thread and process names."""
        if self._name is None:
            self._name = "/".join(self.path)
        return self._name

    def make_report(self, kind: type, **fields: Any) -> Any:
        """A report of ``kind`` from the child's supervisor, or None without one."""
        if self._reporter is None:
            return None
        return self._reporter.make_report(kind, **fields)


def settle_reply(calls: dict[int, Any], message: tuple[Any, ...], where: str) -> None:
    """Settle the call a subtree answered with ``("reply", call_id, ok, payload)``:
    the future in ``calls`` gets the unpickled value, or the exception it carries.
    A late answer (the caller gave up) is dropped; one that cannot be unpickled fails
    its call with a TypeError naming the subtree at ``where``. Shared by the
    subtrees that run in a process of their own and in a Ray actor."""
    _, call_id, ok, payload = message
    future = calls.pop(call_id, None)
    if future is None or future.done():
        return
    try:
        value = pickle.loads(payload)
    except Exception as exc:
        future.set_exception(TypeError(
            f"the answer of the subtree at {where!r} could not be read: {exc!r}"))
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
