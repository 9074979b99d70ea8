"""Simulation: drive a whole tree's decision cores with a fake clock. No I/O.

:func:`simulate` runs a :class:`~otp_py.SupervisorSpec` without starting anything:
every worker starts instantly (unless told to fail), stops as soon as it is asked,
and ends when the script says so. The cores are the very ones the runtime drives, so
the timeline of decisions (starts, restarts and their delays, stops, escalations) is
what the real tree would decide for the same failures. It runs in microseconds,
which makes intensity and backoff choices unit-testable.

Messages are delivered in the order they are sent, one at a time, as between Erlang
processes; timers fire in time order on the fake clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from otp_py._core import events as ev
from otp_py._core import reports as rp
from otp_py._core.arguments import check_tree_arguments
from otp_py._core.intensity import RandomSource
from otp_py._core.reasons import (
    Abnormal,
    Crashed,
    ExitReason,
    Killed,
    NoRestart,
    Normal,
    Shutdown,
    TreeShutdown,
    class_names,
)
from otp_py._core.supervisor import SupervisorCore
from otp_py._errors import DoNotRestart, ShutdownTree
from otp_py._errors import Shutdown as ShutdownException

__all__ = ["HandledExit", "Simulation", "StartFails", "simulate", "to_reason"]


@attrs.frozen
class StartFails:
    """A scripted event: the next start attempts of ``path`` fail ``times`` times."""

    times: int = 1


@attrs.frozen
class Simulation:
    """The result of :func:`simulate`: every report in order, and how the root ended.

    ``exit_reason`` is None while the root still runs at the end of the script.
    """

    reports: tuple[rp.Report, ...]
    exit_reason: ExitReason | None
    end_time: float

    def timeline(self) -> list[str]:
        """The reports as readable lines, ``"t=1.500 root: started a (restart 1)"``."""
        return [f"t={r.time:.3f} {r.describe()}" for r in self.reports]

    def of_type(self, kind: type[rp.Report]) -> list[Any]:
        return [r for r in self.reports if isinstance(r, kind)]

    # -- the decisions, read from the reports

    @property
    def root_id(self) -> str:
        """The id of the simulated tree's root supervisor."""
        return self.reports[0].path[0] if self.reports else ""

    def exits(self, path: str | None = None) -> list[HandledExit]:
        """Every exit a supervisor handled, in order, with what it decided.

        ``path`` (``"db"``, ``"pool/worker"``; a leading root id is optional) keeps
        one child's exits; nested supervisors are children too (``"pool"``). Only
        children that ended by themselves are listed: the siblings a strategy's plan
        stopped are not (they are :class:`~otp_py.reports.ChildTerminated` reports).
        """
        wanted = None if path is None else _relative(path, self.root_id)
        reports = self.reports
        found = []
        for index, report in enumerate(reports):
            if not isinstance(report, rp.ChildExited):
                continue
            child = "/".join((*report.path[1:], report.child_id))
            if wanted is not None and child != wanted:
                continue
            outcome, delay = report.outcome, None
            if outcome in ("restart", "ignore"):
                # The core reports a restart's delay (or its refusal) right after the
                # exit, in the same step.
                after = reports[index + 1] if index + 1 < len(reports) else None
                same = (
                    after is not None
                    and after.path == report.path
                    and getattr(after, "child_id", None) == report.child_id
                    and after.time == report.time
                )
                if same and isinstance(after, rp.IntensityExceeded):
                    outcome = "give_up"
                elif same and isinstance(after, rp.RestartScheduled):
                    delay = after.delay
                else:
                    delay = 0.0
            reason = report.reason
            assert reason is not None  # every ChildExited carries its reason
            found.append(HandledExit(report.time, child, reason, outcome, delay))
        return found

    def restart_delays(self, path: str) -> list[float]:
        """The delay chosen for each restart of the child at ``path`` after it ended
        by itself, in order: 0.0 for an immediate restart, a backoff's or a decider's
        delay otherwise. Restarts the budget refused are not included; nor are retries
        of failed starts (see :class:`~otp_py.reports.ChildStartFailed` and
        :class:`~otp_py.reports.RestartScheduled`)."""
        return [
            e.delay for e in self.exits(path)
            if e.outcome in ("restart", "ignore") and e.delay is not None
        ]

    def restart_times(self, path: str) -> list[float]:
        """When the child at ``path`` was started again, in order: after its own
        exits (once any delay has passed) and when a strategy's plan restarted it
        with a sibling."""
        wanted = _relative(path, self.root_id)
        return [
            r.time for r in self.reports
            if isinstance(r, rp.ChildStarted) and r.restarts > 0
            and "/".join((*r.path[1:], r.child_id)) == wanted
        ]

    def gave_up_at(self, supervisor: str = "") -> float | None:
        """When the supervisor at ``supervisor`` (``""`` or the root's id: the root;
        ``"pool"``: a nested one) first gave up: its intensity was exceeded or a
        decider escalated. None if it never did. Its reports then follow at the same
        instant: children stopped, the supervisor exited."""
        path = (self.root_id, *_supervisor_parts(supervisor, self.root_id))
        for report in self.reports:
            if isinstance(report, rp.IntensityExceeded) and report.path == path:
                return report.time
        return None


