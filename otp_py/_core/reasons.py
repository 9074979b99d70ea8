"""Exit reasons: why a child ended, as data.

OTP decides what to do with an ended child from two things only: the child's restart
type and the *class* of its exit reason (``normal``, ``shutdown``, ``{shutdown, Term}``
or anything else, which is abnormal). Every reason here declares its class through
:attr:`ExitReason.kind`; the restart table in :mod:`otp_py._core.table` is keyed by it.

The concrete classes keep what a user needs to understand a failure (the exception
type, message and traceback text, the exit code or the signal); they never hold live
objects such as exceptions or frames, so they can cross process boundaries and be
kept in crash histories.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

import attrs

__all__ = [
    "NO_TERM",
    "Abnormal",
    "Crashed",
    "ExitReason",
    "Exited",
    "FailedToStartChild",
    "Hung",
    "Ignored",
    "Killed",
    "NoRestart",
    "Normal",
    "ReasonKind",
    "Shutdown",
    "Signaled",
    "StartTimeout",
    "TreeShutdown",
    "Unstoppable",
]


class ReasonKind(enum.Enum):
    """The four columns of OTP's restart table."""

    __hash__ = object.__hash__  # members are singletons; C-speed dict lookups

    NORMAL = "normal"
    SHUTDOWN = "shutdown"
    SHUTDOWN_TERM = "{shutdown, term}"
    ABNORMAL = "abnormal"


class _NoTerm:
    """Marks a bare ``shutdown`` (as opposed to ``{shutdown, None}``)."""

    _instance: ClassVar[_NoTerm | None] = None

    def __new__(cls) -> _NoTerm:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_TERM"

    def __reduce__(self) -> str:
        return "NO_TERM"


NO_TERM = _NoTerm()


@attrs.frozen
class ExitReason:
    """Base class of every exit reason. Subclasses set :attr:`kind`."""

    _KIND: ClassVar[ReasonKind] = ReasonKind.ABNORMAL

    @property
    def kind(self) -> ReasonKind:
        """Which column of the restart table this reason falls in."""
        return self._KIND

    @property
    def is_abnormal(self) -> bool:
        """True unless the reason is ``normal``, ``shutdown`` or ``{shutdown, Term}``."""
        return self.kind is ReasonKind.ABNORMAL


@attrs.frozen
class Normal(ExitReason):
    """The child returned (or exited with status 0): OTP's ``normal``."""

    _KIND: ClassVar[ReasonKind] = ReasonKind.NORMAL

    def __str__(self) -> str:
        return "normal"


@attrs.frozen
class Shutdown(ExitReason):
    """OTP's ``shutdown`` (``term`` is :data:`NO_TERM`) or ``{shutdown, term}``.

    A child stopped gracefully by its supervisor ends with ``Shutdown()``; a child
    may end itself this way by raising :class:`otp_py.Shutdown`.
    """

    term: object = NO_TERM

    @property
    def has_term(self) -> bool:
        return self.term is not NO_TERM

    @property
    def kind(self) -> ReasonKind:
        return ReasonKind.SHUTDOWN_TERM if self.has_term else ReasonKind.SHUTDOWN

    def __str__(self) -> str:
        if not self.has_term:
            return "shutdown"
        term = self.term
        shown = repr(term) if isinstance(term, str | bytes | int | float | tuple) else str(term)
        return f"{{shutdown, {shown}}}"


@attrs.frozen
class Killed(ExitReason):
    """The supervisor killed the child (brutal kill, or its shutdown timeout ran out)."""

    def __str__(self) -> str:
        return "killed"


@attrs.frozen
class Crashed(ExitReason):
    """The child raised an exception. The exception itself stays behind; its type
    name, message and traceback text travel.

    ``traceback`` is the formatted traceback. For children in this process it is
    formatted on first use from a summary taken when the child died (which holds no
    frames), so a crash loop does not pay for formatting nobody reads.
    """

    error_type: str
    message: str
    _traceback: str | None = attrs.field(default=None, eq=False, repr=False, alias="traceback")
    error_types: tuple[str, ...] = attrs.field(default=(), eq=False, repr=False)
    """Qualified names of the exception's classes (its MRO), for decider rules."""
    _summary: Any = attrs.field(default=None, eq=False, repr=False, alias="summary")

    @property
    def traceback(self) -> str | None:
        if self._traceback is None and self._summary is not None:
            text = "".join(self._summary.format())
            object.__setattr__(self, "_traceback", text[-TRACEBACK_LIMIT:])
            object.__setattr__(self, "_summary", None)
        return self._traceback

    def __reduce__(self) -> tuple[Any, ...]:
        return (_crashed, (self.error_type, self.message, self.traceback, self.error_types))

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message}" if self.message else self.error_type


