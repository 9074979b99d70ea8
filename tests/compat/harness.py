"""Running ``OFASupervisor.start()`` as a user would (blocking, in the main thread),
hearing from its children, and stopping it with a real signal.

Nothing here sleeps and hopes: waits are on the children's messages or on the
supervisor's end, each with a deadline.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import psutil

from tests.reports import DEFAULT_TIMEOUT

SLACK = 1.5
"""Seconds allowed on top of a documented bound, for process starts and a loaded
2-core machine."""

Event = tuple[Any, ...]
"""``(kind, pid, time.monotonic(), *details)``, as :func:`targets.tell` sends it."""


class Events:
    """What the children tell the test, over one pipe.

    The children get :attr:`writer`; the test reads. Read from one thread at a time:
    the helper thread of :func:`supervise` while the supervisor runs, the test after.
    """

    def __init__(self) -> None:
        self._reader, self.writer = multiprocessing.Pipe(duplex=False)
        self.seen: list[Event] = []
        self.abort: threading.Event | None = None

    def _receive(self, timeout: float) -> None:
        if self._reader.poll(timeout):
            self.seen.append(self._reader.recv())

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.seen if e[0] == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = DEFAULT_TIMEOUT) -> list[Event]:
        """Block until ``count`` messages of ``kind`` have arrived; return them all.

        Gives up early if the supervisor has ended (nothing more will come)."""
        deadline = time.monotonic() + timeout
        while len(self.of(kind)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {count} {kind!r}: {self.seen}")
            if self.abort is not None and self.abort.is_set():
                self.drain()
                if len(self.of(kind)) >= count:
                    break
                raise AssertionError(f"start() ended before {count} {kind!r}: {self.seen}")
            self._receive(min(remaining, 0.05))
        return self.of(kind)

    def drain(self) -> None:
        while self._reader.poll(0):
            self.seen.append(self._reader.recv())

    def pids(self) -> list[int]:
        """Every process that spoke, in order of first message."""
        return list(dict.fromkeys(e[1] for e in self.seen))

    def close(self) -> None:
        self._reader.close()
        self.writer.close()


@attrs.frozen
class Outcome:
    returned: Any
    error: BaseException | None
    started: float
    """When ``start()`` was called (``time.monotonic()``)."""
    ended: float
    signalled: float | None
    """When the helper sent its signal, if it did."""


def supervise(
    supervisor: Any,
    events: Events,
    stop_when: Callable[[Events], object] | None = None,
    *,
    signum: int = signal.SIGTERM,
    deadline: float = 2 * DEFAULT_TIMEOUT,
) -> Outcome:
    """Call ``supervisor.start()`` here, in the main thread.

    A helper thread runs ``stop_when(events)`` (which waits for what the test needs
    to see) and then sends ``signum`` to this process, as a user or a service
    manager would. Without ``stop_when``, the supervisor must end on its own. Either
    way, if ``start()`` has not returned ``deadline`` seconds later, the helper sends
    SIGTERM to unblock it and the test fails.

    ``stop_when`` must only return once the tree can no longer end by itself (its
    child runs forever): the signal would be fatal after ``start()`` has returned.
    """
    assert threading.current_thread() is threading.main_thread()
    finished = threading.Event()
    events.abort = finished
    box: dict[str, Any] = {}

    def helper() -> None:
        if stop_when is not None:
            try:
                stop_when(events)
            except BaseException as exc:
                box["helper_error"] = exc
            if not finished.is_set():
                box["signalled"] = time.monotonic()
                os.kill(os.getpid(), signum)
        if not finished.wait(deadline):
            box["hung"] = True
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=helper, name="ofa-test-helper")
    returned: Any = None
    error: BaseException | None = None
    started = time.monotonic()
    thread.start()
    try:
        returned = supervisor.start()
    except Exception as exc:
        error = exc
    finally:
        ended = time.monotonic()
        finished.set()
        thread.join()
        events.abort = None
    events.drain()
    if "helper_error" in box:
        raise box["helper_error"]
    assert "hung" not in box, f"start() did not end within {deadline} s"
    return Outcome(returned, error, started, ended, box.get("signalled"))


def assert_all_gone(pids: Iterable[int], timeout: float = DEFAULT_TIMEOUT) -> None:
    """Every process in ``pids`` is dead (or a zombie about to be reaped by init)."""
    deadline = time.monotonic() + timeout
    remaining = set(pids)
    while remaining:
        for pid in list(remaining):
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    remaining.discard(pid)
            except psutil.NoSuchProcess:
                remaining.discard(pid)
        if remaining and time.monotonic() > deadline:
            raise AssertionError(f"processes survived: {sorted(remaining)}")
        if remaining:
            time.sleep(0.01)
