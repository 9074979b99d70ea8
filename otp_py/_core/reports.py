"""Typed reports: every supervision decision, as a value.

These are OTP's progress and crash reports, made objects: the runtime hands each one
to the listeners registered on a tree handle and logs it on the ``otp_py`` logger.
``path`` is the reporting supervisor's place in the tree (``("root", "pool")``),
``time`` the supervisor's clock when it decided.
"""

from __future__ import annotations

from typing import Any

import attrs

from otp_py._core.reasons import ExitReason

__all__ = [
    "ChildExited",
    "ChildIgnored",
    "ChildStartFailed",
    "ChildStarted",
    "ChildTerminated",
    "ChildUnstoppable",
    "ExitRecord",
    "IntensityExceeded",
    "OutputDropped",
    "Report",
    "RestartScheduled",
    "SupervisorExited",
    "SupervisorStarted",
    "SupervisorStarting",
]


@attrs.frozen
class Report:
    """Base class of reports."""

    path: tuple[str, ...]
    time: float

    @property
    def where(self) -> str:
        return "/".join(self.path)

    def describe(self) -> str:
        """One line for logs and the live view."""
        return f"{self.where}: {type(self).__name__}"


@attrs.frozen
class ExitRecord:
    """One entry of a child's crash history."""

    time: float
    reason: ExitReason
    uptime: float | None
    delay: float | None = None
    """The delay chosen before its restart (None: not restarted, or at once)."""
    stderr: str | None = attrs.field(default=None, repr=False)
    """The tail of its standard error (process and command children)."""

    def describe(self) -> str:
        up = f" after {self.uptime:.3g} s up" if self.uptime is not None else ""
        then = f"; restarted after {self.delay:.3g} s" if self.delay else ""
        return f"t={self.time:.3f}: {self.reason}{up}{then}"


@attrs.frozen
class SupervisorStarting(Report):
    """A supervisor begins starting its children."""

    strategy: str = ""

    def describe(self) -> str:
        return f"{self.where}: supervisor starting ({self.strategy})"


@attrs.frozen
class SupervisorStarted(Report):
    """A supervisor started all its children."""

    def describe(self) -> str:
        return f"{self.where}: supervisor started"


@attrs.frozen
class ChildStarted(Report):
    """A child is up (OTP's progress report)."""

    child_id: str = ""
    is_supervisor: bool = False
    restarts: int = 0
    backend: str = ""
    """The spec's backend (``"process"``, ``"command"``, ...; ``"inline"`` or
    ``"process"`` for a nested supervisor), so listeners can label by it."""

    def describe(self) -> str:
        again = f" (restart {self.restarts})" if self.restarts else ""
        return f"{self.where}: started {self.child_id}{again}"


@attrs.frozen
class ChildStartFailed(Report):
    """A start attempt failed (OTP's ``start_error``)."""

    child_id: str = ""
    reason: ExitReason | None = None
    is_supervisor: bool = False
    backend: str = ""
    """The spec's backend, as in :class:`ChildStarted`."""

    def describe(self) -> str:
        return f"{self.where}: {self.child_id} failed to start: {self.reason}"


@attrs.frozen
class ChildIgnored(Report):
    """A start attempt returned OTP's ``ignore`` (the child raised
    :class:`otp_py.Ignore` before it was up). ``kept``: the child stays, with no
    process (``which_children`` says ``"ignored"``); False when it was forgotten (a
    temporary child, or a child of a simple_one_for_one supervisor)."""

    child_id: str = ""
    is_supervisor: bool = False
    kept: bool = True

    def describe(self) -> str:
        then = "kept, not running" if self.kept else "forgotten"
        return f"{self.where}: {self.child_id} ignored its start; {then}"


@attrs.frozen
class ChildExited(Report):
    """A child ended by itself. ``outcome`` is what was decided: ``"restart"``,
    ``"keep"`` (not restarted, spec kept) or ``"remove"`` (spec forgotten) by the
    restart table; ``"give_up"`` when a restart was due but the intensity budget
    refused it; the decider's ``"escalate"``, ``"shutdown_tree"`` or ``"ignore"``;
    ``""`` while the supervisor was already stopping it or shutting down."""

    child_id: str = ""
    reason: ExitReason | None = None
    outcome: str = ""
    uptime: float | None = None
    is_supervisor: bool = False

    def describe(self) -> str:
        then = f"; {self.outcome}" if self.outcome else ""
        return f"{self.where}: {self.child_id} exited: {self.reason}{then}"


@attrs.frozen
class ChildTerminated(Report):
    """The supervisor stopped a child: ``reason`` is ``shutdown`` when it stopped
    gracefully, ``killed`` when it was killed."""

    child_id: str = ""
    reason: ExitReason | None = None
    is_supervisor: bool = False

    def describe(self) -> str:
        return f"{self.where}: terminated {self.child_id}: {self.reason}"


@attrs.frozen
class RestartScheduled(Report):
    """A restart will run after ``delay`` seconds (a backoff)."""

    child_id: str = ""
    delay: float = 0.0

    def describe(self) -> str:
        return f"{self.where}: restarting {self.child_id} in {self.delay:.3g} s"


@attrs.frozen
class IntensityExceeded(Report):
    """The supervisor gives up: ``why`` says which limit; ``history`` holds the exits
    that charged its restart budget (the children that used it up), oldest first,
    ending with the one that was refused."""

    child_id: str = ""
    why: str = ""
    history: tuple[tuple[str, ExitRecord], ...] = ()

    def describe(self) -> str:
        return f"{self.where}: giving up after {self.child_id} failed: {self.why}"


@attrs.frozen
class SupervisorExited(Report):
    """A supervisor ended; every child of it has ended."""

    reason: ExitReason | None = None

    def describe(self) -> str:
        return f"{self.where}: supervisor exited: {self.reason}"


@attrs.frozen
class ChildUnstoppable(Report):
    """A thread child did not stop within its shutdown timeout. Threads cannot be
    killed: the supervisor carries on, and the thread is left running, named here."""

    child_id: str = ""
    detail: Any = None

    def describe(self) -> str:
        return f"{self.where}: {self.child_id} did not stop and cannot be killed: {self.detail}"


@attrs.frozen
class OutputDropped(Report):
    """Part of a child's output could not be copied and was dropped.

    A copy of a child's output (to its log file, or to the supervisor's own stream)
    never waits for a target that does not drain (a pipe nobody reads, a stalled
    disk): what does not fit its bounded buffer is dropped, and counted here.
    ``dropped`` is the number of bytes dropped since the previous report for this
    child and stream, ``total`` since the child started. At most one report per child
    and stream per second, and a last one at the child's end; the crash-history tail
    of the child keeps what it printed all the same."""

    child_id: str = ""
    stream: str = "stderr"
    dropped: int = 0
    total: int = 0
    target: str = ""
    """What did not keep up (``"its log file PATH"``); empty: the supervisor's own
    stream of the same name."""

    def describe(self) -> str:
        target = self.target or f"the supervisor's {self.stream}"
        return (f"{self.where}: {self.dropped} bytes of the {self.stream} of "
                f"{self.child_id} dropped ({target} does not keep "
                f"up; {self.total} bytes in all)")
