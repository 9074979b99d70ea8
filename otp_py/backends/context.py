"""What a running child can ask of its supervisor, from inside the child.

Code running as a supervised child (in a task, a thread or a process) calls these
module-level functions; they find the child's context through a context variable, so
they work in any backend and do nothing harmful outside a supervised child:

* :func:`notify_ready` - the child is up; its supervisor may start the next sibling
  (only waited for when the spec says ``ready=True``, like systemd's ``Type=notify``);
* :func:`stop_requested` / :func:`wait_for_stop` - the cooperative stop token of
  thread children (task children are cancelled; process children get SIGTERM, which
  raises :class:`otp_py.Shutdown` in their main thread);
* :func:`heartbeat` - a liveness tick, for thread children given a heartbeat.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "ChildContext",
    "current_child",
    "heartbeat",
    "notify_ready",
    "stop_requested",
    "wait_for_stop",
]


class ChildContext:
    """The supervisor's side of a running child, as seen from inside it."""

    __slots__ = (
        "_on_ready", "_ready", "_stop_wait", "_stopped", "last_tick", "path", "receive", "send"
    )

    def __init__(
        self,
        path: tuple[str, ...],
        on_ready: Callable[[], None] | None = None,
        stopped: Callable[[], bool] | None = None,
        stop_wait: Callable[[float | None], bool] | None = None,
        send: Callable[[Any], None] | None = None,
        receive: Callable[[], Any] | None = None,
    ) -> None:
        self.path = path
        # A process child's pipe to its supervisor: a subtree in a process of its
        # own forwards its reports and answers calls through it. None elsewhere.
        self.send = send
        self.receive = receive
        self._on_ready = on_ready
        self._ready = False
        self._stopped = stopped
        self._stop_wait = stop_wait
        self.last_tick = time.monotonic()

    @property
    def id(self) -> str:
        return self.path[-1]

    def notify_ready(self) -> None:
        """Signal readiness once; later calls do nothing."""
        if self._ready:
            return
        self._ready = True
        if self._on_ready is not None:
            self._on_ready()

    def stop_requested(self) -> bool:
        return self._stopped() if self._stopped is not None else False

    def wait_for_stop(self, timeout: float | None = None) -> bool:
        """Block until the supervisor asks this child to stop (True) or ``timeout``
        seconds pass (False)."""
        if self._stop_wait is None:
            if timeout is not None:
                time.sleep(timeout)
            return False
        return self._stop_wait(timeout)

    def heartbeat(self) -> None:
        self.last_tick = time.monotonic()


_current: contextvars.ContextVar[ChildContext | None] = contextvars.ContextVar(
    "otp_py_child", default=None
)


def current_child() -> ChildContext | None:
    """The context of the supervised child this code runs in, or None outside one."""
    return _current.get()


def set_current(context: ChildContext | None) -> contextvars.Token[ChildContext | None]:
    return _current.set(context)


def notify_ready() -> None:
    """Tell the supervisor this child is up. A no-op outside a supervised child."""
    context = _current.get()
    if context is not None:
        context.notify_ready()


def stop_requested() -> bool:
    """True once the supervisor has asked this (thread) child to stop."""
    context = _current.get()
    return context.stop_requested() if context is not None else False


def wait_for_stop(timeout: float | None = None) -> bool:
    """Block until the supervisor asks this child to stop, or ``timeout`` seconds.

    Returns True when asked to stop. Thread children should use this instead of
    ``time.sleep`` in their loops, so they stop promptly."""
    context = _current.get()
    if context is None:
        if timeout is not None:
            time.sleep(timeout)
        return False
    return context.wait_for_stop(timeout)


def heartbeat() -> None:
    """Record that this child is making progress (thread children with a heartbeat
    must call it at least once per heartbeat timeout)."""
    context = _current.get()
    if context is not None:
        context.heartbeat()