@attrs.frozen
class HandledExit:
    """One exit of a child as :meth:`Simulation.exits` lists it.

    ``outcome`` is what its supervisor decided: ``"restart"`` (the budget charged),
    ``"ignore"`` (restarted without charging it), ``"keep"`` or ``"remove"`` (not
    restarted; the spec kept or forgotten), ``"escalate"`` (a decider's escalation),
    ``"shutdown_tree"``, ``"give_up"`` (the restart the table or decider asked for was
    refused by the budget: the supervisor gave up), or ``""`` (the supervisor was
    already shutting down). ``delay`` is the delay before a restart in seconds (0.0
    for at once), None when there was no restart.
    """

    time: float
    path: str
    """The child's path from the root, as :func:`simulate`'s events name it."""
    reason: ExitReason
    outcome: str
    delay: float | None

    @property
    def child_id(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def supervisor(self) -> str:
        """The path of its supervisor from the root (``""`` for the root)."""
        return self.path.rpartition("/")[0]


def to_reason(value: Any) -> ExitReason:
    """Turn what a user writes into an exit reason: an :class:`ExitReason` as is,
    ``"normal"`` / ``"shutdown"`` / ``"killed"``, an exception instance (raised by the
    child), or any other value as an abnormal term."""
    if isinstance(value, ExitReason):
        return value
    if isinstance(value, ShutdownException):
        return Shutdown(value.term) if value.has_term else Shutdown()
    if isinstance(value, DoNotRestart):
        return NoRestart(str(value))
    if isinstance(value, ShutdownTree):
        return TreeShutdown(str(value))
    if isinstance(value, BaseException):
        # As a child's crash: named by its classes, so decider rules match it.
        return Crashed(type(value).__qualname__, str(value),
                       error_types=class_names(type(value)))
    if value == "normal":
        return Normal()
    if value == "shutdown":
        return Shutdown()
    if value == "killed":
        return Killed()
    return Abnormal(value)


class _Sim:
    def __init__(
        self, spec: Any, random: RandomSource | None, start_failures: Mapping[str, Iterable[int]]
    ) -> None:
        self.random = random
        self.now = 0.0
        self.reports: list[rp.Report] = []
        self.mailbox: deque[tuple[Any, ev.Event]] = deque()
        self.timers: list[tuple[float, int, Any, int]] = []
        self.cancelled: set[tuple[int, int]] = set()
        self.seq = itertools.count()
        self.attempts: dict[str, int] = {}
        self.fail_on = {p: set(ns) for p, ns in start_failures.items()}
        self.extra_failures: dict[str, int] = {}
        # live worker / supervisor incarnations: (core id, ref) -> path or core
        self.workers: dict[tuple[int, int], str] = {}
        self.path_of_worker: dict[str, tuple[int, int]] = {}
        self.sup_of_ref: dict[tuple[int, int], SupervisorCore] = {}
        self.parent: dict[int, tuple[SupervisorCore, int, bool]] = {}
        self.shared_budgets: dict[str, Any] = {}
        self.root = SupervisorCore(spec, path=(spec.id,), random=random,
                                   shared_budgets=self.shared_budgets)
        self.cores: dict[int, SupervisorCore] = {id(self.root): self.root}
        self.exit_reason: ExitReason | None = None
        self.killed: set[int] = set()
        self.replies: dict[int, ev.Reply] = {}
        self.request_ids = itertools.count(1)

    # -- delivery

    def post(self, core: SupervisorCore, event: ev.Event) -> None:
        self.mailbox.append((core, event))

    def run_mailbox(self) -> None:
        while self.mailbox:
            core, event = self.mailbox.popleft()
            for action in core.handle(event, self.now):
                self.execute(core, action)

    def execute(self, core: SupervisorCore, action: ev.Action) -> None:
        key = id(core)
        if isinstance(action, ev.Emit):
            self.reports.append(action.report)
        elif isinstance(action, ev.StartChild):
            self.start(core, action)
        elif isinstance(action, ev.StopChild):
            self.stop(core, action.ref, kill=False)
        elif isinstance(action, ev.KillChild):
            self.stop(core, action.ref, kill=True)
        elif isinstance(action, ev.SetTimer):
            heapq.heappush(
                self.timers, (self.now + action.delay, next(self.seq), core, action.token)
            )
        elif isinstance(action, ev.CancelTimer):
            self.cancelled.add((key, action.token))
        elif isinstance(action, ev.StopTree):
            self.post(self.root, ev.Stop(Shutdown()))
        elif isinstance(action, ev.Reply):
            self.replies[action.request_id] = action
        elif isinstance(action, ev.Initialized):
            if key in self.parent:
                parent, ref, _ = self.parent[key]
                self.parent[key] = (parent, ref, True)
                self.post(parent, ev.ChildUp(ref))
        elif isinstance(action, ev.Exit):
            self.cores.pop(key, None)
            if key in self.parent:
                parent, ref, up = self.parent.pop(key)
                self.sup_of_ref.pop((id(parent), ref), None)
                reason = Killed() if key in self.killed else action.reason
                self.killed.discard(key)
                if up:
                    self.post(parent, ev.ChildDown(ref, reason))
                else:
                    self.post(parent, ev.ChildStartFailed(ref, action.reason))
            elif core is self.root:
                self.exit_reason = action.reason

    def start(self, core: SupervisorCore, action: ev.StartChild) -> None:
        path = "/".join((*core.path[1:], action.child_id))
        if action.spec.is_supervisor:
            child = SupervisorCore(action.spec, path=(*core.path, action.child_id),
                                   random=self.random, shared_budgets=self.shared_budgets)
            self.cores[id(child)] = child
            self.parent[id(child)] = (core, action.ref, False)
            self.sup_of_ref[(id(core), action.ref)] = child
            self.post(child, ev.Init())
            return
        attempt = self.attempts.get(path, 0) + 1
        self.attempts[path] = attempt
        if attempt in self.fail_on.get(path, ()) or self.extra_failures.get(path, 0) > 0:
            if self.extra_failures.get(path, 0) > 0:
                self.extra_failures[path] -= 1
            self.post(core, ev.ChildStartFailed(action.ref, Abnormal("start_failed")))
            return
        self.workers[(id(core), action.ref)] = path
        self.path_of_worker[path] = (id(core), action.ref)
        self.post(core, ev.ChildUp(action.ref))

    def stop(self, core: SupervisorCore, ref: int, *, kill: bool) -> None:
        key = (id(core), ref)
        nested = self.sup_of_ref.get(key)
        if nested is not None:
            if kill:
                self.killed.add(id(nested))
            self.post(nested, ev.ForceKill() if kill else ev.Stop(Shutdown()))
            return
        path = self.workers.pop(key, None)
        if path is None:
            return
        if self.path_of_worker.get(path) == key:
            del self.path_of_worker[path]
        self.post(core, ev.ChildDown(ref, Killed() if kill else Shutdown()))

    # -- the script

    def core_at(self, path: str) -> SupervisorCore | None:
        """The live core of the supervisor at ``path`` (``""`` for the root)."""
        wanted = (self.root.path[0], *filter(None, path.split("/")))
        for core in self.cores.values():
            if core.path == wanted:
                return core
        return None

    def call(self, path: str, request: ev.Request) -> ev.Reply | None:
        """Call the supervisor at ``path``; None if it is not running."""
        core = self.core_at(path)
        if core is None:
            return None
        request_id = next(self.request_ids)
        self.post(core, ev.Call(request_id, request))
        self.run_mailbox()
        return self.replies.pop(request_id, None)

    def fail(self, path: str, reason: Any) -> None:
        if isinstance(reason, StartFails):
            self.extra_failures[path] = self.extra_failures.get(path, 0) + reason.times
            return
        key = self.path_of_worker.get(path)
        if key is None:
            return  # not running: nothing to crash
        del self.path_of_worker[path]
        del self.workers[key]
        core = self.cores.get(key[0])
        if core is not None:
            self.post(core, ev.ChildDown(key[1], to_reason(reason)))

    def advance_to(self, when: float) -> None:
        while self.timers and self.timers[0][0] <= when:
            at, _, core, token = heapq.heappop(self.timers)
            if (id(core), token) in self.cancelled:
                self.cancelled.discard((id(core), token))
                continue
            self.now = max(self.now, at)
            self.post(core, ev.TimerFired(token))
            self.run_mailbox()
        self.now = max(self.now, when)


def _supervisor_parts(path: str, root_id: str) -> list[str]:
    """``"pool"``, ``"root/pool"`` -> ``["pool"]``; ``""``, ``"root"`` -> ``[]``."""
    parts = [p for p in path.split("/") if p]
    return parts[1:] if parts[:1] == [root_id] else parts


def _is_time(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, int | float)
            and 0 <= value < float("inf"))


