"""Turning what a child did (an exception, an exit status, a signal) into an exit
reason, the same way for every backend."""

from __future__ import annotations

import signal
import traceback

from otp_py._core.reasons import (
    Crashed,
    Exited,
    ExitReason,
    Killed,
    NoRestart,
    Normal,
    Shutdown,
    Signaled,
    TreeShutdown,
)
from otp_py._errors import DoNotRestart, ShutdownTree
from otp_py._errors import Shutdown as ShutdownException

__all__ = ["ExitWith", "from_exception", "from_status", "signal_name"]

TRACEBACK_LIMIT = 64 * 1024
"""Characters of traceback text kept per crash (the tail, where the error is)."""


class ExitWith(Exception):  # noqa: N818 - carries a reason, not an error
    """Raised by runtime code inside a child to end it with exactly ``reason``."""

    def __init__(self, reason: ExitReason) -> None:
        super().__init__(str(reason))
        self.reason = reason


def from_exception(exc: BaseException, *, with_traceback: bool = True) -> ExitReason:
    """The exit reason of a child that raised ``exc``.

    :class:`otp_py.Shutdown` gives ``shutdown`` / ``{shutdown, term}``;
    ``SystemExit`` with status 0 or None is ``normal``, with another status an
    :class:`~otp_py.reasons.Exited`; anything else is a crash with its traceback.
    """
    if isinstance(exc, ExitWith):
        return exc.reason
    if isinstance(exc, ShutdownException):
        return Shutdown(exc.term) if exc.has_term else Shutdown()
    if isinstance(exc, DoNotRestart):
        return NoRestart(str(exc))
    if isinstance(exc, ShutdownTree):
        return TreeShutdown(str(exc))
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None or code == 0:
            return Normal()
        if isinstance(code, int):
            return Exited(code)
        return Crashed("SystemExit", str(code))
    text = None
    if with_traceback:
        text = "".join(traceback.format_exception(exc))[-TRACEBACK_LIMIT:]
    return Crashed(type(exc).__qualname__, str(exc), text, _class_names(type(exc)))


_NAMES: dict[type, tuple[str, ...]] = {}


def _class_names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = tuple(f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__)
        if len(_NAMES) < 4096:
            _NAMES[cls] = names
    return names


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return ""


def from_status(
    returncode: int, *, stop_requested: bool, killed: bool, stop_signal: int = signal.SIGTERM
) -> ExitReason:
    """The exit reason of a process from its return code (negative: a signal).

    A process that dies of the signal we sent to stop it ended with ``shutdown``;
    of our SIGKILL, ``killed``, as OTP reports it."""
    if returncode == 0:
        return Normal()
    if returncode > 0:
        return Exited(returncode)
    number = -returncode
    if killed and number == signal.SIGKILL:
        return Killed()
    if stop_requested and number in (stop_signal, signal.SIGTERM):
        return Shutdown()
    return Signaled(number, signal_name(number))
