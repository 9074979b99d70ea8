"""otp_py as the notify server of its children: systemd's ``NOTIFY_SOCKET``, per child.

A command or process child whose spec says ``ready=True`` gets a socket of its own
for each start: an abstract Unix datagram socket (nothing on disk to clean up or
to race for), named in the child's ``$NOTIFY_SOCKET``. So a program written for
systemd's ``Type=notify`` (``redis-server --supervised systemd``, anything calling
``sd_notify(3)``) runs unchanged under otp_py:

* ``READY=1`` ends its start (``start_timeout`` applies until then, as for
  :func:`otp_py.notify_ready`);
* ``STATUS=...`` is kept and shown by ``otp-py status`` and the live view;
* ``WATCHDOG=1`` pings feed its watchdog: with a :class:`~otp_py.Heartbeat` the
  child gets ``WATCHDOG_USEC`` (the heartbeat's timeout) and, a process child,
  ``WATCHDOG_PID``; pings stopping for longer than that is a hang (a
  :class:`~otp_py.reasons.Hung` reason, handled by the core like any other);
  ``WATCHDOG=trigger`` is a hang at once, ``WATCHDOG_USEC=`` a new timeout;
* ``MAINPID=`` (command children): a forking daemon's real pid becomes the child's
  pid: it is what is watched, stopped and shown;
* ``EXTEND_TIMEOUT_USEC=`` before ``READY=1``: the start timeout ends no sooner
  than that from now (the core moves its timer; systemd's rule);
* ``STOPPING=1``, ``RELOADING=1`` and ``ERRNO=`` are kept and shown.

Who may write: the kernel attaches the sender's credentials to each datagram
(``SO_PASSCRED``), and only the child's main process is heard, unless its spec
says ``notify_access="all"`` (systemd's ``NotifyAccess=all``): then also its
descendants, its process group and its cgroup. Anything else is dropped and
counted, with a warning at most every :data:`_WARN_EVERY` seconds.

A hostile child cannot starve the tree: each wakeup reads at most
:data:`READS_PER_WAKEUP` datagrams, each at most
:data:`~otp_py._core.notify.MAX_DATAGRAM` bytes (a larger one is dropped whole),
and file descriptors passed along (``FDSTORE=1``) are closed at once. No thread:
the socket is a reader of the tree's event loop. The protocol itself is parsed by
the pure :mod:`otp_py._core.notify`.
"""

from __future__ import annotations

import array
import contextlib
import logging
import os
import secrets
import select
import socket
import struct
from collections.abc import Callable
from typing import Any, Final

from otp_py._core.notify import (
    MAX_DATAGRAM,
    NotifyMessage,
    main_pid_allowed,
    parse,
    sender_allowed,
)
from otp_py._core.reasons import Hung
from otp_py.runtime import reaper

__all__ = ["READS_PER_WAKEUP", "NotifyChannel", "channel_for"]

logger = logging.getLogger("otp_py")

READS_PER_WAKEUP: Final[int] = 32
"""Datagrams read per wakeup of the loop: then other callbacks get their turn."""

_WARN_EVERY: Final[float] = 10.0
_CREDS = struct.Struct("3i")  # struct ucred: pid, uid, gid
_SCM_MAX_FD = 253
_ANCILLARY = socket.CMSG_SPACE(_CREDS.size) + socket.CMSG_SPACE(_SCM_MAX_FD * 4)
_BACKENDS = ("command", "process")
_USEC = 1_000_000


def channel_for(spec: Any, sink: Any, env: Any) -> NotifyChannel | None:
    """A fresh notify socket for the start of ``spec``'s child, or None if it has no
    use for one (not ready=True, or a backend that does not run a program)."""
    if not getattr(spec, "ready", False) or spec.backend not in _BACKENDS:
        return None
    if getattr(spec, "is_supervisor", False):
        return None
    return NotifyChannel(env.loop, env.name, spec, sink)


