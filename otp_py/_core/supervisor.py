"""The decision core of one supervisor: events in, actions out. No I/O.

This module decides everything a supervisor decides (which child to start, stop or
restart, in which order, whether the restart budget allows it, when to give up) and
does nothing else. It never touches a process, a thread, a socket or a clock: the
runtime feeds it events with the current time and executes the actions it returns::

    actions = core.handle(event, now)

Theory of operation
-------------------
The semantics are those of OTP's ``supervisor.erl`` (OTP 25), rule for rule:

* **Serial.** An OTP supervisor is one process that starts and stops children
  synchronously; while it is busy (starting a child, waiting for one to stop),
  everything else waits in its mailbox. Here, an operation that must wait is a *job*:
  a generator that yields what it waits for. Events the job is not waiting for are
  deferred and handled in arrival order once it is done. An exit that arrives for a
  child the job is about to stop is taken by the job instead (OTP's ``unlink_flush``),
  so it is never mistaken for a crash afterwards.
* **Init** starts the children in order, each waiting for the previous one to be up.
  If one fails, the started ones are stopped in reverse order and the supervisor
  exits with ``{shutdown, {failed_to_start_child, Id, Reason}}``.
* **A child ends by itself**: the restart table (:mod:`otp_py._core.table`) says
  restart, keep or remove. A restart first asks the intensity budget; if it refuses,
  every child is stopped in reverse order and the supervisor exits with ``shutdown``
  (its parent sees a child exit). Otherwise the strategy's plan runs: siblings stopped
  one by one in the plan's order, then children started one by one. A temporary child
  the plan stopped is forgotten, not restarted.
* **A start that declines** (OTP's ``ignore``: the runtime reports ``ChildIgnored``)
  is not a failure. The child is kept with no process (``which_children`` shows it
  ``"ignored"``, OTP's ``undefined``) and the supervisor goes on; a temporary child,
  and a child of a simple_one_for_one supervisor, is forgotten instead. This holds
  at init, for ``start_child`` and ``restart_child`` (which answer ``None``: OTP's
  ``{ok, undefined}``) and for a restart (already charged to the budget; no retry).
* **A restart that fails** leaves the child *restarting* and queues a retry behind
  whatever is already waiting (OTP's ``try_again_restart`` cast); the retry counts
  against the budget again.
* **Backoff** (not in OTP; off unless the policy asks for it): a verdict with a delay
  stops the plan's siblings now and starts the plan's children when a timer fires;
  meanwhile they show as *restarting* and the supervisor serves other events.
* **Stopping a child**: graceful stop and a kill timer of its ``shutdown`` seconds,
  or a kill at once for ``BRUTAL_KILL``. A simple_one_for_one supervisor stops all its
  children at once, under one timer.
* **auto_shutdown** and **significant** children: as OTP 24+.

Beyond OTP, each off until asked for:

* **The failure decider** (:mod:`otp_py._core.decider`) may override the table for
  chosen exceptions, exit codes and signals: restart (with its own delay), stop,
  escalate at once, shut the whole tree down, or restart without charging the budget.
  A nested supervisor is judged by its parent's decider.
* **Hung children** (``ChildHung``, from heartbeats and the loop watchdog) are stopped
  like any child, then decided about as if they had ended with the hang's reason.
* **Crash history**: every exit is kept (the last :data:`HISTORY_LENGTH` per child);
  giving up reports the exits that charged the budget.
* **Shared budgets** (:class:`~otp_py.SharedBudget`): supervisors naming one budget
  charge one bookkeeping, which lives while any of them runs.
* **User code that decides** (a decider rule, an intensity policy, a strategy) and
  raises makes the supervisor exit abnormally with the error: errors propagate.

Cost: every per-event path for one_for_one and simple_one_for_one is O(1) in the
number of children (dicts keyed by id and by ref; strategies see a view, not a copy).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any, Final

import attrs

from otp_py._core import events as ev
from otp_py._core import reload as rl
from otp_py._core import reports as rp
from otp_py._core.decider import DEFAULT as DEFAULT_DECIDER
from otp_py._core.decider import Action, Decider
from otp_py._core.intensity import Budget, RandomSource, ScopedBudget, SharedBudget, Verdict
from otp_py._core.reasons import (
    Abnormal,
    ExitReason,
    FailedToStartChild,
    Ignored,
    Killed,
    Shutdown,
    StartTimeout,
)
from otp_py._core.strategies import OneForOne, RestartPlan, RestartStrategy
from otp_py._core.types import BRUTAL_KILL, AutoShutdown, Restart
from otp_py._errors import (
    AlreadyPresentError,
    AlreadyStartedError,
    ChildNotFoundError,
    ChildRestartingError,
    ChildRunningError,
    MaxChildrenError,
    NotSupportedError,
    SpecError,
    StartChildError,
    SupervisorNotRunningError,
)

__all__ = ["ChildCounts", "ChildInfo", "SupervisorCore"]

HISTORY_LENGTH: Final = 10
"""How many exits each child remembers (its crash history)."""

RECENT_LENGTH: Final = 32
"""How many exits a supervisor remembers across its children, for escalation reports."""

# Child states. "waiting" is a backoff delay; it shows as "restarting", as OTP shows a
# child whose restart failed and will be retried.
RUNNING: Final = "running"
STOPPED: Final = "stopped"
RESTARTING: Final = "restarting"
WAITING: Final = "waiting"
STARTING: Final = "starting"
STOPPING: Final = "stopping"
IGNORED: Final = "ignored"  # shown for a stopped child whose last start declined

_IGNORED: Final = Ignored()  # what _start returns for a start that declined


@attrs.frozen
class ChildInfo:
    """One row of ``which_children``: the child's id, its state (``"running"``,
    ``"restarting"``, ``"stopped"``, or ``"ignored"`` when its last start declined:
    the last two are OTP's ``undefined``), whether it is a supervisor, its spec, and
    how many times it has been restarted."""

    id: str
    state: str
    is_supervisor: bool
    spec: Any = attrs.field(eq=False, repr=False)
    restarts: int = 0
    ref: int | None = attrs.field(default=None, eq=False, repr=False)
    details: Mapping[str, Any] = attrs.field(factory=dict, eq=False)
    """What the runtime knows of the running child (``pid``, ``thread``...)."""

    @property
    def pid(self) -> int | None:
        """The OS process id of a running process or command child."""
        pid = self.details.get("pid")
        return pid if isinstance(pid, int) else None


@attrs.frozen
class ChildCounts:
    """``count_children``: OTP's specs, active, supervisors and workers."""

    specs: int
    active: int
    supervisors: int
    workers: int


