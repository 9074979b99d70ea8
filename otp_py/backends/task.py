"""The asyncio backend: a coroutine function run as a task on the tree's own loop.

A graceful stop is ``task.cancel()``; so is a kill, since a task cannot be ended any
other way. The task's done-callback reports its end: returning is ``normal`` (or
``shutdown`` when we asked it to stop), being cancelled by us is ``shutdown`` or
``killed``, an exception is a crash.

A task that swallows cancellation and still runs :data:`KILL_GRACE` seconds after a
kill is reported *unstoppable* (a :class:`~otp_py.reports.ChildUnstoppable` report,
exit reason :class:`~otp_py.reasons.Unstoppable`) and abandoned: the supervisor
carries on without it, as it does for a thread. Unlike a thread, an abandoned task
is not left running: its coroutine is closed (``GeneratorExit`` is raised where it
waits, so its ``finally`` blocks run, without being able to ``await``) and the task
ends. Left running, it would compete with its own restarted incarnation, and the
loop's final clean-up (``asyncio.run``'s, or the one that closes a tree's loop) would
wait for it for ever. So, unlike a thread, an unstoppable task never straggles on:
nothing of it runs once it is reported. (A coroutine that swallows ``GeneratorExit``
as well, with a bare ``except:``, cannot even run its clean-up; Python says so on
stderr, "coroutine ignored GeneratorExit", and the report does too.)
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from otp_py._core.reasons import Abnormal, ExitReason, Killed, Normal, Shutdown, Unstoppable
from otp_py._core.reports import ChildUnstoppable
from otp_py.backends import reasons
from otp_py.backends.base import BackendEnv, ChildSink
from otp_py.backends.context import ChildContext, set_current

__all__ = ["KILL_GRACE", "TaskRunner", "abandon", "start"]

KILL_GRACE = 1.0
"""Seconds a killed task may take to end before it is declared unstoppable."""

logger = logging.getLogger("otp_py")

class TaskRunner:
    __slots__ = ("_env", "_ready", "_reported", "_sink", "_spec", "_stop_reason", "_task")

    def __init__(self, spec: Any, sink: ChildSink, env: BackendEnv) -> None:
        self._spec = spec
        self._sink = sink
        self._env = env
        self._stop_reason: ExitReason | None = None
        self._reported = False
        self._ready = not spec.ready
        context = ChildContext(env.path, on_ready=self._on_ready if spec.ready else None)
        self._task: asyncio.Task[Any] = env.loop.create_task(
            self._main(context), name=env.name
        )
        self._task.add_done_callback(self._done)

    async def _main(self, context: ChildContext) -> Any:
        set_current(context)  # each task runs in its own copy of the context
        spec = self._spec
        try:
            return await spec.start(*spec.args, **spec.kwargs)
        except SystemExit as exc:
            # asyncio lets SystemExit out of the event loop; in a child it only ends
            # the child, as in the other backends.
            raise reasons.ExitWith(reasons.from_exception(exc)) from None

    def _on_ready(self) -> None:
        if not self._ready and not self._reported:
            self._ready = True
            self._sink.up()

    def stop(self) -> None:
        if self._stop_reason is None:
            self._stop_reason = Shutdown()
        self._task.cancel("shutdown")

    def kill(self) -> None:
        self._stop_reason = Killed()
        self._task.cancel("killed")
        self._env.loop.call_later(KILL_GRACE, self._check_killed)

    def _check_killed(self) -> None:
        if self._reported:
            return
        name = self._task.get_name()
        if abandon(self._task):
            detail = (f"task {name!r} ignored cancellation; its coroutine was closed "
                      "and the task abandoned")
        else:
            detail = (f"task {name!r} ignored cancellation and GeneratorExit; its "
                      "coroutine was dropped unfinished and the task abandoned")
        report = self._env.make_report(
            ChildUnstoppable, child_id=self._env.path[-1], detail=detail)
        if report is not None:
            self._sink.report(report)
        self._finish(Unstoppable(KILL_GRACE))

    def describe(self) -> dict[str, Any]:
        return {"task": self._task.get_name()}

    @property
    def frame(self) -> Any:
        """The frame of the task's outermost coroutine (for the loop watchdog, which
        finds the task that blocks the loop by looking for it on the loop's stack)."""
        return self._task.get_coro().cr_frame  # type: ignore[union-attr]

    def hang(self, reason: ExitReason) -> None:
        """Report this task hung (it blocked the event loop)."""
        if not self._reported:
            self._sink.hung(reason)

    def _done(self, task: asyncio.Task[Any]) -> None:
        if self._reported:
            if not task.cancelled():
                task.exception()  # seen: asyncio need not log it as never retrieved
            return
        if task.cancelled():
            reason: ExitReason = self._stop_reason or Abnormal("cancelled")
        else:
            exc = task.exception()
            if exc is None:
                reason = Shutdown() if self._stop_reason is not None else Normal()
            else:
                reason = reasons.from_exception(exc)
        self._finish(reason)

    def _finish(self, reason: ExitReason) -> None:
        self._reported = True
        if self._ready:
            self._sink.down(reason)
        else:
            self._sink.start_failed(reason)


def abandon(task: asyncio.Task[Any]) -> bool:
    """End a task that swallows cancellation: close its coroutine (``GeneratorExit``
    where it waits: its ``finally`` blocks run, but cannot ``await``), then cancel the
    task once more so that the loop finishes it (with a ``RuntimeError``: a closed
    coroutine cannot be resumed). Nothing of it runs again.

    Return whether every coroutine it was awaiting through closed cleanly; one that
    swallows ``GeneratorExit`` as well (a bare ``except:``) does not: it is dropped
    unfinished, and Python prints "coroutine ignored GeneratorExit".

    Call it on the task's loop and from outside the task (a callback), so that its
    coroutines are suspended, never running."""
    chain: list[Any] = []  # each coroutine awaits the next, down to where the task waits
    link: Any = task.get_coro()
    while inspect.iscoroutine(link) and len(chain) < 1000:
        chain.append(link)
        link = link.cr_await
    if chain:
        try:
            chain[0].close()
        except RuntimeError:  # "coroutine ignored GeneratorExit"
            pass
        except Exception:  # a finally block failed: the coroutine is closed all the same
            logger.debug("otp_py: closing the abandoned task %s raised", task.get_name(),
                         exc_info=True)
    task.cancel("abandoned")
    return all(inspect.getcoroutinestate(c) == inspect.CORO_CLOSED for c in chain)


def start(spec: Any, sink: ChildSink, env: BackendEnv) -> TaskRunner:
    runner = TaskRunner(spec, sink, env)
    if not spec.ready:
        sink.up()
    return runner
