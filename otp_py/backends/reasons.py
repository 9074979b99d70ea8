"""Turning what a child did (an exception, an exit status, a signal) into an exit
reason, the same way for every backend."""

from __future__ import annotations

import linecache
import signal

from otp_py._core.reasons import (
    Crashed,
    Exited,
    ExitReason,
    Ignored,
    Killed,
    NoRestart,
    Normal,
    Shutdown,
    Signaled,
    TreeShutdown,
    class_names,
)
from otp_py._errors import DoNotRestart, Ignore, ShutdownTree
from otp_py._errors import Shutdown as ShutdownException

__all__ = ["ExitWith", "from_exception", "from_status", "signal_name"]


class ExitWith(Exception):  # noqa: N818 - carries a reason, not an error
    """Raised by runtime code inside a child to end it with exactly ``reason``."""

    def __init__(self, reason: ExitReason) -> None:
        super().__init__(str(reason))
        self.reason = reason


def from_exception(exc: BaseException, *, with_traceback: bool = True) -> ExitReason:
    """The exit reason of a child that raised ``exc``.

    :class:`otp_py.Shutdown` gives ``shutdown`` / ``{shutdown, term}``;
    :class:`otp_py.Ignore` gives :class:`~otp_py.reasons.Ignored` (before the child is
    up, the runtime turns it into a declined start);
    ``SystemExit`` with status 0 or None is ``normal``, with another status an
    :class:`~otp_py.reasons.Exited`; anything else is a crash with its traceback.
    """
    cls = type(exc)
    if cls in _PLAIN:  # most crashes: a class known to be none of the special ones
        return _crash(exc, cls, with_traceback)
    if isinstance(exc, ExitWith):
        return exc.reason
    if isinstance(exc, ShutdownException):
        return Shutdown(exc.term) if exc.has_term else Shutdown()
    if isinstance(exc, DoNotRestart):
        return NoRestart(str(exc))
    if isinstance(exc, ShutdownTree):
        return TreeShutdown(str(exc))
    if isinstance(exc, Ignore):
        return Ignored(str(exc))
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None or code == 0:
            return Normal()
        if isinstance(code, int):
            return Exited(code)
        return Crashed("SystemExit", str(code))
    if len(_PLAIN) < 1024:
        _PLAIN.add(cls)
    return _crash(exc, cls, with_traceback)


_PLAIN: set[type] = set()
"""Exception classes seen to be none of ``_SPECIAL``: their instances are crashes,
without the six isinstance checks (a class's bases never change)."""


def _crash(exc: BaseException, cls: type, with_traceback: bool) -> Crashed:
    text = str(exc)
    summary = _Summary(exc, text=text) if with_traceback else None
    return Crashed(cls.__qualname__, text, error_types=class_names(cls), summary=summary)


class _Summary:
    """Where an exception was raised, without its frames: enough to format its
    traceback later (with source lines) and cheap enough for a crash loop."""

    __slots__ = ("_cause", "_cls", "_entries", "_explicit", "_text")

    def __init__(self, exc: BaseException, depth: int = 0, text: str | None = None) -> None:
        entries = []
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            entries.append((code.co_filename, tb.tb_lineno, code.co_name))
            tb = tb.tb_next
        self._entries = entries
        # The header line is made in format(), if ever: a crash loop only pays for
        # what it reads.
        self._cls = type(exc)
        self._text = str(exc) if text is None else text
        cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        self._explicit = exc.__cause__ is not None
        self._cause = _Summary(cause, depth + 1) if cause is not None and depth < 8 else None

    def format(self) -> list[str]:
        lines: list[str] = []
        if self._cause is not None:
            lines += self._cause.format()
            lines.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
                if self._explicit else
                "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        if self._entries:
            lines.append("Traceback (most recent call last):\n")
            for filename, lineno, name in self._entries:
                lines.append(f'  File "{filename}", line {lineno}, in {name}\n')
                source = linecache.getline(filename, lineno).strip()
                if source:
                    lines.append(f"    {source}\n")
        cls = self._cls
        name = cls.__qualname__
        if cls.__module__ not in ("builtins", "__main__"):
            name = f"{cls.__module__}.{name}"
        text = self._text
        lines.append(f"{name}: {text}\n" if text else f"{name}\n")
        return lines


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
