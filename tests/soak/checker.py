"""An independent model of every supervisor of a tree, checked against its reports.

The :class:`Checker` is a report listener. For each supervisor it keeps its children
(in start order), their states, and the times of its restart decisions, and from OTP's
rules it predicts what the supervisor must report next:

* a child that ended by itself is restarted, kept or removed as its restart type
  says for its reason (``do_restart/3``);
* a restart is charged to the supervisor's sliding window; while the window holds at
  most ``max_restarts`` decisions the restart goes ahead, and the one beyond escalates
  (``IntensityExceeded``, then every child stopped and the supervisor gone);
* a restart runs the strategy's plan: one_for_one restarts the child alone,
  one_for_all stops every other running child in reverse start order and starts them
  all again in start order, rest_for_one does the same for the children after it; a
  temporary child the plan stopped is forgotten;
* a supervisor stopping (asked by its parent, or giving up) stops its running
  children in reverse start order.

A report the model did not predict is a violation. The model is written from OTP's
rules, not from otp_py's code, and uses only the reports (never the library's
internals), so it checks rather than mirrors. Memory is bounded: it keeps counts and
the current state, never the reports.
"""

from __future__ import annotations

import collections
import threading
from collections import deque
from typing import Any

from otp_py import reports as rp

EDGE = 0.05
"""Seconds of slack at the edge of a sliding window: a retried start is charged a few
microseconds after its failure is reported, so a decision that close to the edge is
not held against the supervisor either way."""

MAX_MESSAGES = 50


def decision(restart: str, reason: Any) -> str:
    """OTP's ``do_restart/3``, written out."""
    if restart == "permanent":
        return "restart"
    if restart == "transient":
        return "restart" if reason.is_abnormal else "keep"
    return "remove"


