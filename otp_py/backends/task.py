"""The asyncio backend: a coroutine function run as a task on the tree's own loop.

A graceful stop is ``task.cancel()``; so is a kill, since a task cannot be ended any
other way. The task's done-callback reports its end: returning is ``normal`` (or
``shutdown`` when we asked it to stop), being cancelled by us is ``shutdown`` or
``killed``, an exception is a crash. A task that swallows cancellation and still runs
:data:`KILL_GRACE` seconds after a kill is reported unstoppable and abandoned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from otp_py._core.reasons import Abnormal, ExitReason, Killed, Normal, Shutdown, Unstoppable
from otp_py._core.reports import ChildUnstoppable
from otp_py.backends import reasons
from otp_py.backends.base import BackendEnv, ChildSink
from otp_py.backends.context import ChildContext, set_current

__all__ = ["KILL_GRACE", "TaskRunner", "start"]

KILL_GRACE = 1.0
"""Seconds a killed task may take to end before it is declared unstoppable."""


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
            _run(spec.start, spec.args, spec.kwargs, context), name=env.name
        )
        self._task.add_done_callback(self._done)

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
        reason = Unstoppable(KILL_GRACE)
        report = self._env.make_report(
            ChildUnstoppable, child_id=self._env.path[-1],
            detail=f"task {self._task.get_name()!r} ignored cancellation")
        if report is not None:
            self._sink.report(report)
        self._finish(reason)

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


async def _run(
    start: Callable[..., Any], args: tuple[Any, ...], kwargs: Any, context: ChildContext
) -> Any:
    set_current(context)  # each task runs in its own copy of the context
    try:
        return await start(*args, **kwargs)
    except SystemExit as exc:
        # asyncio lets SystemExit out of the event loop; in a child it only ends
        # the child, as in the other backends.
        raise reasons.ExitWith(reasons.from_exception(exc)) from None


def start(spec: Any, sink: ChildSink, env: BackendEnv) -> TaskRunner:
    runner = TaskRunner(spec, sink, env)
    if not spec.ready:
        sink.up()
    return runner
