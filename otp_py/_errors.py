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

from typing import Any

__all__ = [
    "AlreadyPresentError",
    "AlreadyStartedError",
    "ChildNotFoundError",
    "ChildRestartingError",
    "ChildRunningError",
    "DoNotRestart",
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
    was given; ``child_id`` and ``field`` carry the same facts for programs.
    """

    def __init__(self, child_id: object, field: str, message: str) -> None:
        self.child_id = child_id
        self.field = field
        self._detail = message
        label = "spec" if child_id is None else f"child {child_id!r}"
        super().__init__(f"{label}: field {field!r}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable, e.g. from a subtree's process
        return (type(self), (self.child_id, self.field, self._detail))


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


class ShutdownTree(Exception):  # noqa: N818 - a sentinel, not an error
    """Raise in a child to make its supervisor stop every child and exit at once."""