class _Child:
    """The core's record of one child (OTP's ``#child{}``)."""

    __slots__ = (
        "history",
        "id",
        "ignored",
        "ref",
        "restarts",
        "spec",
        "started_at",
        "state",
        "timer",
    )

    def __init__(self, child_id: str, spec: Any) -> None:
        self.id = child_id
        self.spec = spec
        self.ref: int | None = None
        self.state = STOPPED
        self.started_at: float | None = None
        self.timer: int | None = None  # a pending backoff restart
        self.restarts = 0
        self.history: deque[rp.ExitRecord] | None = None
        self.ignored = False  # its last start declined (OTP's ignore)

    @property
    def restart(self) -> Restart:
        r: Restart = self.spec.restart
        return r

    def remember(self, record: rp.ExitRecord) -> None:
        if self.history is None:
            self.history = deque(maxlen=HISTORY_LENGTH)
        self.history.append(record)


class _Siblings:
    """The strategy's read-only view of the children (see ``strategies.Siblings``)."""

    __slots__ = ("_children",)

    def __init__(self, children: dict[str, _Child]) -> None:
        self._children = children

    def __iter__(self) -> Iterator[str]:
        return iter(self._children)

    def __reversed__(self) -> Iterator[str]:
        return reversed(self._children)

    def __len__(self) -> int:
        return len(self._children)

    def __contains__(self, child_id: object) -> bool:
        return child_id in self._children

    def after(self, child_id: str) -> Iterator[str]:
        found = False
        for cid in self._children:
            if found:
                yield cid
            elif cid == child_id:
                found = True

    def restart_type(self, child_id: str) -> Restart:
        return self._children[child_id].restart

    def is_running(self, child_id: str) -> bool:
        return self._children[child_id].state == RUNNING


# What a job waits for.
@attrs.define(slots=True)
class _AwaitStart:
    ref: int
    timer: int | None
    deadline: float = math.inf  # when the timer fires (moved by ChildStartExtended)


@attrs.define(slots=True)
class _AwaitDown:
    refs: frozenset[int]
    timer: int | None


@attrs.define(slots=True)
class _Retry(ev.Event):
    """Internal: retry a failed restart (OTP's ``try_again_restart`` cast)."""

    child_id: str


@attrs.define(slots=True)
class _Ended(ev.Event):
    """Internal: a hung child has been stopped; decide about it as an exit."""

    child_id: str
    reason: ExitReason


Job = Generator[_AwaitStart | _AwaitDown, Any, None]


