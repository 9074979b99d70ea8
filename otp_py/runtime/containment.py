"""Containment: no descendant of a process or command child outlives it.

The policy (the mechanics are in :mod:`otp_py.backends.containment`):

* **cgroup mode**, where a writable cgroup v2 hierarchy exists (root, or a delegated
  sub-tree, as systemd gives a service with ``Delegate=yes`` or a user session):
  each process or command child runs in a cgroup of its own,
  ``<our cgroup>/otp-py-<our pid>/c<n>``, which it enters itself before it runs
  anything. Nothing it starts can leave that cgroup, whatever it does with sessions
  and process groups (``setsid``, a daemonising double fork). When the child has
  ended, ``cgroup.kill`` SIGKILLs whatever is left in it and the directory is removed
  once it is empty; a kill of the child kills the whole cgroup. The guardian knows
  every such cgroup, so even a SIGKILL of the supervising process leaves nothing:
  the guardian ``cgroup.kill``\\ s them all. (The per-process parent directory keeps
  cgroup v2's "no internal processes" rule: the supervisor stays where it is, its
  children's cgroups sit in a directory that holds no process of its own.)

* **process-group mode**, where no cgroup can be written: each child leads a process
  group, stopped and killed as a whole; in addition, just before a stop or a kill,
  the child's living descendants are found through ``/proc`` (by parentage, whatever
  their group or session) and are killed once the child has ended. What can escape
  there: a descendant whose parent had already died before the stop (a daemonising
  double fork: the daemon has been reparented, so nothing links it to the child any
  more); a descendant that left the group of a child that crashed; and, on a
  SIGKILL of the supervising process, every descendant of a command child (or a
  fork/spawn process child) that left its group (the guardian kills groups only).
  The fork server is a child subreaper: it adopts the orphans of the process
  children it forked and kills them when the supervisor is gone.

Where otp_py owns the process (``otp-py run``, ``otp.run()``) the supervising
process is a child subreaper as well, and adopted orphans (a daemon orphaned before
the stop) are reaped when they die and killed when the tree ends: see
:mod:`otp_py.runtime.reaper` for the rule that tells them from children someone else
waits for, and why a library's ``otp.start()`` is not one by default.

``OTP_PY_CGROUPS=0`` in the environment turns cgroup mode off (process-group mode).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from typing import Protocol

from otp_py.backends.containment import Cgroup, cgroup2_mount, own_cgroup

__all__ = ["Containment", "cgroups_disabled"]

_PARENT_PREFIX = "otp-py-"


class _Registry(Protocol):
    """The guardian's side: the cgroups it must kill if this process dies."""

    def watch_cgroup(self, path: str) -> None: ...
    def end_cgroup(self, path: str) -> None: ...
    def forget_cgroup(self, path: str) -> None: ...
    def remove_at_exit(self, path: str) -> None: ...


def cgroups_disabled() -> bool:
    """True when the environment turns cgroup mode off (``OTP_PY_CGROUPS=0``)."""
    return os.environ.get("OTP_PY_CGROUPS", "").strip().lower() in ("0", "no", "off", "false")


class Containment:
    """The cgroups of one supervising process's children."""

    def __init__(self, registry: _Registry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._decided = False
        self._parent: str | None = None
        self._serial = itertools.count(1)
        self._spare: list[Cgroup] = []  # made for a start that failed, never entered

    @property
    def mode(self) -> str:
        """``"cgroup"`` or ``"process-group"`` (decided on first use)."""
        return "cgroup" if self._parent_dir() is not None else "process-group"

    def _parent_dir(self) -> str | None:
        with self._lock:
            if not self._decided:
                self._decided = True
                self._parent = self._make_parent()
            return self._parent

    def _make_parent(self) -> str | None:
        if cgroups_disabled():
            return None
        mount, ours = cgroup2_mount(), own_cgroup()
        if mount is None or ours is None:
            return None
        base = os.path.join(mount, ours.lstrip("/"))
        # A process moving into a cgroup needs write access to cgroup.procs of the
        # closest ancestor of both (ours), as well as of the destination.
        if not os.access(os.path.join(base, "cgroup.procs"), os.W_OK):
            return None
        parent = os.path.join(base, f"{_PARENT_PREFIX}{os.getpid()}")
        try:
            os.mkdir(parent)
        except FileExistsError:
            pass  # a dead namesake (pids are reused); its leftovers are its guardian's
        except OSError:
            return None
        if not os.access(os.path.join(parent, "cgroup.procs"), os.W_OK):
            with contextlib.suppress(OSError):
                os.rmdir(parent)
            return None
        self._registry.remove_at_exit(parent)
        return parent

    def new_cgroup(self) -> Cgroup | None:
        """A fresh cgroup for one child (the guardian told of it), or None outside
        cgroup mode or if it cannot be made."""
        parent = self._parent_dir()
        if parent is None:
            return None
        with contextlib.suppress(IndexError):
            return self._spare.pop()  # (a command failing at every start makes none)
        path = os.path.join(parent, f"c{next(self._serial)}")
        try:
            os.mkdir(path)
        except OSError:
            return None
        self._registry.watch_cgroup(path)
        return Cgroup(path)

    def release(self, cgroup: Cgroup, unused: bool = False) -> None:
        """The child of ``cgroup`` has ended (or never started): SIGKILL whatever is
        left in it, then remove it, now if it is already empty, else (by the
        guardian) as soon as the last process is gone. ``unused``: no process ever
        entered it (a command that could not be started): kept for the next child."""
        if unused and len(self._spare) < 4:
            self._spare.append(cgroup)
            return
        cgroup.kill()
        if not cgroup.populated() and cgroup.remove():
            self._registry.forget_cgroup(cgroup.path)
        else:
            self._registry.end_cgroup(cgroup.path)
