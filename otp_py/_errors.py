"""The exceptions otp_py raises, and the ones children raise to steer it.

One shallow hierarchy: every exception otp_py raises derives from :class:`OtpError`,
and each one also derives from the nearest builtin (``ValueError``, ``LookupError``,
``TimeoutError``...), so a caller can catch either the library's class or the
builtin it already expects.

Two exceptions are raised *by children* rather than by the library:
:class:`Shutdown` lets a child end with OTP's ``shutdown`` / ``{shutdown, Term}``
reasons (which transient children are not restarted for), and the sentinels of the
failure decider (:class:`DoNotRestart`, :class:`ShutdownTree`) steer the supervisor.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "SPEC_ERROR_KINDS",
    "AlreadyPresentError",
    "AlreadyStartedError",
    "ChildNotFoundError",
    "ChildRestartingError",
    "ChildRunningError",
    "DoNotRestart",
    "Ignore",
    "IntensityExceededError",
    "MaxChildrenError",
    "NameTakenError",
    "NotSupportedError",
    "OtpError",
    "Shutdown",
    "ShutdownTree",
    "SpecError",
    "SpecTypeError",
    "StartChildError",
    "SupervisorExitError",
    "SupervisorNotRunningError",
]


class OtpError(Exception):
    """Base class of every exception otp_py raises."""


class SpecError(OtpError, ValueError):
    """A child or supervisor spec is invalid.

    Raised where the spec is declared, never later in a restart loop. The message
    names the child (or supervisor) id and the field, says what was expected and what
    was given. The same facts are attributes, so a program can tell errors apart
    without reading the text:

    * ``child`` (also ``child_id``): the id of the child or supervisor at fault, or
      None when the value has no child yet (a policy, a :class:`~otp_py.Heartbeat`).
    * ``field``: the field at fault.
    * ``kind``: what is wrong, a machine-readable name; OTP's reason where OTP has
      one (``invalid_restart_type``, ``invalid_shutdown``, ``invalid_significant``,
      ``invalid_strategy``, ``invalid_intensity``, ``invalid_period``,
      ``invalid_auto_shutdown``, ``invalid_child_spec``, ``duplicate_child_name``,
      ``bad_combination``, ``bad_start_spec``), else ``invalid_<field>``
      (``invalid_child_id``, ``invalid_start``, ``invalid_heartbeat``...). See
      :data:`SPEC_ERROR_KINDS`.
    * ``value``: the offending value; for ``bad_combination``, the pairs
      ``(field, value)`` that cannot go together, sorted by field, as OTP lists them.
    """

    def __init__(
        self, child_id: object, field: str, message: str, *, kind: str | None = None,
        value: object = None,
    ) -> None:
        self.child_id = child_id
        self.field = field
        self.kind = kind if kind is not None else default_kind(field)
        self.value = value
        self._detail = message
        label = "spec" if child_id is None else f"child {show_value(child_id)}"
        super().__init__(f"{label}: field {field!r}: {message}")

    @property
    def child(self) -> object:
        """The id of the child at fault (the same as ``child_id``)."""
        return self.child_id

    def __reduce__(self) -> tuple[Any, ...]:  # picklable, e.g. from a subtree's process
        value = self.value
        try:
            pickle.dumps(value)
        except Exception:  # (a lambda, a local class...): keep what it looked like
            value = repr(value)
        return (_rebuild, (type(self), self.child_id, self.field, self._detail, self.kind,
                           value))


def _rebuild(cls: type[SpecError], child_id: object, field: str, message: str, kind: str,
             value: object) -> SpecError:
    return cls(child_id, field, message, kind=kind, value=value)


def show_value(value: object, limit: int = 200) -> str:
    """``repr(value)``, cut short: an id may be absurdly long, and its repr escapes
    the control characters that would forge lines in a terminal or a log."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 5] + "...'"


SPEC_ERROR_KINDS: Final[Mapping[str, str]] = {
    "id": "invalid_child_id",
    "start": "invalid_start",
    "args": "invalid_start",
    "kwargs": "invalid_start",
    "restart": "invalid_restart_type",
    "shutdown": "invalid_shutdown",
    "significant": "invalid_significant",
    "strategy": "invalid_strategy",
    "intensity": "invalid_intensity",
    "max_restarts": "invalid_intensity",
    "period": "invalid_period",
    "auto_shutdown": "invalid_auto_shutdown",
}
"""The :attr:`SpecError.kind` of a bad value of each field that has a kind of its
own (OTP's reason where OTP has one); any other field ``f`` gives
``invalid_f``. Besides these, ``duplicate_child_name``, ``bad_combination``,
``invalid_child_spec`` (a child that is not a spec) and ``bad_start_spec`` (the
children of a supervisor, as a whole) name problems of more than one value."""


def default_kind(field: str) -> str:
    """The :attr:`SpecError.kind` of a bad value of ``field`` alone."""
    return SPEC_ERROR_KINDS.get(field, f"invalid_{field}")


class SpecTypeError(SpecError, TypeError):
    """A spec field has a value of the wrong type."""