class SupervisorCore:
    """The decision core of one supervisor.

    ``spec`` is a :class:`~otp_py.SupervisorSpec`. ``path`` names the supervisor in
    reports (``("root", "pool")``). ``random`` is the jitter source handed to the
    intensity policy; ``shared_budgets`` is the tree's registry of
    :class:`~otp_py.SharedBudget` bookkeeping (one dict per tree). The core is driven
    only through :meth:`handle`.
    """

    def __init__(
        self,
        spec: Any,
        *,
        path: tuple[str, ...] = (),
        random: RandomSource | None = None,
        shared_budgets: dict[str, Any] | None = None,
    ) -> None:
        self.spec = spec
        self.path = path or (spec.id,)
        self._strategy: RestartStrategy = spec.strategy
        self._dynamic: bool = spec.strategy.dynamic
        # Only the failed child is touched: the plan needs neither asking nor checking.
        self._simple = self._dynamic or type(spec.strategy) is OneForOne
        self._template: Any = spec.children[0] if self._dynamic else None
        jitter = random if random is not None else _no_jitter
        self._jitter = jitter
        intensity = spec.intensity
        self._shared: tuple[dict[str, Any], str] | None = None
        if isinstance(intensity, SharedBudget) and shared_budgets is not None:
            # One bookkeeping per name while any supervisor using it runs; when the
            # last one exits (its scope gave up), a restarted scope starts afresh, as
            # a restarted OTP supervisor does.
            entry = shared_budgets.get(intensity.name)
            if entry is None:
                entry = shared_budgets[intensity.name] = [intensity.policy.budget(jitter), 0]
            entry[1] += 1
            self._shared = (shared_budgets, intensity.name)
            self._budget: Budget = ScopedBudget(entry[0], self.where + "/")
        else:
            self._budget = intensity.budget(jitter)
        self._decider: Decider = getattr(spec, "decider", None) or DEFAULT_DECIDER
        self._auto: AutoShutdown = spec.auto_shutdown
        self._children: dict[str, _Child] = {}
        self._siblings = _Siblings(self._children)
        self._by_ref: dict[int, _Child] = {}
        self._refs = itertools.count(1)
        self._tokens = itertools.count(1)
        self._last_dynamic_id = 0
        self._delayed: dict[int, tuple[str, ...]] = {}  # backoff token -> ids to start
        self._outbox: list[ev.Action] = []
        self._job: Job | None = None
        self._wait: _AwaitStart | _AwaitDown | None = None
        self._deferred: deque[ev.Event] = deque()
        self._pending_downs: dict[int, ev.ChildDown] = {}
        self._recent: deque[tuple[str, rp.ExitRecord]] = deque(maxlen=RECENT_LENGTH)
        # The exits that charged the restart budget: what an escalation report shows.
        self._charged: deque[tuple[str, rp.ExitRecord]] = deque(maxlen=RECENT_LENGTH)
        self._now = 0.0
        self.state = "new"  # new, starting, running, stopping, exited
        self.exit_reason: ExitReason | None = None
        self._force = False

    # ------------------------------------------------------------------ driving

    def handle(self, event: ev.Event, now: float) -> list[ev.Action]:
        """Feed one event at time ``now``; return the actions to execute, in order."""
        self._now = now
        if self.state == "exited":
            self._after_exit(event)
        elif isinstance(event, ev.ForceKill):
            self._force_kill()
        elif isinstance(event, ev.ChildStartExtended):
            self._extend_start(event)
        elif self._job is not None:
            if self._accepts(event):
                self._advance(event)
            else:
                self._defer(event)
        else:
            self._process(event)
        if self._deferred:
            self._drain()
        out, self._outbox = self._outbox, []
        return out

    def _accepts(self, event: ev.Event) -> bool:
        wait = self._wait
        if isinstance(wait, _AwaitStart):
            if isinstance(event, ev.ChildUp | ev.ChildStartFailed | ev.ChildIgnored):
                return event.ref == wait.ref
            return isinstance(event, ev.TimerFired) and event.token == wait.timer
        if isinstance(wait, _AwaitDown):
            if isinstance(event, ev.ChildDown):
                return event.ref in wait.refs
            return isinstance(event, ev.TimerFired) and event.token == wait.timer
        return False

    def _extend_start(self, event: ev.ChildStartExtended) -> None:
        """Move the start timeout of the child starting as ``event.ref`` to no
        sooner than ``event.seconds`` from now (a later deadline only)."""
        wait = self._wait
        if not (isinstance(wait, _AwaitStart) and wait.ref == event.ref
                and wait.timer is not None):
            return  # not starting (any more), or no timeout to move
        seconds = event.seconds
        if not (isinstance(seconds, int | float) and math.isfinite(seconds)):
            return
        deadline = self._now + seconds
        if deadline <= wait.deadline:
            return
        self._outbox.append(ev.CancelTimer(wait.timer))
        wait.timer = self._new_timer(seconds)
        wait.deadline = deadline

    def _defer(self, event: ev.Event) -> None:
        if isinstance(event, ev.ChildDown):
            self._pending_downs[event.ref] = event
        self._deferred.append(event)

    def _drain(self) -> None:
        while self._job is None and self._deferred and self.state != "exited":
            event = self._deferred.popleft()
            taken = (
                isinstance(event, ev.ChildDown)
                and self._pending_downs.pop(event.ref, None) is None
            )
            if not taken:  # else a job already took this exit
                self._process(event)

    def _start_job(self, job: Job) -> None:
        self._job = job
        self._advance(None)

    def _advance(self, value: Any) -> None:
        assert self._job is not None
        try:
            self._wait = self._job.send(value)
        except StopIteration:
            self._job = None
            self._wait = None

    def _emit(self, report_type: type[rp.Report], **fields: Any) -> None:
        self._outbox.append(ev.Emit(report_type(path=self.path, time=self._now, **fields)))

    def _new_timer(self, delay: float) -> int:
        token = next(self._tokens)
        self._outbox.append(ev.SetTimer(token, delay))
        return token

    # ---------------------------------------------------------------- dispatch

    def _process(self, event: ev.Event) -> None:
        if isinstance(event, ev.ChildDown):
            child = self._by_ref.get(event.ref)
            if child is not None:  # else a late exit of a child already replaced
                self._child_ended(child, event.reason, event.stderr)
        elif isinstance(event, ev.ChildHung):
            self._on_hung(event)
        elif isinstance(event, _Ended):
            ended = self._children.get(event.child_id)
            if ended is not None and ended.ref is None:
                self._child_ended(ended, event.reason)
        elif isinstance(event, ev.Call):
            self._on_call(event)
        elif isinstance(event, ev.TimerFired):
            self._on_timer(event.token)
        elif isinstance(event, _Retry):
            self._on_retry(event.child_id)
        elif isinstance(event, ev.Stop):
            self._begin_shutdown(event.reason)
        elif isinstance(event, ev.Init) and self.state == "new":
            self.state = "starting"
            self._start_job(self._init_job())
        # ChildUp / ChildStartFailed for a ref nobody waits for: a start that was
        # abandoned (start timeout); the runtime was already told to kill it.

    def _after_exit(self, event: ev.Event) -> None:
        if isinstance(event, ev.Call):
            self._outbox.append(
                ev.Reply(
                    event.request_id,
                    error=SupervisorNotRunningError(f"supervisor {self.where!r} has exited"),
                )
            )

    @property
    def where(self) -> str:
        return "/".join(self.path)

    # -------------------------------------------------------------------- init

    def _init_job(self) -> Job:
        self._emit(rp.SupervisorStarting, strategy=self._strategy.name)
        if not self._dynamic:
            for spec in self.spec.children:
                self._children[spec.id] = _Child(spec.id, spec)
            for child in list(self._children.values()):
                reason = yield from self._start(child)
                if reason is _IGNORED:
                    self._ignored(child)
                elif reason is not None:
                    if child.restart is Restart.TEMPORARY:
                        self._remove(child)
                    yield from self._terminate_all()
                    self._finish(Shutdown(FailedToStartChild(child.id, reason)))
                    return
        self.state = "running"
        self._emit(rp.SupervisorStarted)
        self._outbox.append(ev.Initialized())

    # ----------------------------------------------------- starting and stopping

    def _start(self, child: _Child) -> Generator[Any, Any, ExitReason | None]:
        """Start ``child`` and wait until it is up. Returns None, or why it failed,
        or ``_IGNORED`` if it declined (the caller keeps or forgets it: see
        :meth:`_ignored`)."""
        ref = next(self._refs)
        child.ignored = False
        child.ref = ref
        child.state = STARTING
        self._by_ref[ref] = child
        spec = child.spec
        self._outbox.append(ev.StartChild(ref, child.id, spec))
        timer = None
        timeout = getattr(spec, "start_timeout", None)
        waits = getattr(spec, "ready", False) or getattr(spec, "readiness", None) is not None
        if waits and timeout is not None and math.isfinite(timeout):
            timer = self._new_timer(timeout)
        if self._force:
            self._outbox.append(ev.KillChild(ref, child.id))
        deadline = self._now + float(timeout) if timer is not None else math.inf  # type: ignore[arg-type]
        waiting = _AwaitStart(ref, timer, deadline)
        event = yield waiting
        timer = waiting.timer  # (a ChildStartExtended may have replaced it)
        if isinstance(event, ev.ChildUp):
            if timer is not None:
                self._outbox.append(ev.CancelTimer(timer))
            if child.started_at is not None:
                child.restarts += 1
            child.state = RUNNING
            now = child.started_at = self._now
            try:
                self._budget.on_started(child.id, now)
            except Exception as exc:  # the child runs; the supervisor cannot go on
                self._deferred.appendleft(ev.Stop(Abnormal(
                    f"intensity policy {self.spec.intensity!r} raised {exc!r} on the start "
                    f"of {child.id!r}")))
            self._outbox.append(ev.Emit(rp.ChildStarted(
                self.path, now, child.id, spec.is_supervisor, child.restarts, spec.backend
            )))
            return None
        del self._by_ref[ref]
        child.ref = None
        child.state = STOPPED
        if isinstance(event, ev.ChildIgnored):
            if timer is not None:
                self._outbox.append(ev.CancelTimer(timer))
            child.ignored = True
            self._emit(rp.ChildIgnored, child_id=child.id, is_supervisor=spec.is_supervisor,
                       kept=not self._forgets_ignored(child))
            return _IGNORED
        if isinstance(event, ev.ChildStartFailed):
            if timer is not None:
                self._outbox.append(ev.CancelTimer(timer))
            reason = event.reason
        else:  # the start timeout fired: abandon the attempt
            self._outbox.append(ev.KillChild(ref, child.id))
            reason = StartTimeout(float(timeout))  # type: ignore[arg-type]
        self._emit(
            rp.ChildStartFailed,
            child_id=child.id,
            reason=reason,
            is_supervisor=spec.is_supervisor,
            backend=spec.backend,
        )
        return reason

    def _forgets_ignored(self, child: _Child) -> bool:
        """OTP keeps a child whose start said ignore (with no pid), except a temporary
        one and a dynamic one (simple_one_for_one stores only children with a pid)."""
        return self._dynamic or child.restart is Restart.TEMPORARY

    def _ignored(self, child: _Child) -> None:
        """``child``'s start (at init, in a restart) declined: forget it, or keep it
        not running."""
        if self._forgets_ignored(child):
            self._remove(child)

    def _terminate(
        self, child: _Child, *, report: bool = True
    ) -> Generator[Any, Any, ExitReason | None]:
        """Stop ``child`` if it runs, and wait until it has ended (OTP's shutdown/2).

        Returns the reason if the child had already ended by itself (its exit was
        waiting in the queue and is taken here, as OTP's ``unlink_flush``)."""
        if child.timer is not None:
            self._cancel_backoff(child)
        ref = child.ref
        if ref is None:
            return None
        pending = self._pending_downs.pop(ref, None)
        if pending is not None:
            if report:
                self._report_pending_down(child, pending.reason)
            self._forget_ref(child)
            return pending.reason
        child.state = STOPPING
        shutdown = child.spec.shutdown
        timer = None
        if shutdown is BRUTAL_KILL or self._force:
            self._outbox.append(ev.KillChild(ref, child.id))
        else:
            self._outbox.append(ev.StopChild(ref, child.id, shutdown))
            if math.isfinite(shutdown):
                timer = self._new_timer(shutdown)
        event = yield _AwaitDown(frozenset((ref,)), timer)
        if isinstance(event, ev.TimerFired):
            self._outbox.append(ev.KillChild(ref, child.id))
            event = yield _AwaitDown(frozenset((ref,)), None)
        elif timer is not None:
            self._outbox.append(ev.CancelTimer(timer))
        self._forget_ref(child)
        if report:
            self._emit(
                rp.ChildTerminated,
                child_id=child.id,
                reason=event.reason,
                is_supervisor=child.spec.is_supervisor,
            )
        return None

    def _terminate_all(self) -> Generator[Any, Any, None]:
        """Stop every child in reverse start order (all at once if dynamic)."""
        if self._dynamic:
            yield from self._terminate_dynamic()
            return
        for child in list(reversed(self._children.values())):
            yield from self._terminate(child)
            if child.restart is Restart.TEMPORARY:
                self._remove(child)

    def _terminate_dynamic(self) -> Generator[Any, Any, None]:
        waiting: dict[int, _Child] = {}
        for child in list(self._children.values()):
            if child.timer is not None:
                self._cancel_backoff(child)
            ref = child.ref
            if ref is None:
                continue
            pending = self._pending_downs.pop(ref, None)
            if pending is not None:
                self._report_pending_down(child, pending.reason)
                self._forget_ref(child)
                continue
            child.state = STOPPING
            waiting[ref] = child
        if not waiting:
            return
        shutdown = self._template.shutdown
        brutal = shutdown is BRUTAL_KILL or self._force
        for ref, child in waiting.items():
            if brutal:
                self._outbox.append(ev.KillChild(ref, child.id))
            else:
                self._outbox.append(ev.StopChild(ref, child.id, shutdown))
        timer = None
        if not brutal and math.isfinite(shutdown):
            timer = self._new_timer(shutdown)
        while waiting:
            event = yield _AwaitDown(frozenset(waiting), timer)
            if isinstance(event, ev.TimerFired):
                timer = None
                for ref, child in waiting.items():
                    self._outbox.append(ev.KillChild(ref, child.id))
                continue
            child = waiting.pop(event.ref)
            self._forget_ref(child)
            self._emit(
                rp.ChildTerminated,
                child_id=child.id,
                reason=event.reason,
                is_supervisor=child.spec.is_supervisor,
            )
        if timer is not None:
            self._outbox.append(ev.CancelTimer(timer))

    def _report_pending_down(self, child: _Child, reason: ExitReason) -> None:
        """Report a child that ended before its stop was reached: an exit of its own,
        unless a forced kill (which kills every child at once) ended it, when its
        supervisor terminated it as surely as if its turn had come first."""
        if self._force:
            self._emit(rp.ChildTerminated, child_id=child.id, reason=reason,
                       is_supervisor=child.spec.is_supervisor)
        else:
            self._record_exit(child, reason, outcome="")

    def _forget_ref(self, child: _Child) -> None:
        if child.ref is not None:
            self._by_ref.pop(child.ref, None)
            child.ref = None
        child.state = STOPPED

    def _remove(self, child: _Child) -> None:
        if child.timer is not None:
            self._cancel_backoff(child)
        self._children.pop(child.id, None)
        try:
            self._budget.forget(child.id)
        except Exception as exc:
            self._deferred.appendleft(ev.Stop(Abnormal(
                f"intensity policy {self.spec.intensity!r} raised {exc!r} forgetting "
                f"{child.id!r}")))

    def _cancel_backoff(self, child: _Child) -> None:
        """Cancel the delayed restart ``child`` waits for, and its group's."""
        assert child.timer is not None
        self._outbox.append(ev.CancelTimer(child.timer))
        for cid in self._delayed.pop(child.timer, ()):
            member = self._children.get(cid)
            if member is not None and member.state == WAITING:
                member.state = STOPPED
        child.timer = None

    def _record_exit(
        self,
        child: _Child,
        reason: ExitReason,
        outcome: str,
        delay: float | None = None,
        stderr: str | None = None,
    ) -> rp.ExitRecord:
        uptime = None if child.started_at is None else self._now - child.started_at
        record = rp.ExitRecord(
            time=self._now, reason=reason, uptime=uptime, delay=delay or None, stderr=stderr
        )
        child.remember(record)
        self._recent.append((child.id, record))
        self._outbox.append(ev.Emit(rp.ChildExited(
            self.path, self._now, child.id, reason, outcome, uptime, child.spec.is_supervisor
        )))
        return record

    # --------------------------------------------------------------- child exits

    def _on_hung(self, event: ev.ChildHung) -> None:
        child = self._by_ref.get(event.ref)
        if child is not None and child.state == RUNNING and self.state == "running":
            self._start_job(self._hung_job(child, event.reason))

    def _hung_job(self, child: _Child, reason: ExitReason) -> Job:
        ended_by_itself = yield from self._terminate(child, report=False)
        self._deferred.appendleft(_Ended(child.id, ended_by_itself or reason))

    def _child_ended(
        self, child: _Child, reason: ExitReason, stderr: str | None = None
    ) -> None:
        """OTP's do_restart/3: a child ended by itself. Its decider (by default, OTP's
        restart table) says what to do; a restart also asks the intensity budget."""
        if self.state != "running":
            removed = child.restart is Restart.TEMPORARY or self._dynamic
            self._record_exit(child, reason, "remove" if removed else "keep", stderr=stderr)
            self._forget_ref(child)
            return
        # A nested supervisor's own decider is for *its* children; it is judged by ours.
        spec = child.spec
        own = None if spec.is_supervisor else getattr(spec, "decider", None)
        decider: Decider = own or self._decider
        try:
            decision = decider.decide(child.restart, reason)
        except Exception as exc:
            self._user_code_failed(child, reason, stderr, f"failure decider {decider!r}", exc)
            return
        action = decision.action
        if action in (Action.RESTART, Action.IGNORE):
            if action is Action.IGNORE:
                verdict = Verdict.now()
            else:
                try:
                    verdict = self._budget.on_failure(child.id, self._now)
                except Exception as exc:
                    self._user_code_failed(
                        child, reason, stderr, f"intensity policy {self.spec.intensity!r}", exc)
                    return
            if verdict.allow and decision.delay is not None:
                verdict = Verdict.after(decision.delay)
            if not verdict.allow:
                outcome = "give_up"
            else:
                outcome = "restart" if action is Action.RESTART else "ignore"
            record = self._record_exit(child, reason, outcome, verdict.delay, stderr)
            if action is Action.RESTART:
                self._charged.append((child.id, record))
            self._forget_ref(child)
            self._restart(child, verdict, record)
            return
        if action is Action.STOP:
            removed = child.restart is Restart.TEMPORARY or self._dynamic
            self._record_exit(child, reason, "remove" if removed else "keep", stderr=stderr)
            self._forget_ref(child)
            if removed:
                self._remove(child)
            self._check_auto_shutdown(child)
            return
        self._record_exit(child, reason, action.value, stderr=stderr)
        self._forget_ref(child)
        if action is Action.SHUTDOWN_TREE:
            if child.restart is Restart.TEMPORARY or self._dynamic:
                self._remove(child)
            self._outbox.append(ev.StopTree())
            return
        self._give_up(child, f"{reason} escalated by the failure decider")

    def _check_auto_shutdown(self, child: _Child) -> None:
        if self._auto is AutoShutdown.NEVER or not child.spec.significant:
            return
        if self._auto is AutoShutdown.ALL_SIGNIFICANT:
            if self._dynamic:
                if self._children:
                    return
            elif any(
                c.spec.significant and c.state != STOPPED for c in self._children.values()
            ):
                return
        self._begin_shutdown(Shutdown())

    def _user_code_failed(
        self, child: _Child, reason: ExitReason, stderr: str | None, what: str, exc: Exception
    ) -> None:
        """User code asked to decide about an exit (a decider rule, an intensity
        policy) raised: the supervisor cannot decide, so it exits, abnormally, with
        the error as its reason. Errors always propagate; nothing is only logged."""
        self._record_exit(child, reason, "", stderr=stderr)
        self._forget_ref(child)
        self._begin_shutdown(Abnormal(f"{what} raised {exc!r} deciding about {child.id!r}"))

    def _restart(
        self, child: _Child, verdict: Verdict | None = None, record: rp.ExitRecord | None = None
    ) -> None:
        """OTP's restart/2: count the restart (unless ``verdict`` was already given),
        then run the strategy's plan."""
        if verdict is None:
            try:
                verdict = self._budget.on_failure(child.id, self._now)
            except Exception as exc:
                self._begin_shutdown(Abnormal(
                    f"intensity policy {self.spec.intensity!r} raised {exc!r} deciding about "
                    f"{child.id!r}"))
                return
        if not verdict.allow:
            self._give_up(child, verdict.why)
            return
        if self._simple and verdict.delay <= 0:
            self._start_job(self._start_one(child))
            return
        try:
            plan = self._plan(child.id)
        except Exception as exc:  # a bug in a user strategy: exit, do not hide it
            self._begin_shutdown(Abnormal(f"restart strategy {self._strategy!r} failed: {exc!r}"))
            return
        if verdict.delay > 0:
            self._emit(rp.RestartScheduled, child_id=child.id, delay=verdict.delay)
            self._start_job(self._restart_job(child.id, plan, verdict.delay))
        elif plan.stop:
            self._start_job(self._restart_job(child.id, plan, 0.0))
        else:
            self._start_job(self._start_plan(plan.start))

    def _give_up(self, child: _Child, why: str) -> None:
        """Stop every child and exit with ``shutdown``: the parent sees a child exit."""
        self._emit(
            rp.IntensityExceeded,
            child_id=child.id,
            why=why,
            history=tuple(self._charged) or tuple(self._recent),
        )
        child.state = STOPPED
        self._begin_shutdown(Shutdown())

    def _plan(self, failed: str) -> RestartPlan:
        if self._simple:
            return RestartPlan(stop=(), start=(failed,))
        plan = self._strategy.plan(failed, self._siblings)
        if not isinstance(plan, RestartPlan):
            raise TypeError(f"plan() must return a RestartPlan, not {plan!r}")
        for cid in (*plan.stop, *plan.start):
            if cid not in self._children:
                raise LookupError(f"plan names {cid!r}, which is not a child")
        return plan

    def _restart_job(self, failed: str, plan: RestartPlan, delay: float) -> Job:
        for cid in plan.stop:
            child = self._children.get(cid)
            if child is None:
                continue
            yield from self._terminate(child)
            if child.restart is Restart.TEMPORARY:
                self._remove(child)
        if delay > 0:
            # Backoff: the siblings are stopped now; the starts wait for the timer.
            token = self._new_timer(delay)
            group = []
            for cid in plan.start:
                child = self._children.get(cid)
                if child is not None and child.state in (STOPPED, RESTARTING):
                    child.state = WAITING
                    group.append(cid)
            self._delayed[token] = tuple(group)
            failed_child = self._children.get(failed)
            if failed_child is not None:
                failed_child.timer = token
            return
        yield from self._start_plan(plan.start)

    def _start_one(self, child: _Child) -> Job:
        """The plan of one_for_one and simple_one_for_one: start just this child."""
        reason = yield from self._start(child)
        if reason is _IGNORED:
            self._ignored(child)  # not running; no retry (OTP: set_pid(undefined))
        elif reason is not None:
            child.state = RESTARTING
            self._deferred.append(_Retry(child.id))

    def _start_plan(self, ids: tuple[str, ...]) -> Job:
        for index, cid in enumerate(ids):
            child = self._children.get(cid)
            if child is None or child.state not in (STOPPED, WAITING, RESTARTING):
                continue
            reason = yield from self._start(child)
            if reason is _IGNORED:
                self._ignored(child)  # as OTP's start_children: the rest still start
            elif reason is not None:
                # As OTP: this child retries later; the rest of the plan stays stopped.
                child.state = RESTARTING
                for rest in ids[index + 1 :]:
                    other = self._children.get(rest)
                    if other is not None and other.state == WAITING:
                        other.state = STOPPED
                self._deferred.append(_Retry(cid))
                return

    def _on_retry(self, child_id: str) -> None:
        child = self._children.get(child_id)
        if child is not None and child.state == RESTARTING and self.state == "running":
            self._restart(child)

    def _on_timer(self, token: int) -> None:
        ids = self._delayed.pop(token, None)
        if ids is None or self.state != "running":
            return
        try:
            hold = float(self._budget.held(self._now))
        except Exception as exc:  # a bug in a user budget: exit, do not hide it
            self._begin_shutdown(Abnormal(
                f"intensity policy {self.spec.intensity!r} raised {exc!r} in held()"))
            return
        if 0 < hold < math.inf:  # the pause was extended since (suture): wait again
            again = self._new_timer(hold)
            self._delayed[again] = ids
            for cid in ids:
                child = self._children.get(cid)
                if child is not None and child.timer == token:
                    child.timer = again
            return
        for cid in ids:
            child = self._children.get(cid)
            if child is not None and child.timer == token:
                child.timer = None
        self._start_job(self._start_plan(ids))

    # --------------------------------------------------------------- shutdown

    def _begin_shutdown(self, reason: ExitReason) -> None:
        if self.state in ("stopping", "exited"):
            return
        self.state = "stopping"
        self._start_job(self._shutdown_job(reason))

    def _shutdown_job(self, reason: ExitReason) -> Job:
        yield from self._terminate_all()
        self._finish(reason)

    def _finish(self, reason: ExitReason) -> None:
        self.state = "exited"
        self.exit_reason = reason
        if self._shared is not None:
            registry, name = self._shared
            entry = registry.get(name)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del registry[name]
            self._shared = None
        for token in list(self._delayed):
            self._outbox.append(ev.CancelTimer(token))
        self._delayed.clear()
        self._emit(rp.SupervisorExited, reason=reason)
        self._outbox.append(ev.Exit(reason))
        # Calls that were waiting behind the last job are answered: it has exited.
        for event in self._deferred:
            self._after_exit(event)
        self._deferred.clear()
        self._pending_downs.clear()

    def _force_kill(self) -> None:
        """Kill every child at once, then stop (a second Ctrl-C)."""
        self._force = True
        for ref, child in list(self._by_ref.items()):
            self._outbox.append(ev.KillChild(ref, child.id))
        if self.state in ("new", "stopping"):
            if self.state == "new":
                self._finish(Killed())
            return
        stop = ev.Stop(Shutdown())
        if self._job is None:
            self._process(stop)
        else:
            self._deferred.appendleft(stop)

    # ------------------------------------------------------------------- API

    def _on_call(self, call: ev.Call) -> None:
        request = call.request
        handler = self._handlers.get(type(request))
        if handler is None:
            self._reply(call, error=TypeError(f"unknown request {request!r}"))
            return
        result = handler(self, call, request)
        if isinstance(result, Generator):
            self._start_job(result)

    def _reply(self, call: ev.Call, value: Any = None, error: BaseException | None = None) -> None:
        self._outbox.append(ev.Reply(call.request_id, value, error))

    def _which_children(self, call: ev.Call, request: ev.WhichChildren) -> None:
        self._reply(call, [self._info(c) for c in self._children.values()])

    def _count_children(self, call: ev.Call, request: ev.CountChildren) -> None:
        specs = active = supervisors = workers = 0
        if self._dynamic:
            size = len(self._children)
            active = sum(1 for c in self._children.values() if c.state == RUNNING)
            specs = 1
            if self._template.is_supervisor:
                supervisors = size
            else:
                workers = size
        else:
            for child in self._children.values():
                specs += 1
                active += child.state == RUNNING
                if child.spec.is_supervisor:
                    supervisors += 1
                else:
                    workers += 1
        self._reply(call, ChildCounts(specs, active, supervisors, workers))

    def _get_childspec(self, call: ev.Call, request: ev.GetChildSpec) -> None:
        child = self._children.get(request.child_id)
        if child is None and self._dynamic and request.child_id == self._template.id:
            self._reply(call, self._template)  # OTP: a simple_one_for_one's one spec
        elif child is None:
            self._reply(call, error=self._not_found(request.child_id))
        else:
            self._reply(call, child.spec)

    def _get_child_info(self, call: ev.Call, request: ev.GetChildInfo) -> None:
        child = self._children.get(request.child_id)
        if child is None:
            self._reply(call, error=self._not_found(request.child_id))
        else:
            self._reply(call, self._info(child))

    def _get_child_history(self, call: ev.Call, request: ev.GetChildHistory) -> None:
        child = self._children.get(request.child_id)
        if child is None:
            self._reply(call, error=self._not_found(request.child_id))
        else:
            self._reply(call, tuple(child.history or ()))

    def _start_child(self, call: ev.Call, request: ev.StartChildRequest) -> Job | None:
        if self._dynamic and request.spec is not None:
            self._reply(call, error=TypeError(
                f"supervisor {self.where!r} is simple_one_for_one: it starts children from "
                "its template; give start_child the extra args, not a spec"))
            return None
        if not self._dynamic and request.extra_args:
            self._reply(call, error=TypeError(
                f"supervisor {self.where!r} is not simple_one_for_one: give start_child a "
                "ChildSpec or SupervisorSpec, not args"))
            return None
        if self._dynamic:
            limit = getattr(self.spec, "max_children", None)
            if limit is not None and len(self._children) >= limit:
                self._reply(call, error=MaxChildrenError(self.path, limit, (
                    f"supervisor {self.where!r} already has {len(self._children)} of its "
                    f"max_children={limit} children; start_child refused")))
                return None
            try:
                spec = self._template.with_extra_args(tuple(request.extra_args))
                if request.name is not None:
                    spec = attrs.evolve(spec, name=request.name)
            except SpecError as exc:
                self._reply(call, error=exc)
                return None
            self._last_dynamic_id += 1
            child_id = f"{self._template.id}#{self._last_dynamic_id}"
            return self._start_child_job(call, _Child(child_id, spec))
        spec = request.spec
        if not getattr(spec, "id", None) or not hasattr(spec, "is_supervisor"):
            self._reply(call, error=TypeError(f"start_child needs a ChildSpec or SupervisorSpec; "
                                              f"got {spec!r}"))
            return None
        if spec.significant and self._auto is AutoShutdown.NEVER:
            self._reply(call, error=SpecError(spec.id, "significant", "significant=True needs "
                                              f"auto_shutdown other than 'never' on supervisor "
                                              f"{self.where!r}", kind="bad_combination",
                                              value=(("auto_shutdown", self._auto),
                                                     ("significant", True))))
            return None
        existing = self._children.get(spec.id)
        if existing is not None:
            # OTP: already_started only for a child with a pid; one with none
            # (terminated, ignored) or restarting (a failed restart queued) is present.
            if existing.state != RUNNING:
                self._reply(call, error=AlreadyPresentError(
                    f"child {spec.id!r} is already present ({self._info(existing).state}, "
                    f"not running) under {self.where!r}"))
            else:
                self._reply(call, error=AlreadyStartedError(
                    f"child {spec.id!r} is already started under {self.where!r}"))
            return None
        return self._start_child_job(call, _Child(spec.id, spec))

    def _start_child_job(self, call: ev.Call, child: _Child) -> Job:
        reason = yield from self._start(child)
        if reason is _IGNORED:
            # OTP's {ok, undefined}: kept with no process, unless forgotten
            if not self._forgets_ignored(child):
                self._children[child.id] = child
            self._reply(call, None)
        elif reason is None:
            self._children[child.id] = child
            self._reply(call, child.id)
        else:
            self._reply(call, error=StartChildError(child.id, reason))

    def _terminate_child(self, call: ev.Call, request: ev.TerminateChild) -> Job | None:
        child = self._children.get(request.child_id)
        if child is None:
            if self._dynamic and request.child_id == self._template.id:
                self._reply(call, error=NotSupportedError(
                    "terminate_child on a simple_one_for_one supervisor takes a child's id, "
                    "not the template's"))
            elif self._dynamic and self._was_dynamic_child(request.child_id):
                self._reply(call)  # it has already ended: OTP answers ok for a dead pid
            else:
                self._reply(call, error=self._not_found(request.child_id))
            return None
        return self._terminate_child_job(call, child)

    def _terminate_child_job(self, call: ev.Call, child: _Child) -> Job:
        yield from self._terminate(child)
        if child.restart is Restart.TEMPORARY or self._dynamic:
            self._remove(child)
        else:
            child.state = STOPPED
        self._reply(call)

    def _restart_child(self, call: ev.Call, request: ev.RestartChild) -> Job | None:
        child = self._lookup_static(call, request.child_id, "restart_child")
        if child is None:
            return None
        return self._restart_child_job(call, child)

    def _restart_child_job(self, call: ev.Call, child: _Child) -> Job:
        reason = yield from self._start(child)
        if reason is _IGNORED:
            self._ignored(child)
            self._reply(call, None)  # OTP's {ok, undefined}: it stays not running
        elif reason is None:
            self._reply(call, child.id)
        else:
            self._reply(call, error=StartChildError(child.id, reason))

    def _delete_child(self, call: ev.Call, request: ev.DeleteChild) -> None:
        child = self._lookup_static(call, request.child_id, "delete_child")
        if child is not None:
            self._remove(child)
            self._reply(call)

    def _lookup_static(self, call: ev.Call, child_id: str, what: str) -> _Child | None:
        """The stopped child ``child_id``, or None after replying with the error."""
        if self._dynamic:
            self._reply(call, error=NotSupportedError(
                f"{what} is not supported by simple_one_for_one supervisor {self.where!r}"))
            return None
        child = self._children.get(child_id)
        if child is None:
            self._reply(call, error=self._not_found(child_id))
            return None
        if child.state in (RESTARTING, WAITING):
            self._reply(call, error=ChildRestartingError(
                f"child {child_id!r} under {self.where!r} is restarting"))
            return None
        if child.state != STOPPED:
            self._reply(call, error=ChildRunningError(
                f"child {child_id!r} under {self.where!r} is running"))
            return None
        return child

    def _was_dynamic_child(self, child_id: str) -> bool:
        prefix = f"{self._template.id}#"
        if not child_id.startswith(prefix):
            return False
        number = child_id[len(prefix):]
        return number.isdigit() and 0 < int(number) <= self._last_dynamic_id

    def _not_found(self, child_id: str) -> ChildNotFoundError:
        return ChildNotFoundError(f"no child {child_id!r} under supervisor {self.where!r}")

    def _info(self, child: _Child) -> ChildInfo:
        state = RESTARTING if child.state == WAITING else child.state
        if state == STOPPED and child.ignored:
            state = IGNORED
        return ChildInfo(
            child.id, state, child.spec.is_supervisor, child.spec, child.restarts, child.ref
        )

    # ------------------------------------------------------------------ reload

    def _reload(self, call: ev.Call, request: rl.Reload) -> Job | None:
        """Become ``request.spec`` (see :mod:`otp_py._core.reload`): the flags at once,
        then the children, as a job; answer with the ids of the nested supervisors
        kept whose specs changed (the runtime reloads them next). Nothing is changed
        when the reload is refused."""
        if self.state != "running":
            self._reply(call, error=SupervisorNotRunningError(
                f"supervisor {self.where!r} is {self.state}, not running: it cannot be "
                "reloaded now"))
            return None
        spec = request.spec
        try:
            plan = rl.plan(self.spec, spec, self.path)
            budget = self._budget
            if not rl.same_value(self.spec.intensity, spec.intensity):
                budget = rl.carry_budget(
                    spec.intensity, self._jitter,
                    [(cid, record.time) for cid, record in self._charged],
                    [(c.id, c.started_at) for c in self._children.values()
                     if c.state == RUNNING and c.started_at is not None])
        except Exception as exc:  # refused (SpecError), or a user policy raised
            self._reply(call, error=exc)
            return None
        self.spec = spec
        self._strategy = spec.strategy
        self._simple = self._dynamic or type(spec.strategy) is OneForOne
        if self._dynamic:
            self._template = spec.children[0]  # for the children started from now on
        self._budget = budget
        self._decider = getattr(spec, "decider", None) or DEFAULT_DECIDER
        self._auto = spec.auto_shutdown
        if self._dynamic:
            self._reply(call, ((), ()))
            return None
        return self._reload_job(call, plan)

    def _reload_job(self, call: ev.Call, plan: rl.ReloadPlan) -> Job:
        children = self._children
        specs = {c.id: c for c in self.spec.children}
        gone = set(plan.removed)
        for child in [c for c in reversed(children.values()) if c.id in gone]:
            yield from self._terminate(child)
            self._remove(child)
        failed: list[tuple[str, ExitReason]] = []
        starts = [cid for cid, _ in plan.changed] + list(plan.added)
        for cid in starts:
            old = children.get(cid)
            if old is not None:  # changed; or added, over a child start_child added
                if old.id in plan.added and rl.changed_fields(old.spec, specs[cid]) == ():
                    continue  # start_child added this very child: adopt it
                yield from self._terminate(old)
                self._remove(old)
            child = _Child(cid, specs[cid])
            if old is not None:
                child.history = old.history
            children[cid] = child
            reason = yield from self._start(child)
            if reason is _IGNORED:
                self._ignored(child)  # as at init: kept not running, or forgotten
            elif reason is not None:  # it stays stopped (restart_child tries again)
                failed.append((cid, reason))
                if child.restart is Restart.TEMPORARY:
                    self._remove(child)
        for sub in plan.nested:  # kept: what its parent reads, and what a restart starts
            kept = children.get(sub.path[-1])
            if kept is not None:
                kept.spec = specs[kept.id]
        # The new spec's order becomes the start order; children start_child added
        # that the spec does not declare keep theirs, after the declared ones.
        declared = [children[cid] for cid in plan.order if cid in children]
        extras = [c for cid, c in children.items() if cid not in specs]
        children.clear()
        children.update((c.id, c) for c in (*declared, *extras))
        self._reply(call, (tuple(sub.path[-1] for sub in plan.nested), tuple(failed)))

    _handlers: dict[type[ev.Request], Callable[..., Any]] = {
        ev.WhichChildren: _which_children,
        ev.CountChildren: _count_children,
        ev.GetChildSpec: _get_childspec,
        ev.GetChildHistory: _get_child_history,
        ev.GetChildInfo: _get_child_info,
        ev.StartChildRequest: _start_child,
        ev.TerminateChild: _terminate_child,
        ev.RestartChild: _restart_child,
        ev.DeleteChild: _delete_child,
        rl.Reload: _reload,
    }

    # --------------------------------------------------------------- inspection

    def child_history(self, child_id: str) -> tuple[rp.ExitRecord, ...]:
        """The crash history of a child, oldest first."""
        child = self._children.get(child_id)
        if child is None or child.history is None:
            return ()
        return tuple(child.history)

    def budget_used(self, now: float) -> float | None:
        """How much of the restart budget is used at ``now`` (see
        :meth:`~otp_py.Budget.used_ratio`): 1.0 means the next restart gives up. A
        pure query, for metrics; a policy whose query raises reads as None."""
        try:
            ratio = self._budget.used_ratio(now)
        except Exception:  # a user policy's bug must not break a scrape
            return None
        return None if ratio is None else float(ratio)

    @property
    def busy(self) -> bool:
        """True while a job (a start or stop sequence) is in progress."""
        return self._job is not None


def _no_jitter() -> float:
    return 0.5