class _Supervisor:
    """The model of one supervisor (one life of it: a restarted supervisor starts a
    new model, as it starts with a new budget)."""

    def __init__(self, spec: Any, path: tuple[str, ...], checker: Checker) -> None:
        self.spec = spec
        self.path = path
        self.where = "/".join(path)
        self.checker = checker
        self.specs = {c.id: c for c in spec.children}
        self.order: list[str] = [c.id for c in spec.children]
        self.state = dict.fromkeys(self.order, "stopped")
        self.since: dict[str, float] = {}
        self.window: deque[float] = deque()
        self.mode = "init"  # init, running, shutdown, exited
        self.expect: deque[tuple[str, str]] = deque(("start", c) for c in self.order)
        self.retries: deque[str] = deque()
        self.give_up_due = False
        self.give_up_optional = False
        intensity = spec.intensity
        self.max_restarts: int = intensity.max_restarts
        self.period: float = intensity.period

    # -- helpers

    def restart_type(self, child: str) -> str:
        return self.specs[child].restart.value

    def fail(self, message: str) -> None:
        self.checker.violation(f"{self.where}: {message}")

    def _charge(self, now: float) -> bool:
        """Charge a restart decision at ``now``; True if the window allows it. When a
        restart in the window is too close to its edge to tell, either verdict is
        right: it is allowed, and a give-up instead is accepted too."""
        window = self.window
        while window and window[0] < now - self.period - EDGE:
            window.popleft()
        window.append(now)
        strict = sum(1 for t in window if t >= now - self.period + EDGE)
        if len(window) <= self.max_restarts:
            return True
        if strict > self.max_restarts:
            return False
        self.give_up_optional = True
        return True

    def _plan(self, failed: str) -> None:
        """Expect the strategy's plan for ``failed``: stops, then starts."""
        name = self.spec.strategy.name
        order = self.order
        if name == "one_for_all":
            stops = [c for c in reversed(order) if c != failed and self.state[c] == "running"]
            candidates = list(order)
        elif name == "rest_for_one":
            after = order[order.index(failed) + 1:]
            stops = [c for c in reversed(after) if self.state[c] == "running"]
            candidates = [failed, *after]
        else:
            stops, candidates = [], [failed]
        gone = {c for c in stops if self.restart_type(c) == "temporary"}
        starts = [c for c in candidates if c not in gone
                  and (c in stops or self.state[c] != "running")]
        self.expect = deque([*(("stop", c) for c in stops), *(("start", c) for c in starts)])

    def _begin_shutdown(self) -> None:
        self.mode = "shutdown"
        self.expect = deque(("stop", c) for c in reversed(self.order)
                            if self.state[c] == "running")
        self.retries.clear()

    def _stopped(self, child: str) -> None:
        self.state[child] = "stopped"
        if self.restart_type(child) == "temporary":
            self._remove(child)

    def _remove(self, child: str) -> None:
        if child in self.order:
            self.order.remove(child)
        self.state.pop(child, None)

    def idle(self) -> bool:
        return (self.mode == "running" and not self.expect and not self.retries
                and not self.give_up_due)

    # -- reports

    def on_report(self, report: rp.Report) -> None:
        if self.give_up_optional:
            self.give_up_optional = False
            if isinstance(report, rp.IntensityExceeded):
                self.expect.clear()
                self.give_up_due = True
        if self.give_up_due and not isinstance(report, rp.IntensityExceeded):
            self.fail(f"went on ({report.describe()}) with more than {self.max_restarts} "
                      f"restart(s) in {self.period:g} s: it had to give up")
            self.give_up_due = False
            self.expect.clear()
        if isinstance(report, rp.SupervisorStarted):
            if self.mode != "init" or self.expect:
                self.fail(f"started with {list(self.expect)} still to do")
            self.mode = "running"
        elif isinstance(report, rp.SupervisorExited):
            if self.expect:
                self.fail(f"exited with {list(self.expect)} still to do")
            self.mode = "exited"
        elif isinstance(report, rp.ChildStarted):
            self._on_started(report)
        elif isinstance(report, rp.ChildStartFailed):
            self._on_start_failed(report)
        elif isinstance(report, rp.ChildTerminated):
            self._on_stopped(report.child_id, report.time, f"terminated ({report.reason})")
        elif isinstance(report, rp.ChildExited):
            if report.outcome == "":  # taken by a stop in progress
                self._on_stopped(report.child_id, report.time, f"exited ({report.reason})")
            else:
                self._on_decision(report)
        elif isinstance(report, rp.IntensityExceeded):
            self._on_give_up(report)
        elif isinstance(report, rp.ChildUnstoppable):
            if self.checker.take_unstoppable(self.path, report.child_id):
                self.checker.count("unstoppable children abandoned")
            else:
                self.fail(f"{report.child_id} reported unstoppable (only a task told to "
                          f"be stubborn may be)")
        elif isinstance(report, rp.RestartScheduled):
            self.fail(f"unexpected backoff for {report.child_id}")

    def _next_retry(self, now: float, first: tuple[str, str] | None = None) -> bool:
        """A failed restart is retried once the supervisor is free: if one is due,
        charge it and expect its plan. With ``first`` (the report in hand), the retry
        is taken only if its plan begins with it: a stop that arrived first preempts
        the retry. True if a retry was taken."""
        if self.expect or not self.retries or self.mode != "running":
            return False
        child = self.retries[0]
        if child not in self.state:
            self.retries.popleft()
            return False
        self._plan(child)
        if first is not None and (not self.expect or self.expect[0] != first):
            self.expect.clear()
            return False
        self.retries.popleft()
        self.checker.count("retries")
        if not self._charge(now):
            self.expect.clear()
            self.give_up_due = True
        return True

    def _on_started(self, report: rp.ChildStarted) -> None:
        child = report.child_id
        if not (self.expect and self.expect[0] == ("start", child)):
            self._next_retry(report.time, ("start", child))  # a retried restart's start
        if self.expect and self.expect[0] == ("start", child):
            self.expect.popleft()
        elif self.checker.take_api_start(self.path, child):
            if child not in self.state:  # start_child adds it last
                self.order.append(child)
        else:
            self.fail(f"unexpected start of {child}; expected {list(self.expect)[:3]}")
            if child not in self.state:
                self.order.append(child)
        self.state[child] = "running"
        self.since[child] = report.time
        self.checker.count("starts")

    def _on_start_failed(self, report: rp.ChildStartFailed) -> None:
        child = report.child_id
        self.checker.count("start failures")
        if not (self.expect and self.expect[0] == ("start", child)):
            self._next_retry(report.time, ("start", child))  # a retried restart's start
        if self.expect and self.expect[0] == ("start", child):
            self.expect.popleft()
            if self.mode == "init":
                self._begin_shutdown()
                return
            # the rest of the plan stays stopped; the child is retried later
            self.expect = deque(e for e in self.expect if e[0] != "start")
            self.state[child] = "restarting"
            self.retries.append(child)
        elif not self.checker.take_api_start(self.path, child):
            self.fail(f"unexpected failed start of {child}")

    def _on_stopped(self, child: str, now: float, how: str) -> None:
        if not self.expect and self.mode == "running" and not self._next_retry(
                now, ("stop", child)):
            self._begin_shutdown()  # its parent (or the tree) is stopping it
        if self.expect and self.expect[0] == ("stop", child):
            self.expect.popleft()
        else:
            self.fail(f"{child} {how} out of order; expected {list(self.expect)[:3]}")
        if child in self.state:
            self._stopped(child)

    def _on_decision(self, report: rp.ChildExited) -> None:
        child = report.child_id
        if child not in self.state:
            self.fail(f"decision about {child}, which it no longer has")
            return
        restart = self.restart_type(child)
        if self.mode != "running":
            wanted = {"remove" if restart == "temporary" else "keep"}
        else:
            wanted = {decision(restart, report.reason)}
        if wanted == {"restart"}:
            # the window decides: restart, or give up (an escalation)
            allowed = self._charge(report.time)
            wanted = {"restart", "give_up"} if self.give_up_optional else (
                {"restart"} if allowed else {"give_up"})
            self.give_up_optional = False
        if report.outcome not in wanted:
            self.fail(f"{child} ({restart}) exited with {report.reason}: decided "
                      f"{report.outcome!r}, OTP requires {' or '.join(sorted(wanted))} "
                      f"({len(self.window)} restart(s) in its window, at most "
                      f"{self.max_restarts} in {self.period:g} s)")
        if self.mode != "running":
            self.expect = deque(e for e in self.expect if e[1] != child)
        elif self.expect:
            self.fail(f"decided about {child} with {list(self.expect)[:3]} still to do")
            self.expect.clear()
        self.state[child] = "stopped"
        self.checker.count_exit(self.path, report)
        if report.outcome == "remove":
            self._remove(child)
        elif report.outcome == "restart":
            self.checker.count("restarts")
            self._plan(child)
        elif report.outcome == "give_up":
            self.give_up_due = True

    def _on_give_up(self, report: rp.IntensityExceeded) -> None:
        if not self.give_up_due:
            self._next_retry(report.time)  # the charge of a retried restart may be it
            if self.give_up_optional:  # ... at the edge of the window
                self.give_up_optional = False
                self.give_up_due = True
        if not self.give_up_due:
            self.fail(f"gave up with {len(self.window)} restart(s) in its window, at most "
                      f"{self.max_restarts} in {self.period:g} s allowed")
        self.give_up_due = False
        self.checker.escalated(self.path)
        if report.child_id in self.state:
            self.state[report.child_id] = "stopped"
        self._begin_shutdown()