def _checked_events(spec: Any, events: Iterable[Any]) -> list[tuple[float, str, Any]]:
    """The events, each refused with a clear error if it cannot mean anything: a
    mistyped path or a time that is not one would otherwise be silently ignored, and a
    test would pass without testing anything."""
    checked = []
    for event in events:
        if not (isinstance(event, tuple | list) and len(event) == 3):
            raise TypeError(f"simulate(): an event is (time, path, reason); got {event!r}")
        at, path, reason = event
        if not _is_time(at):
            raise ValueError(f"simulate(): event {tuple(event)!r}: the time must be a finite "
                             f"number of seconds >= 0")
        _check_path(spec, path, f"event {tuple(event)!r}")
        checked.append((float(at), path, reason))
    return checked


def _check_path(spec: Any, path: Any, what: str) -> None:
    """``path`` must name a worker the tree can have: a static child, or a dynamic
    child ``template#N`` of a simple_one_for_one supervisor."""
    if not isinstance(path, str):
        raise TypeError(f"simulate(): {what}: a path is a string such as 'pool/worker'")
    parts = _relative(path, spec.id).split("/")
    if "" in parts:
        raise ValueError(f"simulate(): {what}: the path has an empty part")
    node = spec
    for depth, part in enumerate(parts):
        children = {c.id: c for c in node.children}
        child = children.get(part)
        if child is None and node.strategy.dynamic:
            template = node.children[0]
            base, sep, serial = part.rpartition("#")
            if sep and base == template.id and serial.isdigit():
                child = template
        if child is None:
            where = "/".join((spec.id, *parts[:depth])) if depth else spec.id
            known = ", ".join(repr(c.id) for c in node.children)
            raise ValueError(f"simulate(): {what}: no child {part!r} under {where!r} "
                             f"(its children: {known})")
        node = child
    if getattr(node, "children", None) is not None and hasattr(node, "strategy"):
        raise ValueError(f"simulate(): {what}: {path!r} is a supervisor; events end "
                         "workers")


