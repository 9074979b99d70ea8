"""What goes into the decision core (events) and what comes out (actions).

The core is driven as ``actions = core.handle(event, now)``. Events tell it what
happened: the runtime started a child, a child ended, a timer fired, someone called
the API. Actions tell the runtime what to do: start or stop a child, set a timer,
answer a call, deliver a report, end the supervisor.

Children are addressed by *refs*: small integers the core assigns to each start
attempt, as Erlang has a new pid for every incarnation. An event about a ref the core
no longer knows (a late exit of a child already replaced) is ignored, as OTP ignores
an ``'EXIT'`` from an unknown pid.

Events and actions are plain slotted classes, not frozen ones: they are messages made
and read once on the hot path of every restart, and frozen attrs classes cost three
times as much to build. Treat them as read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from otp_py._core.reasons import ExitReason, Shutdown

__all__ = [
    "Action",
    "Call",
    "CancelTimer",
    "ChildDown",
    "ChildHung",
    "ChildIgnored",
    "ChildStartExtended",
    "ChildStartFailed",
    "ChildUp",
    "CountChildren",
    "DeleteChild",
    "Emit",
    "Event",
    "Exit",
    "ForceKill",
    "GetChildHistory",
    "GetChildSpec",
    "Init",
    "Initialized",
    "KillChild",
    "Reply",
    "Request",
    "RestartChild",
    "SetTimer",
    "StartChild",
    "StartChildRequest",
    "Stop",
    "StopChild",
    "StopTree",
    "TerminateChild",
    "TimerFired",
    "WhichChildren",
]


# --------------------------------------------------------------------------- events

_SHUTDOWN = Shutdown()


class Event:
    """Base class of the core's inputs."""

    __slots__ = ()


@attrs.define(slots=True)
class Init(Event):
    """Start the supervisor: start its children in order."""


@attrs.define(slots=True)
class ChildUp(Event):
    """The child started as ``ref`` is up (and ready, if it signals readiness)."""

    ref: int


@attrs.define(slots=True)
class ChildStartFailed(Event):
    """The start attempt ``ref`` failed; nothing of it is left running."""

    ref: int
    reason: ExitReason


@attrs.define(slots=True)
class ChildStartExtended(Event):
    """The child starting as ``ref`` asks for more time (systemd's
    ``EXTEND_TIMEOUT_USEC=``): its start timeout now ends no sooner than ``seconds``
    from now (never sooner than it would have). Ignored once it is up."""

    ref: int
    seconds: float


@attrs.define(slots=True)
class ChildIgnored(Event):
    """The start attempt ``ref`` declined to start (OTP's ``ignore``): the child said
    so before it was up, and nothing of it is left running. It is not a failure: the
    child is kept with no process (or forgotten, if temporary or dynamic)."""

    ref: int


@attrs.define(slots=True)
class ChildDown(Event):
    """The child started as ``ref`` has ended (and been reaped) with ``reason``.

    ``stderr`` is the tail of what it wrote to its standard error, when captured."""

    ref: int
    reason: ExitReason
    stderr: str | None = None


@attrs.define(slots=True)
class ChildHung(Event):
    """The child ``ref`` stopped answering its heartbeat. The core stops it (killing
    it after its shutdown timeout) and then treats it as ended with ``reason``."""

    ref: int
    reason: ExitReason


@attrs.define(slots=True)
class TimerFired(Event):
    """A timer set by :class:`SetTimer` has fired."""

    token: int


@attrs.define(slots=True)
class Stop(Event):
    """Stop every child in reverse start order, then exit with ``reason``."""

    reason: ExitReason = _SHUTDOWN


@attrs.define(slots=True)
class ForceKill(Event):
    """Stop now: kill every child at once (a second Ctrl-C) and exit."""


class Request:
    """Base class of API requests carried by :class:`Call`."""

    __slots__ = ()


@attrs.define(slots=True)
class StartChildRequest(Request):
    """``start_child``: a spec for a static supervisor, extra args for a dynamic one
    (and, for a dynamic one, the tree-wide ``name`` its spec is to carry)."""

    spec: Any = None
    extra_args: Sequence[Any] = ()
    name: str | None = None


@attrs.define(slots=True)
class TerminateChild(Request):
    """``terminate_child``: stop a child, keeping its spec (unless temporary or dynamic)."""

    child_id: str


@attrs.define(slots=True)
class RestartChild(Request):
    """``restart_child``: start a stopped child again."""

    child_id: str


@attrs.define(slots=True)
class DeleteChild(Request):
    """``delete_child``: forget a stopped child's spec."""

    child_id: str


@attrs.define(slots=True)
class GetChildSpec(Request):
    """``get_childspec``: a child's spec."""

    child_id: str


@attrs.define(slots=True)
class GetChildInfo(Request):
    """One child's ``which_children`` row (for ``whereis``), without listing all."""

    child_id: str


@attrs.define(slots=True)
class GetChildHistory(Request):
    """A child's crash history: its last exits, oldest first."""

    child_id: str


@attrs.define(slots=True)
class WhichChildren(Request):
    """``which_children``: every child, in start order."""


@attrs.define(slots=True)
class CountChildren(Request):
    """``count_children``: OTP's counts of specs, active children, supervisors and workers."""


@attrs.define(slots=True)
class Call(Event):
    """An API request; answered by a :class:`Reply` with the same ``request_id``."""

    request_id: int
    request: Request


# -------------------------------------------------------------------------- actions


class Action:
    """Base class of the core's outputs."""

    __slots__ = ()


@attrs.define(slots=True)
class StartChild(Action):
    """Start ``spec`` as ``ref``; answer with :class:`ChildUp`, :class:`ChildStartFailed`
    or :class:`ChildIgnored`.

    ``child_id`` names it in reports (for dynamic children, their generated id)."""

    ref: int
    child_id: str
    spec: Any


@attrs.define(slots=True)
class StopChild(Action):
    """Ask ``ref`` to stop gracefully; answer with :class:`ChildDown` when it has ended.

    ``timeout`` is informational (the core sets its own kill timer)."""

    ref: int
    child_id: str
    timeout: float


@attrs.define(slots=True)
class KillChild(Action):
    """Kill ``ref`` (and everything it started) at once. If it is running, answer with
    :class:`ChildDown`; if its start was abandoned, just make sure it is gone."""

    ref: int
    child_id: str


@attrs.define(slots=True)
class SetTimer(Action):
    """Post :class:`TimerFired` with ``token`` after ``delay`` seconds."""

    token: int
    delay: float


@attrs.define(slots=True)
class CancelTimer(Action):
    """Cancel the timer ``token`` (its TimerFired, if already queued, is ignored)."""

    token: int


@attrs.define(slots=True)
class Reply(Action):
    """Answer to :class:`Call` ``request_id``: ``value``, or ``error`` to raise."""

    request_id: int
    value: Any = None
    error: BaseException | None = None


@attrs.define(slots=True)
class Emit(Action):
    """Deliver a report (see :mod:`otp_py.reports`) to listeners and logging."""

    report: Any


@attrs.define(slots=True)
class Initialized(Action):
    """The supervisor finished starting its children; its parent may go on."""


@attrs.define(slots=True)
class StopTree(Action):
    """A child asked for the whole tree to stop (see :class:`otp_py.ShutdownTree`):
    stop the root, in order, as if the user had asked."""


@attrs.define(slots=True)
class Exit(Action):
    """The supervisor has ended with ``reason``; every child of it has ended."""

    reason: ExitReason