class Checker:
    """The report listener: one model per supervisor, counters, violations."""

    def __init__(self, spec: Any) -> None:
        self._specs: dict[tuple[str, ...], Any] = {}
        self._index(spec, (spec.id,))
        self._models: dict[tuple[str, ...], _Supervisor] = {}
        self._lock = threading.Lock()
        self._api: collections.Counter[tuple[tuple[str, ...], str]] = collections.Counter()
        self._unstoppable: collections.Counter[tuple[tuple[str, ...], str]] = (
            collections.Counter())
        self.counts: collections.Counter[str] = collections.Counter()
        self.escalations: collections.Counter[str] = collections.Counter()
        self.exits: collections.Counter[str] = collections.Counter()
        self.violations = 0
        self.messages: list[str] = []
        self.last_report = 0.0

    def _index(self, spec: Any, path: tuple[str, ...]) -> None:
        self._specs[path] = spec
        for child in spec.children:
            if child.is_supervisor:
                self._index(child, (*path, child.id))

    # -- the listener (called on the tree's loop thread)

    def __call__(self, report: rp.Report) -> None:
        with self._lock:
            self.last_report = report.time
            if isinstance(report, rp.SupervisorStarting):
                spec = self._specs.get(report.path)
                if spec is None:
                    self.violation(f"{report.where}: an unknown supervisor started")
                    return
                self._models[report.path] = _Supervisor(spec, report.path, self)
                return
            model = self._models.get(report.path)
            if model is None:
                self.violation(f"{report.where}: a report before it started: "
                               f"{report.describe()}")
                return
            try:
                model.on_report(report)
            except Exception as exc:  # a bug of the model must show, not stop the soak
                self.violation(f"{report.where}: the model failed on {report.describe()}: "
                               f"{exc!r}")

    # -- bookkeeping used by the models

    def violation(self, message: str) -> None:
        self.violations += 1
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(message)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] += n

    def count_exit(self, path: tuple[str, ...], report: rp.ChildExited) -> None:
        self.exits[type(report.reason).__name__] += 1

    def escalated(self, path: tuple[str, ...]) -> None:
        self.escalations[_level(path)] += 1

    # -- used by the injector (any thread)

    def allow_api_start(self, path: tuple[str, ...], child: str) -> None:
        """The next unsolicited start of ``child`` under ``path`` is ours."""
        with self._lock:
            self._api[path, child] += 1

    def cancel_api_start(self, path: tuple[str, ...], child: str) -> None:
        with self._lock:
            if self._api[path, child] > 0:
                self._api[path, child] -= 1

    def take_api_start(self, path: tuple[str, ...], child: str) -> bool:
        if self._api[path, child] > 0:
            self._api[path, child] -= 1
            return True
        return False

    def allow_unstoppable(self, path: tuple[str, ...], child: str) -> None:
        """``child`` under ``path`` may be reported unstoppable once."""
        with self._lock:
            self._unstoppable[path, child] += 1

    def cancel_unstoppable(self, path: tuple[str, ...], child: str) -> None:
        with self._lock:
            if self._unstoppable[path, child] > 0:
                self._unstoppable[path, child] -= 1

    def take_unstoppable(self, path: tuple[str, ...], child: str) -> bool:
        if self._unstoppable[path, child] > 0:
            self._unstoppable[path, child] -= 1
            return True
        return False

    def idle(self) -> bool:
        """Every supervisor the model knows is running, with nothing in progress."""
        with self._lock:
            live = [m for m in self._models.values() if m.mode != "exited"]
            return all(m.idle() for m in live)

    def uptime(self, path: tuple[str, ...], child: str, now: float) -> float:
        """How long the model has seen ``child`` of ``path`` running (0 if not)."""
        with self._lock:
            model = self._models.get(path)
            if model is None or model.state.get(child) != "running":
                return 0.0
            return now - model.since.get(child, now)


def _level(path: tuple[str, ...]) -> str:
    return {1: "root", 2: "middle", 3: "leaf"}.get(len(path), f"depth {len(path)}")