TRACEBACK_LIMIT = 64 * 1024
"""Characters of traceback text kept per crash (the tail, where the error is)."""


def _crashed(
    error_type: str, message: str, traceback: str | None, error_types: tuple[str, ...]
) -> Crashed:
    return Crashed(error_type, message, traceback=traceback, error_types=error_types)


@attrs.frozen
class Exited(ExitReason):
    """A process or command child exited with a non-zero status."""

    code: int

    def __str__(self) -> str:
        return f"exited with status {self.code}"


@attrs.frozen
class Signaled(ExitReason):
    """A process or command child was ended by a signal it did not get from us."""

    signal: int
    name: str = attrs.field(default="", eq=False)

    def __str__(self) -> str:
        label = f"{self.name} ({self.signal})" if self.name else str(self.signal)
        return f"killed by signal {label}"


@attrs.frozen
class Hung(ExitReason):
    """The child stopped answering heartbeats (or its event loop stopped turning)."""

    detail: str

    def __str__(self) -> str:
        return f"hung: {self.detail}"


@attrs.frozen
class StartTimeout(ExitReason):
    """The child did not signal readiness within its start timeout."""

    timeout: float

    def __str__(self) -> str:
        return f"not ready within {self.timeout:g} s"


@attrs.frozen
class Unstoppable(ExitReason):
    """A thread child ignored its stop request past its shutdown timeout.

    Threads cannot be killed; the supervisor carries on without it and reports it.
    """

    timeout: float

    def __str__(self) -> str:
        return f"unstoppable: still running {self.timeout:g} s after its stop request"


@attrs.frozen
class Abnormal(ExitReason):
    """Any other abnormal reason, carrying an arbitrary term (OTP's ``boom``)."""

    term: object

    def __str__(self) -> str:
        return str(self.term)


@attrs.frozen
class Ignored(ExitReason):
    """The child raised :class:`otp_py.Ignore`: OTP's ``ignore``.

    Raised before the child is up (before :func:`otp_py.notify_ready`, for a child
    whose spec says ``ready=True``), it declines the start: the backend's report of
    this reason becomes the core's ``ChildIgnored`` event, never an exit. Raised
    later, the start has already counted, so there is nothing left to decline: it is
    an abnormal exit like any other, and says why."""

    message: str = ""

    def __str__(self) -> str:
        detail = f": {self.message}" if self.message else ""
        return f"ignore raised after the child was up (ignore only declines a start){detail}"


@attrs.frozen
class NoRestart(ExitReason):
    """The child raised :class:`otp_py.DoNotRestart`: do not restart it."""

    message: str = ""

    def __str__(self) -> str:
        return f"asked not to be restarted: {self.message}" if self.message else (
            "asked not to be restarted")


@attrs.frozen
class TreeShutdown(ExitReason):
    """The child raised :class:`otp_py.ShutdownTree`: stop the whole tree."""

    message: str = ""

    def __str__(self) -> str:
        return f"asked the tree to shut down: {self.message}" if self.message else (
            "asked the tree to shut down")


@attrs.frozen
class FailedToStartChild:
    """The term of ``{shutdown, {failed_to_start_child, Id, Reason}}``: a supervisor's
    reason when one of its children failed to start during its init."""

    child_id: str
    reason: ExitReason

    def __str__(self) -> str:
        return f"failed to start child {self.child_id!r}: {self.reason}"



def class_names(cls: type) -> tuple[str, ...]:
    """Qualified names of ``cls`` and its bases, as decider rules match them.

    A script's classes are ``__main__.X`` in the supervisor but ``__mp_main__.X`` in
    a child that imported the script for its target: both are named ``__main__``."""
    names = _CLASS_NAMES.get(cls)
    if names is None:
        names = tuple(
            f"{'__main__' if c.__module__ == '__mp_main__' else c.__module__}.{c.__qualname__}"
            for c in cls.__mro__
        )
        if len(_CLASS_NAMES) < 4096:
            _CLASS_NAMES[cls] = names
    return names


_CLASS_NAMES: dict[type, tuple[str, ...]] = {}
