"""A deliberately small reference model of one OTP supervisor, for property tests.

It answers one question: given a *flat* supervisor (workers only) and a script of
worker exits, which decisions does an OTP supervisor make, in which order, and when?
It is written from OTP's rules (``supervisor.erl``, OTP 25), not from otp_py's core,
and shares no code with :mod:`otp_py._core.supervisor`: the property tests compare
the two, so a misreading of OTP in either shows up as a difference.

The world is the one :func:`otp_py.simulate` builds: a start takes no time and
succeeds unless its attempt number (counted per child, from 1, over the whole run) is
listed as failing; a stop request ends the child at once. Nothing else happens
between two scripted events, so the supervisor is never busy when one arrives.

The rules, as OTP has them:

* **Init** starts the children in spec order. If one fails, the ones already started
  are stopped in reverse order and the supervisor exits with
  ``{shutdown, {failed_to_start_child, Id, Reason}}``.
* **A child exits by itself.** Restart table: a permanent child is always restarted;
  a transient one only after an abnormal exit (not ``normal``, ``shutdown`` or
  ``{shutdown, Term}``); a temporary one never, and its spec is forgotten. A transient
  child that is not restarted stays in the list, stopped.
* **Every restart** first asks the sliding window: drop the restart times older than
  ``now - period`` (a time ``t >= now - period`` still counts), add ``now``, and give up
  if more than ``max_restarts`` remain. Giving up stops every running child in reverse
  start order and exits with ``shutdown``.
* **The plan.** one_for_one: start the failed child. one_for_all: the group is every
  child; rest_for_one: the failed child and every child after it. Stop the group's
  running children except the failed one in reverse order (a temporary child in the
  group is forgotten, running or not), then start every remaining member of the group
  in order, stopped-and-kept transient children included.
* **A start that fails during a restart** leaves that child *restarting*; the members
  of the group after it stay stopped. The supervisor tries again at once (nothing else
  is waiting), and the retry is a new restart: it counts against the window, and its
  plan is computed for the child that failed to start.
* **Stopping**: ``terminate`` with ``killed`` for a brutal-kill child, else
  ``shutdown`` (the child honours the stop request at once). A stop request for the
  whole supervisor stops the running children in reverse order and exits with
  ``shutdown``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from otp_py import BRUTAL_KILL
from otp_py.reasons import Normal, Shutdown

__all__ = ["Decision", "ReferenceSupervisor", "expected_decisions"]


class Decision(NamedTuple):
    """One observable decision.

    ``kind`` is ``"start"``, ``"start_failed"``, ``"terminate"`` (``detail``:
    ``"shutdown"`` or ``"killed"``) or ``"exit"`` (the supervisor ends; ``detail`` is
    ``"shutdown"`` or ``"failed_to_start_child <id>"``; ``child`` is None).
    """

    time: float
    kind: str
    child: str | None
    detail: str = ""


def _restarts_after(restart: str, reason: Any) -> bool | None:
    """OTP's restart table: True (restart), False (keep, stopped) or None (forget)."""
    if restart == "temporary":
        return None
    if restart == "permanent":
        return True
    return not isinstance(reason, Normal | Shutdown)  # transient: only if abnormal


class _Child:
    def __init__(self, spec: Any) -> None:
        self.id: str = spec.id
        self.restart: str = spec.restart.value
        self.brutal: bool = spec.shutdown is BRUTAL_KILL
        self.running = False


