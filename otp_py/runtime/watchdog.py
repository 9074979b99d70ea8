"""The loop-lag watchdog: notices asyncio children that block the tree's event loop.

A task that calls blocking code stalls every other task and the supervisor with it;
the supervisor cannot notice from the loop it shares. A helper thread can: it posts a
callback to the loop every ``interval`` seconds and times the answer. When an answer
is ``timeout`` seconds late, it looks at the loop thread's stack for the frame of a
task child's coroutine (the culprit); when the loop turns again, the culprit (or, if
none was found, every task child) is reported hung with the lag measured, and the
core stops and restarts it like any hung child.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from typing import Any

from otp_py._core.reasons import Hung
from otp_py.spec import LoopWatchdog

__all__ = ["Watchdog"]

logger = logging.getLogger("otp_py")


class Watchdog:
    """Watches ``tree``'s loop from a daemon thread until :meth:`stop`."""

    def __init__(self, tree: Any, config: LoopWatchdog) -> None:
        self._tree = tree
        self._config = config
        self._stopped = threading.Event()
        self._answered = threading.Event()
        self._loop_thread: int | None = None
        self._thread = threading.Thread(target=self._watch, name="otp_py-watchdog", daemon=True)

    def start(self) -> None:
        self._loop_thread = threading.get_ident()  # started from the loop's thread
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._answered.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _answer(self) -> None:
        self._answered.set()

    def _watch(self) -> None:
        config = self._config
        loop = self._tree.loop
        while not self._stopped.wait(config.interval):
            self._answered.clear()
            sent = time.monotonic()
            try:
                loop.call_soon_threadsafe(self._answer)
            except RuntimeError:
                return  # the loop is closed
            if self._answered.wait(config.timeout):
                lag = time.monotonic() - sent
                if lag > config.threshold and not self._stopped.is_set():
                    logger.warning("otp_py: the event loop lagged %.3g s", lag)
                continue
            # Blocked. Look at the stack now and at every timeout until the loop turns:
            # tasks may block it one after another, and each is to blame.
            found: list[Any] = []
            suspects: list[Any] = []
            while True:
                runners, on_stack = self._find_culprits()
                if on_stack:
                    found += [runner for runner in runners if runner not in found]
                else:
                    suspects = runners
                if self._answered.wait(config.timeout):
                    break
            culprits = found or suspects
            if self._stopped.is_set():
                return
            lag = time.monotonic() - sent
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._report, culprits, lag)

    def _task_runners(self) -> list[Any]:
        runners = []
        for _ in range(3):  # the loop thread may be changing the dicts: retry
            try:
                for node in list(self._tree.nodes.values()):
                    runners += [r for r in list(node.children.values()) if hasattr(r, "frame")]
                return runners
            except RuntimeError:
                runners = []
        return runners

    def _find_culprits(self) -> tuple[list[Any], bool]:
        """The task child on the loop's stack (and True), or every task child (and
        False) when none is: then all of them are suspect."""
        runners = self._task_runners()
        frames = {}
        for runner in runners:
            with contextlib.suppress(Exception):
                frame = runner.frame
                if frame is not None:
                    frames[id(frame)] = runner
        stack = sys._current_frames().get(self._loop_thread or 0)
        while stack is not None:
            runner = frames.get(id(stack))
            if runner is not None:
                return [runner], True
            stack = stack.f_back
        return runners, False

    def _report(self, culprits: list[Any], lag: float) -> None:
        timeout = self._config.timeout
        for runner in culprits:
            runner.hang(Hung(f"blocked the event loop for {lag:.3g} s (timeout {timeout:g} s)"))
