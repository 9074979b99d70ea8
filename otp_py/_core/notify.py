"""systemd's notify protocol, parsed: a datagram in, a message out. No I/O.

A program that speaks the protocol (``sd_notify(3)``) writes datagrams to the Unix
socket named by ``$NOTIFY_SOCKET``; each is newline-separated ``KEY=VALUE``
assignments, in UTF-8. otp_py reads them for its command and process children (the
socket and the reading are in :mod:`otp_py.runtime.notify`); this module only turns
bytes into a :class:`NotifyMessage` and decides who may send, so both are tested
without a socket.

Rules, as systemd applies them:

* a line that is not ``KEY=VALUE`` with a known key and a valid value is ignored
  (and counted in :attr:`NotifyMessage.ignored`): a bad line never spoils the good
  ones of the same datagram;
* a datagram larger than :data:`MAX_DATAGRAM` is dropped whole by the reader
  (systemd drops truncated ones too): a program must not make us buffer without end;
* a message from a process other than the child's main process is refused, unless
  the child's spec opts in with ``notify_access="all"`` and the sender belongs to
  the child (its descendant, its process group or its cgroup): systemd's
  ``NotifyAccess=main`` and ``NotifyAccess=all``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import attrs

__all__ = [
    "MAX_DATAGRAM",
    "MAX_STATUS",
    "NOTIFY_ACCESS",
    "NotifyMessage",
    "main_pid_allowed",
    "parse",
    "sender_allowed",
]

MAX_DATAGRAM: Final[int] = 4096
"""The largest datagram read (systemd's ``NOTIFY_BUFFER_MAX``, a pipe buffer)."""

MAX_STATUS: Final[int] = 256
"""``STATUS=`` is kept to this many characters: it is one line of ``otp-py status``."""

NOTIFY_ACCESS: Final[tuple[str, ...]] = ("main", "all")
"""The values of ``ChildSpec.notify_access``: who may write to a child's socket."""

_MAX_USEC: Final[int] = 10**15  # ~31 years: beyond it, a value is a mistake


@attrs.frozen
class NotifyMessage:
    """What one datagram said. ``None`` (or False) for what it did not say."""

    ready: bool = False
    stopping: bool = False
    reloading: bool = False
    watchdog: bool = False  # WATCHDOG=1: a liveness ping
    watchdog_trigger: bool = False  # WATCHDOG=trigger: "consider me hung now"
    watchdog_usec: int | None = None  # WATCHDOG_USEC=: a new watchdog timeout
    status: str | None = None
    errno: int | None = None
    main_pid: int | None = None
    extend_timeout_usec: int | None = None
    ignored: int = 0  # lines that were not understood

    @property
    def empty(self) -> bool:
        """Nothing understood (garbage, or only unknown keys)."""
        return self == NotifyMessage(ignored=self.ignored)


def _number(value: str, *, low: int, high: int) -> int | None:
    if not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if low <= number <= high else None


def _one_line(text: str) -> str:
    """``STATUS=`` as one printable line (a hostile program must not retitle or
    clear the operator's terminal), at most :data:`MAX_STATUS` characters."""
    cleaned = "".join(c if c.isprintable() else " " for c in text).strip()
    return cleaned[:MAX_STATUS]


def parse(datagram: bytes) -> NotifyMessage:
    """The message in ``datagram`` (its lines in order; a later assignment of a key
    wins, as in systemd). Never raises: garbage is a message with ``ignored`` set."""
    fields: dict[str, object] = {}
    ignored = 0
    for raw in datagram.split(b"\n"):
        if not raw:
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            ignored += 1
            continue
        key, sep, value = line.partition("=")
        if not sep:
            ignored += 1
            continue
        if key in ("READY", "STOPPING", "RELOADING"):
            if value != "1":
                ignored += 1
                continue
            fields[key.lower()] = True
        elif key == "WATCHDOG":
            if value == "1":
                fields["watchdog"] = True
            elif value == "trigger":
                fields["watchdog_trigger"] = True
            else:
                ignored += 1
        elif key == "STATUS":
            fields["status"] = _one_line(value)
        elif key == "ERRNO":
            number = _number(value, low=0, high=4095)
            if number is None:
                ignored += 1
            else:
                fields["errno"] = number
        elif key == "MAINPID":
            number = _number(value, low=2, high=2**22)
            if number is None:
                ignored += 1
            else:
                fields["main_pid"] = number
        elif key in ("WATCHDOG_USEC", "EXTEND_TIMEOUT_USEC"):
            number = _number(value, low=1, high=_MAX_USEC)
            if number is None:
                ignored += 1
            else:
                fields[key.lower()] = number
        else:
            # FDSTORE=, FDNAME=, BUSERROR=, MONOTONIC_USEC=, NOTIFYACCESS=...: not ours
            ignored += 1
    return NotifyMessage(ignored=ignored, **fields)  # type: ignore[arg-type]


def sender_allowed(
    sender: int | None, main_pid: int, access: str, belongs: Callable[[int], bool]
) -> bool:
    """Whether a datagram from process ``sender`` (its credentials as the kernel
    gave them; None: no credentials came with it) is read for the child whose main
    process is ``main_pid``.

    ``access`` is the child's ``notify_access``: ``"main"`` accepts the main process
    only; ``"all"`` also any process for which ``belongs(sender)`` is true (the
    caller's look at the sender's ancestry, process group and cgroup)."""
    if sender is None or sender <= 0:
        return False
    if sender == main_pid:
        return True
    return access == "all" and belongs(sender)


def main_pid_allowed(
    *, belongs: bool, same_owner: bool, born: int | None, child_born: int | None,
    started_here: bool | None = False,
) -> bool:
    """Whether ``MAINPID=`` may name a process (the caller has already refused the
    supervisor and its ancestors).

    ``belongs``: it is the child's own (a descendant, in its process group or its
    cgroup): accepted. Else it must have the sender's owner (the child could signal
    it itself) *and* have been born no earlier than the child's first process
    (``born``, ``child_born``: start times in the kernel's clock ticks since boot,
    None if unknown): a daemon the child forked cannot be older than the child, while
    a sibling started before it, the user's shell or the pid in a stale pid file
    can; otp_py would take such a process for the child and stop it with the child.
    And it must not be (or descend from) a process the supervisor started itself
    (``started_here``: a sibling, a probe's command; None: it could not be told):
    the child's daemon, once its first process is gone, is an orphan, adopted by
    init or by the supervisor as a subreaper, never a process it started."""
    if belongs:
        return True
    return (same_owner and started_here is False and born is not None
            and child_born is not None and born >= child_born)