class ReferenceSupervisor:
    """The model, run event by event. Read :attr:`decisions` afterwards."""

    def __init__(self, spec: Any, start_failures: Mapping[str, Iterable[int]] | None = None):
        if any(child.is_supervisor for child in spec.children):
            raise ValueError("the reference model covers flat supervisors only")
        self.strategy: str = spec.strategy.name
        if self.strategy not in ("one_for_one", "one_for_all", "rest_for_one"):
            raise ValueError(f"the reference model does not know {self.strategy!r}")
        self.max_restarts: int = spec.intensity.max_restarts
        self.period: float = float(spec.intensity.period)
        self.children = [_Child(c) for c in spec.children]  # spec (= start) order
        self.failing = {cid: set(ns) for cid, ns in (start_failures or {}).items()}
        self.attempts: dict[str, int] = {}
        self.restart_times: list[float] = []
        self.decisions: list[Decision] = []
        self.exited = False
        self.now = 0.0

    # -- the script

    def init(self) -> None:
        for child in list(self.children):
            if not self._start(child):
                if child.restart == "temporary":
                    self.children.remove(child)
                self._exit(f"failed_to_start_child {child.id}")
                return

    def child_exits(self, now: float, child_id: str, reason: Any) -> None:
        self.now = now
        child = self._find(child_id)
        if self.exited or child is None or not child.running:
            return  # nothing by that name is running: the script's exit is a no-op
        child.running = False
        verdict = _restarts_after(child.restart, reason)
        if verdict is None:
            self.children.remove(child)
        elif verdict:
            self._restart(child)

    def stop(self, now: float) -> None:
        self.now = now
        if not self.exited:
            self._exit("shutdown")

    # -- OTP's rules

    def _restart(self, failed: _Child) -> None:
        pending: _Child | None = failed
        while pending is not None:
            if not self._window_allows():
                self._exit("shutdown")
                return
            pending = self._run_plan(pending)

    def _window_allows(self) -> bool:
        oldest = self.now - self.period
        self.restart_times = [t for t in self.restart_times if t >= oldest]
        self.restart_times.append(self.now)
        return len(self.restart_times) <= self.max_restarts

    def _run_plan(self, failed: _Child) -> _Child | None:
        """Stop and start the failed child's group; the child to retry, if a start failed."""
        if self.strategy == "one_for_one":
            group = [failed]
        elif self.strategy == "one_for_all":
            group = list(self.children)
        else:
            group = self.children[self.children.index(failed):]
        for child in reversed(group):
            if child is failed:
                continue
            if child.running:
                self._terminate(child)
            if child.restart == "temporary":
                self.children.remove(child)
        for child in group:
            if child in self.children and not child.running and not self._start(child):
                return child
        return None

    def _start(self, child: _Child) -> bool:
        attempt = self.attempts.get(child.id, 0) + 1
        self.attempts[child.id] = attempt
        if attempt in self.failing.get(child.id, ()):
            self.decisions.append(Decision(self.now, "start_failed", child.id))
            return False
        child.running = True
        self.decisions.append(Decision(self.now, "start", child.id))
        return True

    def _terminate(self, child: _Child) -> None:
        child.running = False
        how = "killed" if child.brutal else "shutdown"
        self.decisions.append(Decision(self.now, "terminate", child.id, how))

    def _exit(self, reason: str) -> None:
        for child in reversed(list(self.children)):
            if child.running:
                self._terminate(child)
            if child.restart == "temporary":
                self.children.remove(child)
        self.exited = True
        self.decisions.append(Decision(self.now, "exit", None, reason))

    def _find(self, child_id: str) -> _Child | None:
        for child in self.children:
            if child.id == child_id:
                return child
        return None


def expected_decisions(
    spec: Any,
    script: Iterable[tuple[float, str, Any]],
    *,
    stop_at: float | None = None,
    start_failures: Mapping[str, Iterable[int]] | None = None,
) -> list[Decision]:
    """Every decision the model makes for ``spec`` under ``script`` (``(time, child id,
    reason)``, processed in time order, ties in script order), then a stop at
    ``stop_at`` if given (it happens after the whole script, as in ``simulate``)."""
    model = ReferenceSupervisor(spec, start_failures)
    model.init()
    last = 0.0
    for at, child_id, reason in sorted(script, key=lambda item: item[0]):
        last = max(last, at)
        model.child_exits(last, child_id, reason)
    if stop_at is not None:
        model.stop(max(last, stop_at))
    return model.decisions
