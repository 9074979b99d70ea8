"""The event loops the runtime creates for a tree, and how they end.

:func:`otp_py.run` and a subtree's process run their tree on a loop of their own, and
:func:`otp_py.start` runs it on a loop in a background thread. When the tree has
ended, what is left on that loop must go before the loop is closed. ``asyncio.run``
cancels every task left and then waits for all of them, however long that takes: one
task that swallows every cancellation (``except CancelledError: pass`` in a loop)
makes it wait for ever, and with it ``run()``, ``Supervisor.stop()`` and the
interpreter's exit hook that stops started trees.

:func:`close` waits, but not for ever. Task children that ignored their stop are gone
by then (the asyncio backend closes their coroutines when it declares them
unstoppable); any other task left (one a child started, say) is cancelled once and
given :data:`CLOSE_GRACE` seconds to end. A task still running after that is
abandoned the way the asyncio backend abandons an unstoppable
child (its coroutine is closed, see :func:`otp_py.backends.task.abandon`), logged, and
the loop is closed without it. Async generators get the same bounded grace. The
default executor's threads are still waited for, as ``asyncio.run`` does: a thread
cannot be stopped, and the interpreter would wait for it at exit anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from otp_py.backends import task as task_backend

__all__ = ["CLOSE_GRACE", "close", "run"]

_T = TypeVar("_T")

CLOSE_GRACE = 1.0
"""Seconds the tasks still on a loop when its tree has ended may take to end after
one cancellation, before the loop is closed without them."""

logger = logging.getLogger("otp_py")


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """Run ``main`` on a new event loop until it returns, then :func:`close` the loop:
    ``asyncio.run``, except that the clean-up cannot wait for ever."""
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            close(loop)
        finally:
            asyncio.set_event_loop(None)


def close(loop: asyncio.AbstractEventLoop) -> None:
    """End what is left on ``loop`` (not running) within a bounded time; close it."""
    try:
        _end_tasks(loop)
        _bounded(loop, loop.shutdown_asyncgens(), "closing async generators")
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def _end_tasks(loop: asyncio.AbstractEventLoop) -> None:
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not pending:
        return
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.wait(pending, timeout=CLOSE_GRACE))
    stuck = [t for t in pending if not t.done()]
    if not stuck:
        _report(loop, pending)
        return
    closed = [task_backend.abandon(t) for t in stuck]
    # their coroutines are closed: one more turn of the loop ends them
    loop.run_until_complete(asyncio.wait(stuck, timeout=CLOSE_GRACE))
    _report(loop, [t for t in pending if t not in stuck])
    for task in stuck:
        if task.done() and not task.cancelled():
            task.exception()  # the RuntimeError of a closed coroutine: ours, not news
    logger.warning("otp_py: closing the loop without %d task(s) that ignored cancellation "
                   "for %g s: %s", len(stuck), CLOSE_GRACE,
                   ", ".join(f"{t.get_name()} ({'closed' if ok else 'dropped unfinished'})"
                             for t, ok in zip(stuck, closed, strict=True)))


def _report(loop: asyncio.AbstractEventLoop, tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Say what the tasks that ended on their cancellation raised instead (as
    ``asyncio.run`` does)."""
    for task in tasks:
        if not task.done() or task.cancelled():
            continue
        exc = task.exception()
        if exc is not None:
            loop.call_exception_handler({
                "message": "unhandled exception while closing the tree's loop",
                "exception": exc,
                "task": task,
            })


def _bounded(loop: asyncio.AbstractEventLoop, step: Coroutine[Any, Any, None],
             what: str) -> None:
    """Run ``step`` for at most :data:`CLOSE_GRACE` seconds (``wait_for`` would wait
    for the cancellation of a step that will not end)."""
    task = loop.create_task(step)
    loop.run_until_complete(asyncio.wait([task], timeout=CLOSE_GRACE))
    if not task.done():
        logger.warning("otp_py: %s took more than %g s; closing the loop anyway", what,
                       CLOSE_GRACE)
        task_backend.abandon(task)
        loop.run_until_complete(asyncio.wait([task], timeout=CLOSE_GRACE))
    elif not task.cancelled():
        task.exception()
