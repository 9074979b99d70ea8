"""A nested supervisor hosted in a Ray actor (``SupervisorSpec(backend="ray")``).

The parent runs it as a ray child (:mod:`otp_py.backends.ray_actor`) whose actor
object is a :class:`SubtreeActor`: its run method runs the subtree on an event loop
of its own, in the actor's worker process, on whatever node Ray placed it (the
spec's ``options`` say where: resources, a node affinity, a label selector). The
subtree's children are that node's: process, command, thread and asyncio children
are started and restarted there, at local speed, by the subtree's own supervisors.
Only what the parent must hear crosses the cluster:

* every report of the subtree, forwarded in order (listeners and logging on the
  parent's handle see every decision of the whole tree, as with a process subtree);
* readiness, once the subtree's root has started every child;
* the answers to the parent handle's calls (``which_children``,
  ``terminate_child``...) to any supervisor in the subtree.

They travel as a process subtree's messages do up its pipe (the same
:class:`~otp_py.runtime.subtree.ReportForwarder` orders them), here on the actor's
message stream: the parent keeps one ``otp_stream`` call outstanding, answered with
what has accumulated. The subtree's end is the run call's: its root's exit reason.
Losing the actor (its node lost, its worker killed) is one exit of the subtree,
:class:`~otp_py.backends.ray_actor.ActorDied`, decided by the parent like any other;
what the subtree ran on that node dies with the actor (the process children's
guardian kills their groups when the actor's process goes).
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import threading
from collections import deque
from typing import Any

import attrs

from otp_py._core import events as ev
from otp_py._core.reasons import ExitReason, Normal
from otp_py._core.types import INFINITY
from otp_py._errors import SupervisorNotRunningError
from otp_py.backends.context import current_child
from otp_py.backends.reasons import ExitWith
from otp_py.runtime import loop as loops
from otp_py.runtime.guardian import Guardian
from otp_py.runtime.output import inherit
from otp_py.runtime.subtree import ReportForwarder
from otp_py.runtime.tree import Tree
from otp_py.spec import ChildSpec, OutputCapture, RayActorTarget

__all__ = ["SubtreeActor", "as_ray_child"]

DRAIN_TIMEOUT = 2.0
"""Seconds the actor's run waits, once its subtree has ended, for the parent to take
the last messages off the stream."""


class _StreamForwarder(ReportForwarder):
    """A :class:`ReportForwarder` whose answers are pickled as Ray pickles (by
    value, for what the application defined in its ``__main__``, which this
    worker cannot import by name): the parent reads them with ``pickle.loads``."""

    def _send_answer(self, answer: Any) -> None:
        from ray import cloudpickle

        dumps: Any = cloudpickle.dumps  # (untyped in Ray)
        ok = answer.ok
        try:
            payload = dumps(answer.value)
        except Exception as exc:  # an answer that cannot be pickled
            ok, payload = False, pickle.dumps(TypeError(
                f"the subtree's answer could not be sent to its parent: {exc}"))
        self._send(("reply", answer.call_id, ok, payload))


class SubtreeActor:
    """The actor object hosting a subtree (built in the actor's worker process)."""

    def __init__(self, spec: Any) -> None:
        self._spec = spec
        self._outbox: deque[Any] = deque()
        self._changed = threading.Condition()
        self._closed = False
        self._taken_closed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tree: Tree | None = None
        self._forwarder = _StreamForwarder(self._post)

    # -- the stream (read by the parent's long poll)

    def _post(self, message: Any) -> None:
        with self._changed:
            self._outbox.append(message)
            self._changed.notify_all()

    def otp_stream(self) -> list[Any]:
        with self._changed:
            self._changed.wait_for(lambda: bool(self._outbox) or self._closed)
            messages = list(self._outbox)
            self._outbox.clear()
            if self._closed:
                messages.append(("closed",))
                self._taken_closed.set()
            return messages

    def otp_call(self, call_id: int, payload: bytes) -> None:
        loop, tree = self._loop, self._tree
        if loop is None or tree is None:
            self._forwarder.answer(call_id, False, SupervisorNotRunningError(
                "the subtree has not started yet"))
            return
        try:
            loop.call_soon_threadsafe(loop.create_task, self._answer(tree, call_id, payload))
        except RuntimeError:  # its loop has closed
            self._forwarder.answer(call_id, False, SupervisorNotRunningError(
                "the subtree has exited"))

    async def _answer(self, tree: Tree, call_id: int, payload: bytes) -> None:
        try:
            path, request = pickle.loads(payload)
            value = await tree.call(path, request)
            if isinstance(request, ev.WhichChildren):
                value = tree.with_details(path, value)
            elif isinstance(request, ev.GetChildInfo):
                [value] = tree.with_details(path, [value])
        except Exception as exc:
            self._forwarder.answer(call_id, False, exc)
        else:
            self._forwarder.answer(call_id, True, value)

    # -- its life

    def run(self) -> None:
        """Run the subtree until it ends; end as its root did."""
        context = current_child()
        try:
            reason = loops.run(self._main(context))
        finally:
            self._forwarder.close()
            with self._changed:
                self._closed = True
                self._changed.notify_all()
            self._taken_closed.wait(DRAIN_TIMEOUT)
        if not isinstance(reason, Normal):
            raise ExitWith(reason)

    async def _main(self, context: Any) -> ExitReason:
        loop = asyncio.get_running_loop()
        # Its paths are its parent tree's: the child's path is where its root sits.
        place = context.path[:-1] if context is not None else ()
        tree = Tree(self._spec, loop, guardian=Guardian.shared(), place=place)
        tree.listeners.append(self._forwarder)
        tree.log_reports = False  # the parent logs what it receives
        self._loop, self._tree = loop, tree
        if context is not None:  # the supervisor's stop: the subtree stops in order
            threading.Thread(target=self._stop_on_request, args=(context, loop, tree),
                             name="otp:ray-stop", daemon=True).start()
        tree.start()
        await asyncio.shield(tree.initialized)
        if tree.root.initialized:
            self._forwarder.then(lambda: self._post(("ready",)))
        return await asyncio.shield(tree.done)

    @staticmethod
    def _stop_on_request(context: Any, loop: asyncio.AbstractEventLoop, tree: Tree) -> None:
        context.wait_for_stop()
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to stop
            loop.call_soon_threadsafe(tree.request_stop)


def as_ray_child(spec: Any, output: OutputCapture | None = None) -> ChildSpec:
    """The ray child that hosts the supervisor ``spec`` (backend "ray"), ``output``
    being the output capture it inherits (its children capture on the actor's node)."""
    inline = attrs.evolve(spec, backend="inline", options=None,
                          output=inherit(output, spec))
    target = RayActorTarget(SubtreeActor, "run", dict(spec.options or {}), "notify")
    return ChildSpec(
        id=spec.id,
        start=target,
        args=(inline,),
        restart=spec.restart,
        shutdown=spec.shutdown,
        significant=spec.significant,
        backend="ray",
        ready=True,
        start_timeout=INFINITY,
    )