def _relative(path: str, root_id: str) -> str:
    prefix = root_id + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def simulate(
    spec: Any,
    events: Iterable[tuple[float, str, Any]] = (),
    *,
    until: float | None = None,
    stop_at: float | None = None,
    random: RandomSource | None = None,
    start_failures: Mapping[str, Iterable[int]] | None = None,
) -> Simulation:
    """Run ``spec`` on a fake clock and return every decision it makes.

    ``events`` are ``(time, path, reason)``: at ``time`` seconds the worker at
    ``path`` (``"db"``, ``"pool/worker#2"``; a leading root id is optional) ends with
    ``reason`` (see :func:`to_reason`), or, for a :class:`StartFails` reason, its next
    start attempts fail. ``start_failures`` maps a path to the attempt numbers
    (1-based) that fail, like the conformance scenarios' ``fail_start``.
    ``stop_at`` asks the root to shut down at that time; ``until`` (default: the last
    event, plus an hour for pending backoffs) is when the clock stops.
    ``random`` is the jitter source, a function of no arguments returning a float in
    [0, 1), such as ``random.Random(7).random`` (default: no jitter).
    """
    check_tree_arguments("simulate", spec, random=random)
    script = sorted(_checked_events(spec, events), key=lambda item: item[0])
    for name, value in (("until", until), ("stop_at", stop_at)):
        if value is not None and not _is_time(value):
            raise ValueError(f"simulate(): {name} must be a finite number of seconds >= 0; "
                             f"got {value!r}")
    if start_failures is not None:
        for path in start_failures:
            _check_path(spec, path, f"start_failures key {path!r}")
    sim = _Sim(spec, random, start_failures or {})
    sim.post(sim.root, ev.Init())
    sim.run_mailbox()
    last = max([t for t, _, _ in script] + [stop_at or 0.0])
    horizon = until if until is not None else last + 3600.0
    for at, path, reason in script:
        if at > horizon:
            break
        sim.advance_to(at)
        sim.fail(_relative(path, spec.id), reason)
        sim.run_mailbox()
    if stop_at is not None and stop_at <= horizon:
        sim.advance_to(stop_at)
        if sim.exit_reason is None:
            sim.post(sim.root, ev.Stop(Shutdown()))
            sim.run_mailbox()
    sim.advance_to(horizon)
    return Simulation(tuple(sim.reports), sim.exit_reason, sim.now)
