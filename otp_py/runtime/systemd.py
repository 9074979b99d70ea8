"""The tree under systemd (``Type=notify``): otp_py's own notify client.

When the process runs with ``$NOTIFY_SOCKET`` set, :func:`otp_py.run` and
``otp-py run`` tell the service manager about the tree, with the datagrams of
``sd_notify(3)`` written directly (no libsystemd):

* ``READY=1`` once the root has started (every child up, ready children ready);
* ``STATUS=`` a one-line summary (children running, down, restarts), sent again
  when it changes, at most once per :data:`STATUS_EVERY` seconds;
* ``WATCHDOG=1`` from the tree's own event loop every half ``$WATCHDOG_USEC``
  (only if ``$WATCHDOG_PID`` is unset or names this process): a wedged loop stops
  the pings, and systemd restarts the service (``WatchdogSec=``);
* ``STOPPING=1`` when the tree starts its ordered shutdown (asked to, or its root
  gave up), then ``EXTEND_TIMEOUT_USEC=`` every :data:`EXTEND_EVERY` seconds while
  the shutdown is still within the tree's bound (:func:`shutdown_bound`): a long
  but orderly stop is not killed at ``TimeoutStopSec``, and one that overruns its
  own bound stops asking for more time.

The variables are removed from the environment once read (``sd_notify``'s
``unset_environment``), so the tree's children do not take the tree's socket for
their own: a child with ``ready=True`` gets a socket of its own instead
(:mod:`otp_py.runtime.notify`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
from collections.abc import Callable, MutableMapping
from typing import Any, Final

from otp_py._core import reports as rp
from otp_py._core.types import BrutalKill

__all__ = ["EXTEND_EVERY", "MIN_PING", "STATUS_EVERY", "Notifier", "shutdown_bound"]

logger = logging.getLogger("otp_py")

STATUS_EVERY: Final[float] = 1.0
"""The shortest time between two ``STATUS=`` updates."""

EXTEND_EVERY: Final[float] = 1.0
"""How often an ongoing shutdown asks for more time (each asks for twice this)."""

MIN_PING: Final[float] = 0.01
"""The shortest time between two watchdog pings, whatever ``$WATCHDOG_USEC`` says:
a timeout of a few microseconds cannot be met anyway, and pinging at half of it
would keep the loop busy sending."""

_VARIABLES: Final = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
_KILL_GRACE: Final[float] = 1.0  # a kill after a shutdown timeout, and its reaping


def shutdown_bound(spec: Any) -> float:
    """The longest an ordered shutdown of ``spec`` can take, in seconds (``inf``
    if a child may take forever): what ``TimeoutStopSec=`` should at least be.

    Children stop one by one in reverse start order, each given its ``shutdown``
    timeout and then killed (a second, :data:`_KILL_GRACE`, allowed for the kill);
    a nested supervisor takes as long as its own children, cut at its shutdown
    timeout if it has a finite one; a simple_one_for_one supervisor stops its
    children all at once, so they take as long as one of them."""
    if not getattr(spec, "is_supervisor", False):
        return _worker_bound(spec.shutdown)
    children = list(spec.children)
    bounds = [shutdown_bound(child) for child in children]
    if getattr(spec.strategy, "name", "") == "simple_one_for_one":
        inner = max(bounds, default=0.0)
    else:
        inner = sum(bounds)
    own = getattr(spec, "shutdown", math.inf)
    if isinstance(own, BrutalKill):
        return _KILL_GRACE
    if isinstance(own, int | float) and math.isfinite(own):
        return min(inner, own + _KILL_GRACE)
    return inner


def _worker_bound(shutdown: Any) -> float:
    if isinstance(shutdown, BrutalKill):
        return _KILL_GRACE
    if not math.isfinite(shutdown):
        return math.inf
    return float(shutdown) + _KILL_GRACE


class Notifier:
    """The tree's line to its service manager. Build it with :meth:`from_environ`;
    :meth:`attach` it to a tree before the tree starts, on the tree's loop."""

    def __init__(self, address: str, watchdog: float | None) -> None:
        if address.startswith("@"):  # an abstract socket
            self._target: str = "\0" + address[1:]
        elif address.startswith("/"):
            self._target = address
        else:
            raise ValueError(f"NOTIFY_SOCKET must be an absolute path or start with '@'; "
                             f"got {address!r}")
        self.address = address
        self.watchdog = watchdog  # seconds between pings, or None
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setblocking(False)
        self._tree: Any = None
        self._loop: Any = None
        self._timers: dict[str, Any] = {}
        self._status: str | None = None
        self._status_sent_at: float | None = None
        self._states: dict[tuple[str, ...], str] = {}
        self._restarts = 0
        self._ready = False
        self._stopping_since: float | None = None
        self._bound = math.inf
        self._gave_up = False
        self._failed_sends = 0
        self.sent: list[str] = []  # what was sent, newest last (the last 64)

    @classmethod
    def from_environ(
        cls, environ: MutableMapping[str, str] | None = None, *, unset: bool = True
    ) -> Notifier | None:
        """A notifier for the service manager named in ``environ`` (default: the
        process's), or None when there is none. ``unset`` removes the variables, so
        the tree's children do not inherit them."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET")
        usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        if unset:
            for name in _VARIABLES:
                env.pop(name, None)
        if not address:
            return None
        watchdog = None
        if usec and (not pid or pid == str(os.getpid())):
            try:
                value = int(usec)
            except ValueError:
                value = 0
            if value > 0:
                # at half the timeout, as sd_watchdog_enabled says (not absurdly often)
                watchdog = max(value / 2_000_000, MIN_PING)
            else:
                logger.warning("otp_py: WATCHDOG_USEC=%r is not a number of microseconds; "
                               "no watchdog pings are sent", usec)
        return cls(address, watchdog)

    # -- sending

    def send(self, message: str) -> bool:
        """Send one datagram; never raises (the service manager may be gone: the
        tree goes on, and the first failure is logged)."""
        try:
            self._sock.sendto(message.encode("utf-8", "replace"), self._target)
        except OSError as exc:
            self._failed_sends += 1
            if self._failed_sends == 1:
                logger.warning("otp_py: could not notify the service manager at %s: %s",
                               self.address, exc)
            return False
        self.sent.append(message)
        del self.sent[:-64]
        return True

    # -- the tree

    def attach(self, tree: Any) -> None:
        """Follow ``tree``: its reports drive READY, STATUS and STOPPING, its loop
        sends the watchdog pings. Call before ``tree.start()``."""
        self._tree, self._loop = tree, tree.loop
        self._bound = shutdown_bound(tree.root.spec)
        tree.listeners.append(self._on_report)
        tree.stop_callbacks.append(self.stopping)
        if self.watchdog is not None:
            self.send("WATCHDOG=1")
            self._every("watchdog", self.watchdog, lambda: self.send("WATCHDOG=1"))
        self._send_status()

    def close(self) -> None:
        """The tree has ended: stop the timers (nothing more is sent)."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._tree is not None:
            with contextlib.suppress(ValueError):
                self._tree.listeners.remove(self._on_report)
            with contextlib.suppress(ValueError):
                self._tree.stop_callbacks.remove(self.stopping)
        self._sock.close()

    def stopping(self) -> None:
        """The tree has begun its ordered shutdown: ``STOPPING=1``, and more time
        while the shutdown is within its bound."""
        if self._stopping_since is not None:
            return
        self._stopping_since = self._loop.time()
        self.send("STOPPING=1\nSTATUS=" + self._summary())
        if math.isfinite(self._bound):
            self._extend()
            self._every("extend", EXTEND_EVERY, self._extend)

    def _extend(self) -> None:
        assert self._stopping_since is not None
        if self._loop.time() - self._stopping_since > self._bound:
            handle = self._timers.pop("extend", None)
            if handle is not None:
                handle.cancel()
            logger.warning("otp_py: the shutdown has taken longer than its bound (%.3g s); "
                           "no more time is asked of the service manager", self._bound)
            return
        self.send(f"EXTEND_TIMEOUT_USEC={int(2 * EXTEND_EVERY * 1_000_000)}")

    def _every(self, name: str, interval: float, action: Callable[[], Any]) -> None:
        """Run ``action`` every ``interval`` seconds on the loop, on a fixed grid (a
        late tick does not push the later ones back; ticks missed while the loop
        was blocked are not made up: one is run, at once)."""
        due = self._loop.time() + interval

        def tick() -> None:
            nonlocal due
            if name not in self._timers:
                return
            action()
            now = self._loop.time()
            due += interval
            if due <= now:
                due = now + interval
            if name in self._timers:
                self._timers[name] = self._loop.call_at(due, tick)

        self._timers[name] = self._loop.call_at(due, tick)

    def _on_report(self, report: rp.Report) -> None:
        kind = type(report)
        if kind is rp.ChildStarted and not report.is_supervisor:  # type: ignore[attr-defined]
            path = (*report.path, report.child_id)  # type: ignore[attr-defined]
            self._states[path] = "running"
            if report.restarts:  # type: ignore[attr-defined]
                self._restarts += 1
        elif kind in (rp.ChildExited, rp.ChildStartFailed) and not report.is_supervisor:  # type: ignore[attr-defined]
            self._states[(*report.path, report.child_id)] = "down"  # type: ignore[attr-defined]
        elif kind is rp.ChildTerminated and not report.is_supervisor:  # type: ignore[attr-defined]
            self._states.pop((*report.path, report.child_id), None)  # type: ignore[attr-defined]
        elif kind is rp.IntensityExceeded and report.path == self._tree.root.path:
            self._gave_up = True
            self.stopping()
        elif kind is rp.SupervisorStarted and report.path == self._tree.root.path:
            if not self._ready:
                self._ready = True
                self.send("READY=1\nSTATUS=" + self._summary())
                self._status = self._summary()
                self._status_sent_at = self._loop.time()
            return
        else:
            return
        self._send_status()

    def _summary(self) -> str:
        running = sum(1 for s in self._states.values() if s == "running")
        down = len(self._states) - running
        if self._gave_up:
            state = "gave up, stopping"
        elif self._stopping_since is not None:
            state = "stopping"
        elif self._ready:
            state = "running"
        else:
            state = "starting"
        text = f"{state}: {running} children running"
        if down:
            text += f", {down} down"
        return text + f", {self._restarts} restart{'s' if self._restarts != 1 else ''}"

    def _send_status(self) -> None:
        """Send the summary if it changed, at most every STATUS_EVERY seconds (a
        change meanwhile is sent when the time has come)."""
        if "status" in self._timers:
            return  # (a send is already due)
        summary = self._summary()
        if summary == self._status:
            return
        now = self._loop.time()
        if self._status_sent_at is not None and now - self._status_sent_at < STATUS_EVERY:
            def later() -> None:
                self._timers.pop("status", None)
                self._send_status()

            self._timers["status"] = self._loop.call_later(
                self._status_sent_at + STATUS_EVERY - now, later)
            return
        self._status, self._status_sent_at = summary, now
        self.send("STATUS=" + summary)
