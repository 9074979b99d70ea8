"""The thread backend: a callable run in a thread of its own.

Threads cannot be killed. A graceful stop sets the child's stop token (see
:func:`otp_py.wait_for_stop` and :func:`otp_py.stop_requested`); a thread that is
still running when its shutdown timeout runs out (or at once, for ``BRUTAL_KILL``)
is reported *unstoppable*: the supervisor carries on without it, a
:class:`~otp_py.reports.ChildUnstoppable` report names it, and it is never silently
forgotten (:func:`stragglers` lists the ones still running).

The thread's end is an event: its last act is to post its exit reason onto the
loop. With a :class:`~otp_py.Heartbeat`, the child must call
:func:`otp_py.heartbeat` at least once per timeout; the supervisor checks every
interval and reports a silent child as hung.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from otp_py._core.reasons import ExitReason, Hung, Normal, Shutdown, Unstoppable
from otp_py._core.reports import ChildUnstoppable
from otp_py._core.types import BRUTAL_KILL
from otp_py.backends import reasons
from otp_py.backends.base import BackendEnv, ChildSink
from otp_py.backends.context import ChildContext, set_current

__all__ = ["KILL_GRACE", "ThreadRunner", "start", "stragglers"]

KILL_GRACE = 1.0
"""Seconds an abandoned thread (its start timed out) may take to honour its stop token
before it is declared unstoppable."""

_LAST_ACT_GRACE = 0.5
"""Seconds to wait for a thread that has posted its end to actually finish."""

_stragglers: set[threading.Thread] = set()
_stragglers_lock = threading.Lock()


def stragglers() -> list[threading.Thread]:
    """Thread children that were declared unstoppable and are still running."""
    with _stragglers_lock:
        return [t for t in _stragglers if t.is_alive()]


class ThreadRunner:
    def __init__(self, spec: Any, sink: ChildSink, env: BackendEnv) -> None:
        self._spec = spec
        self._sink = sink
        self._env = env
        self._stop = threading.Event()
        self._ready = not spec.ready
        self._reported = False
        self._heartbeat_timer: Any = None
        self._context = ChildContext(
            env.path,
            on_ready=self._ready_from_thread if spec.ready else None,
            stopped=self._stop.is_set,
            stop_wait=self._stop.wait,
        )
        self._thread = threading.Thread(
            target=self._main, name="otp:" + "/".join(env.path), daemon=True
        )

    def launch(self) -> None:
        self._thread.start()
        if self._spec.heartbeat is not None:
            self._arm_heartbeat()

    # -- in the child thread

    def _main(self) -> None:
        set_current(self._context)
        reason: ExitReason
        try:
            self._spec.start(*self._spec.args, **self._spec.kwargs)
        except BaseException as exc:  # every end is reported, whatever it is
            reason = reasons.from_exception(exc)
        else:
            reason = Shutdown() if self._stop.is_set() else Normal()
        self._post(self._on_thread_end, reason)

    def _ready_from_thread(self) -> None:
        self._post(self._on_ready)

    def _post(self, callback: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the tree is gone
            self._env.loop.call_soon_threadsafe(callback, *args)

    # -- on the loop

    def _on_ready(self) -> None:
        if not self._ready and not self._reported:
            self._ready = True
            self._sink.up()

    def _on_thread_end(self, reason: ExitReason) -> None:
        # Posting its end was the thread's last act: it is gone in a moment, and a
        # stop that returns must leave no thread behind.
        self._thread.join(_LAST_ACT_GRACE)
        self._finish(reason)

    def _finish(self, reason: ExitReason) -> None:
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()
        if self._reported:
            with _stragglers_lock:
                _stragglers.discard(self._thread)
            return
        self._reported = True
        if self._ready:
            self._sink.down(reason)
        else:
            self._sink.start_failed(reason)

    def stop(self) -> None:
        self._stop.set()

    def kill(self) -> None:
        self._stop.set()
        if self._reported:
            return
        if not self._ready:
            # An abandoned start (its start timeout ran out): nobody waits for it, so
            # give it a moment to honour its stop token before calling it unstoppable.
            self._env.loop.call_later(KILL_GRACE, self._declare_unstoppable, KILL_GRACE)
            return
        shutdown = self._spec.shutdown
        self._declare_unstoppable(0.0 if shutdown is BRUTAL_KILL else float(shutdown))

    def _declare_unstoppable(self, timeout: float) -> None:
        if self._reported:
            return
        with _stragglers_lock:
            _stragglers.add(self._thread)
        report = self._env.make_report(
            ChildUnstoppable, child_id=self._env.path[-1],
            detail=f"thread {self._thread.name!r} (ident {self._thread.ident}) is still "
                   "running; threads cannot be killed")
        if report is not None:
            self._sink.report(report)
        self._finish(Unstoppable(timeout))

    def describe(self) -> dict[str, Any]:
        return {"thread": self._thread.name, "ident": self._thread.ident}

    def _arm_heartbeat(self) -> None:
        interval = self._spec.heartbeat.interval
        self._heartbeat_timer = self._env.loop.call_later(interval, self._check_heartbeat)

    def _check_heartbeat(self) -> None:
        if self._reported:
            return
        silent = time.monotonic() - self._context.last_tick
        timeout = self._spec.heartbeat.timeout
        if silent > timeout:
            self._sink.hung(Hung(f"no heartbeat for {silent:.3g} s (timeout {timeout:g} s)"))
            return
        self._arm_heartbeat()


def start(spec: Any, sink: ChildSink, env: BackendEnv) -> ThreadRunner:
    runner = ThreadRunner(spec, sink, env)
    runner.launch()
    if not spec.ready:
        sink.up()
    return runner