class NotifyChannel:
    """One child's notify socket, for one start (closed when the child has ended).

    The backend that runs the child puts :meth:`environ` in its environment, calls
    :meth:`attach` with its pid once it runs, and sets the callbacks it wants:
    ``on_ready`` (``READY=1``) and ``on_main_pid`` (``MAINPID=``, command only)."""

    def __init__(self, loop: Any, name: str, spec: Any, sink: Any) -> None:
        self._loop = loop
        self._name = name
        self._sink = sink
        self._access: str = getattr(spec, "notify_access", "main")
        self._backend: str = spec.backend
        heartbeat = spec.heartbeat
        self._interval: float | None = heartbeat.interval if heartbeat is not None else None
        self._timeout: float | None = heartbeat.timeout if heartbeat is not None else None
        self.on_ready: Callable[[], None] | None = None
        self.on_main_pid: Callable[[int], bool] | None = None
        self.leader: int | None = None  # the pid the backend started
        self.main_pid: int | None = None  # the one that speaks for the child
        self._leader_born: int | None = None  # the leader's start time (clock ticks)
        self.ready = False
        self.stopping = False
        self.reloading = False
        self.status: str | None = None
        self.errno: int | None = None
        self.extend_timeout_usec: int | None = None
        self.attached_at: float | None = None  # loop time: the program runs
        self.ready_at: float | None = None  # loop time of its READY=1
        self.refused = 0  # datagrams from processes that may not write here
        self.dropped = 0  # too large, or unreadable
        self._last_ping: float | None = None
        self._armed = False
        self._hung = False
        self._timer: Any = None
        self._warned: dict[str, tuple[float | None, int]] = {}  # kind: (when, since)
        self._closed = False
        token = secrets.token_hex(8)
        self.address = f"@otp_py/notify/{os.getpid()}/{token}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            sock.bind("\0" + self.address[1:])
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        loop.add_reader(sock.fileno(), self._readable)

    # -- for the backend

    def environ(self) -> dict[str, str]:
        """The variables that tell the child where to write (and how often to ping)."""
        variables = {"NOTIFY_SOCKET": self.address}
        if self._timeout is not None:
            variables["WATCHDOG_USEC"] = str(max(1, int(self._timeout * _USEC)))
        return variables

    def attach(self, pid: int) -> None:
        """The child runs as ``pid``. A command child's watchdog (if it has a
        heartbeat) starts now, as systemd's does at exec; a process child's starts
        at its first ``WATCHDOG=1`` (it may rely on its pipe's heartbeat alone)."""
        self.leader = self.main_pid = pid
        self._leader_born = _born(pid)
        self.attached_at = self._loop.time()
        if self._interval is not None:
            if self._backend == "command":
                self._arm()
            self._timer = self._loop.call_later(self._interval, self._check)

    def close(self) -> None:
        """Stop listening: the child has ended (or never started)."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    def describe(self) -> dict[str, Any]:
        """What the child said, for ``otp-py status``."""
        facts: dict[str, Any] = {"notify_socket": self.address}
        if self.status is not None:
            facts["status"] = self.status
        for key in ("stopping", "reloading"):
            if getattr(self, key):
                facts[key] = True
        if self.ready_at is not None and self.attached_at is not None:
            facts["ready_after"] = self.ready_at - self.attached_at  # seconds after exec
        if self.errno is not None:
            facts["errno"] = self.errno
        if self.extend_timeout_usec is not None:
            facts["extend_timeout_usec"] = self.extend_timeout_usec
        if self.refused:
            facts["notify_refused"] = self.refused
        if self.dropped:
            facts["notify_dropped"] = self.dropped
        return facts

    # -- reading

    def _readable(self) -> None:
        for _ in range(READS_PER_WAKEUP):
            if self._closed:
                return
            try:
                data, ancillary, flags, _ = self._sock.recvmsg(MAX_DATAGRAM, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.dropped += 1
                return
            sender, uid = _sender(ancillary)  # (closes any descriptors passed along)
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                self.dropped += 1
                continue
            if self.main_pid is None or not sender_allowed(
                    sender, self.main_pid, self._access, self._belongs):
                self._refuse(sender)
                continue
            self._apply(parse(data), uid)

    def drain(self) -> None:
        """Read what is queued now: the backend calls it when the child has exited,
        before it decides anything, so a ``READY=1`` or ``MAINPID=`` sent just
        before the exit counts (systemd, too, reads notify messages before a
        child's end). Bounded: a child's last flood is not read to its end."""
        poller = select.poll()  # (not select.select: a descriptor may be above 1023)
        poller.register(self._sock, select.POLLIN)
        for _ in range(64):
            if self._closed or not poller.poll(0):
                return
            self._readable()

    def _belongs(self, pid: int) -> bool:
        roots = {p for p in (self.leader, self.main_pid) if p is not None}
        return any(_related(pid, root) for root in roots)

    def _unwarned_since(self, kind: str) -> int | None:
        """Rate limiting of a kind of warning (a child may flood its socket): None if
        this one is not to be shown, else how many were not shown since the last."""
        now = self._loop.time()
        warned_at, unwarned = self._warned.get(kind, (None, 0))
        if warned_at is not None and now - warned_at < _WARN_EVERY:
            self._warned[kind] = (warned_at, unwarned + 1)
            return None
        self._warned[kind] = (now, 0)
        return unwarned

    def _refuse(self, sender: int | None) -> None:
        self.refused += 1
        unwarned = self._unwarned_since("sender")
        if unwarned is None:
            return
        more = f" ({unwarned} more since the last warning)" if unwarned else ""
        logger.warning(
            "otp_py: child %s: a notify message from pid %s was refused (only its main "
            "process %s may write%s)%s", self._name, sender, self.main_pid,
            ", or its descendants" if self._access == "all" else
            "; notify_access='all' lets its descendants write too", more)

    def _apply(self, message: NotifyMessage, uid: int | None = None) -> None:
        if message.status is not None:
            self.status = message.status
        if message.errno is not None:
            self.errno = message.errno
        if message.extend_timeout_usec is not None:
            self.extend_timeout_usec = message.extend_timeout_usec
            if not self.ready and not message.ready:  # more time to get ready
                self._sink.extend_start(message.extend_timeout_usec / _USEC)
        if message.reloading:
            self.reloading = True
        if message.stopping:
            self.stopping = True
        if message.main_pid is not None and message.main_pid != self.main_pid:
            self._new_main_pid(message.main_pid, uid)
        if message.watchdog_usec is not None and self._interval is not None:
            self._timeout = max(message.watchdog_usec / _USEC, self._interval)
        if message.watchdog:
            self._last_ping = self._loop.time()
            if not self._armed and self._interval is not None:
                self._arm()
        if message.watchdog_trigger and self._interval is not None:
            self._report_hung("it asked to be considered hung (WATCHDOG=trigger)")
        if message.ready and not self.ready:
            self.ready = True
            self.ready_at = self._loop.time()
            if message.stopping:
                return  # ready and stopping at once: it is already on its way out
            if self.on_ready is not None:
                self.on_ready()

    def _new_main_pid(self, pid: int, uid: int | None) -> None:
        """``MAINPID=``: accepted only where the backend can follow it, and for a
        process of the child's own (its descendant, group or cgroup; systemd wants
        it in the unit's cgroup) or one its sender could signal itself (the same
        owner, and not the supervisor or its ancestors): a daemon whose first
        process has already exited is no one's descendant any more, and a child
        must not get otp_py to stop a process it could not stop itself. Nor one older
        than the child (see :func:`~otp_py._core.notify.main_pid_allowed`)."""
        belongs = self._belongs(pid)
        if self.on_main_pid is None or not main_pid_allowed(
                belongs=belongs, same_owner=_owned_by(pid, uid),
                born=_born(pid), child_born=self._leader_born,
                started_here=False if belongs else _started_here(pid)):
            unwarned = self._unwarned_since("mainpid")
            if unwarned is not None:
                logger.warning("otp_py: child %s: MAINPID=%d refused (%s)%s", self._name, pid,
                               "not a process of this child" if self.on_main_pid is not None
                               else f"a {self._backend} child's pid cannot change",
                               f" ({unwarned} more since the last warning)" if unwarned
                               else "")
            return
        if self.on_main_pid(pid):
            self.main_pid = pid

    # -- the watchdog

    def _arm(self) -> None:
        self._armed = True
        if self._last_ping is None:
            self._last_ping = self._loop.time()

    def _check(self) -> None:
        """Every heartbeat interval: silent for longer than the timeout is hung."""
        self._timer = None
        if self._closed or self._hung:
            return
        assert self._interval is not None and self._timeout is not None
        if self._armed and self._last_ping is not None:
            silent = self._loop.time() - self._last_ping
            if silent > self._timeout:
                self._report_hung(f"no WATCHDOG=1 for {silent:.3g} s "
                                  f"(WATCHDOG_USEC {int(self._timeout * _USEC)})")
                return
        self._timer = self._loop.call_later(self._interval, self._check)

    def _report_hung(self, detail: str) -> None:
        if self._hung or self._closed:
            return
        self._hung = True
        self._sink.hung(Hung(detail))


def _sender(ancillary: list[tuple[int, int, bytes]]) -> tuple[int | None, int | None]:
    """The sender's pid and uid from its credentials; descriptors passed along are
    closed."""
    pid = uid = None
    for level, kind, data in ancillary:
        if level != socket.SOL_SOCKET:
            continue
        if kind == socket.SCM_CREDENTIALS and len(data) >= _CREDS.size:
            pid, uid, _ = _CREDS.unpack_from(data)
        elif kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
    return pid, uid


def _owned_by(pid: int, uid: int | None) -> bool:
    """Whether ``pid`` belongs to user ``uid`` and is neither this process nor one
    of its ancestors."""
    if uid is None:
        return False
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            owner = next(int(line.split()[1]) for line in f if line.startswith(b"Uid:"))
    except (OSError, StopIteration, IndexError, ValueError):
        return False
    if owner != uid:
        return False
    current, steps = os.getpid(), 0
    while current > 1 and steps < 256:
        if current == pid:
            return False
        stat = _stat(current)
        if stat is None:
            break
        current, steps = stat[0], steps + 1
    return True


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, process group) of ``pid``, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        return int(fields[1]), int(fields[2])
    except (OSError, IndexError, ValueError):
        return None


def _started_here(pid: int) -> bool | None:
    """Whether ``pid`` is, or descends from, a process this supervisor started
    itself (a sibling child, a probe's command, the guardian, the fork server)
    rather than an orphan it adopted as a subreaper; None if it cannot be told now
    (a process of the chain is gone, or a Popen is being started elsewhere)."""
    me, current, steps = os.getpid(), pid, 0
    while current > 1 and steps < 256:
        stat = _stat(current)
        if stat is None:
            return None
        if stat[0] == me:
            adopted = reaper.orphans()
            return None if adopted is None else current not in adopted
        current, steps = stat[0], steps + 1
    return False


def _born(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot: /proc's ``starttime``), or None
    if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rpartition(b")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _cgroup(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cgroup", "rb") as f:
            return f.read()
    except OSError:
        return None


def _related(pid: int, root: int) -> bool:
    """Whether ``pid`` belongs to the child whose process is ``root``: a descendant,
    a member of its process group, or in its cgroup (when it has one of its own, not
    the supervisor's). A sender already gone cannot be told: refused."""
    stat = _stat(pid)
    if stat is None:
        return False
    if stat[1] == root:
        return True
    current, steps = stat[0], 0
    while current > 1 and steps < 256:
        if current == root:
            return True
        parent = _stat(current)
        if parent is None:
            break
        current, steps = parent[0], steps + 1
    theirs, its = _cgroup(pid), _cgroup(root)
    return theirs is not None and theirs == its and its != _cgroup(os.getpid())