class ChildNotFoundError(OtpError, LookupError):
    """No child with that id exists under the supervisor (OTP: ``{error, not_found}``)."""


class ChildRunningError(OtpError, RuntimeError):
    """The child is running, so it cannot be restarted or deleted (``{error, running}``)."""


class ChildRestartingError(OtpError, RuntimeError):
    """The child is between a failed restart and its retry (``{error, restarting}``)."""


class AlreadyPresentError(OtpError, ValueError):
    """A stopped child with that id is already present (``{error, already_present}``)."""


class AlreadyStartedError(OtpError, ValueError):
    """A running child with that id already exists (``{error, {already_started, Pid}}``)."""


class NameTakenError(AlreadyStartedError):
    """A child name is already registered elsewhere in the tree.

    Names (``ChildSpec(name=...)``, ``start_child(name=...)``) are unique across a
    whole tree, as registered names are across an Erlang node: starting a second
    child under a taken name is refused, as OTP refuses it with ``{error,
    {already_started, Pid}}`` (hence the base class). ``name`` and ``path`` (the
    holder's path) say which.
    """

    def __init__(self, name: str, path: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.name = name
        self.path = path


class MaxChildrenError(OtpError, RuntimeError):
    """``start_child`` on a simple_one_for_one supervisor that already has
    ``max_children`` children (Elixir's ``DynamicSupervisor``: ``{:error,
    :max_children}``). Nothing was started; ``supervisor`` (its path) and
    ``max_children`` say which limit was hit."""

    def __init__(self, supervisor: tuple[str, ...], max_children: int, message: str) -> None:
        super().__init__(message)
        self.supervisor = supervisor
        self.max_children = max_children


class NotSupportedError(OtpError, TypeError):
    """The call is not valid for this supervisor's strategy.

    OTP answers ``{error, simple_one_for_one}`` for ``restart_child`` and
    ``delete_child`` on a simple_one_for_one supervisor; so do we, with this error.
    """


class StartChildError(OtpError, RuntimeError):
    """A child asked for by ``start_child`` or ``restart_child`` failed to start.

    ``reason`` is the exit reason of the failed start (see :mod:`otp_py.reasons`).
    """

    def __init__(self, child_id: object, reason: Any) -> None:
        self.child_id = child_id
        self.reason = reason
        super().__init__(f"child {child_id!r} failed to start: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.child_id, self.reason))


class SupervisorNotRunningError(OtpError, RuntimeError):
    """The supervisor addressed has already exited."""


class SupervisorExitError(OtpError, RuntimeError):
    """A supervisor exited abnormally (it gave up, or failed to start).

    ``reason`` is its exit reason; ``path`` the supervisor's place in the tree.
    """

    def __init__(self, path: tuple[str, ...], reason: Any, message: str | None = None) -> None:
        self.path = path
        self.reason = reason
        where = "/".join(path) or "root"
        super().__init__(message or f"supervisor {where!r} exited: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.reason, str(self)))


class IntensityExceededError(SupervisorExitError):
    """A supervisor gave up: its children failed more often than its intensity allows.

    ``history`` holds the recent exits of the children that used up the budget, newest
    last, so the message says *why* and not only *that* the tree gave up.
    """

    def __init__(
        self,
        path: tuple[str, ...],
        reason: Any,
        history: tuple[Any, ...] = (),
        message: str | None = None,
    ) -> None:
        self.history = history
        super().__init__(path, reason, message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.reason, self.history, str(self)))


class Shutdown(Exception):  # noqa: N818 - named after OTP's exit reason
    """Raise in a child to end it with reason ``shutdown`` or ``{shutdown, term}``.

    A *transient* child that ends this way is not restarted, exactly as in OTP; a
    permanent child still is. ``Shutdown()`` is OTP's ``shutdown``;
    ``Shutdown(term)`` is ``{shutdown, term}``.
    """

    def __init__(self, *term: Any) -> None:
        if len(term) > 1:
            raise TypeError("Shutdown takes at most one term")
        self.has_term = bool(term)
        self.term = term[0] if term else None
        super().__init__(*term)


class DoNotRestart(Exception):  # noqa: N818 - a sentinel, not an error
    """Raise in a child to end it without a restart, whatever its restart type."""


class Ignore(Exception):  # noqa: N818 - named after OTP's ignore
    """Raise in a child before it is up to decline its start (OTP's ``ignore``).

    "Before it is up": before :func:`otp_py.notify_ready` in a child whose spec says
    ``ready=True`` (a child without ``ready`` is up as soon as it is started, so it
    cannot decline). The supervisor does not count it as a failure: the child is kept
    with no process (``which_children`` shows ``"ignored"``) and can be started later
    with ``restart_child``; a temporary child, or a child of a simple_one_for_one
    supervisor, is forgotten. ``start_child`` and ``restart_child`` answer ``None``.
    Raised after the child is up, it is an ordinary abnormal exit."""


class ShutdownTree(Exception):  # noqa: N818 - a sentinel, not an error
    """Raise in a child to make its supervisor stop every child and exit at once."""
