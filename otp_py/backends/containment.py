"""Low-level containment helpers: cgroup v2 directories and process-tree walks.

A process group reaches every descendant of a child until one of them leaves it
(``setsid``, ``start_new_session=True``, a daemonising double fork). Two kernel
mechanisms reach further:

* a **cgroup v2** directory per child: every descendant stays in it whatever it does
  with sessions and groups, and writing ``1`` to its ``cgroup.kill`` SIGKILLs them
  all at once (Linux 5.14; older kernels: each pid in ``cgroup.procs``). systemd
  stops a unit the same way;
* a **process-tree walk** (``/proc/PID/task/TID/children``): the descendants of a
  living process, whatever their group, found just before it is stopped.

This module only does the mechanics; what is used when is the runtime's policy
(:mod:`otp_py.runtime.containment`), which hands a backend a :class:`Cgroup` or
nothing. Backends may import this module, never the runtime.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Callable
from typing import Any

__all__ = [
    "Cgroup",
    "cgroup2_mount",
    "close_opener",
    "descendants",
    "enter_cgroup",
    "kill_pidfds",
    "kill_pids",
    "new_cgroup",
    "own_cgroup",
    "pidfds",
    "release_cgroup",
    "set_child_subreaper",
]

_PR_SET_CHILD_SUBREAPER = 36

def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """Where the cgroup v2 hierarchy is mounted, or None.

    On a unified layout it is ``/sys/fs/cgroup``; on a hybrid one (v1 controllers
    beside a v2 tree) it is the ``unified`` mount, not the top of the cgroup tree.
    The mount's root must be the hierarchy's root (``/``): a bind mount of a
    sub-tree would make our own path (read from ``/proc/self/cgroup``) wrong."""
    try:
        with open(mountinfo) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, after = left.split(), right.split()
        if after and after[0] == "cgroup2" and len(fields) >= 5 and fields[3] == "/":
            return _unescape(fields[4])
    return None


def _unescape(path: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040...)
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and i + 3 < len(path) + 1 and path[i + 1:i + 4].isdigit():
            out.append(chr(int(path[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def own_cgroup(pid: int | str = "self") -> str | None:
    """The cgroup v2 path of a process (``/`` for the root), or None."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].rstrip("\n").removesuffix(" (deleted)")
    except OSError:
        return None
    return None


class Cgroup:
    """One cgroup v2 directory holding one child and all its descendants.

    ``path`` is absolute (under the cgroup2 mount). A process child enters it
    itself, before it runs anything (:func:`enter_cgroup`); a command enters it
    between fork and exec (:meth:`opener`)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"Cgroup({self.path!r})"

    @property
    def procs(self) -> str:
        """The file a process writes its pid (or ``0``: itself) to, to enter."""
        return os.path.join(self.path, "cgroup.procs")

    def pids(self) -> list[int]:
        """The processes in it now (zombies have already left)."""
        try:
            with open(self.procs) as f:
                return [int(p) for p in f.read().split()]
        except (OSError, ValueError):
            return []

    def populated(self) -> bool:
        try:
            with open(os.path.join(self.path, "cgroup.events")) as f:
                for line in f:
                    if line.startswith("populated "):
                        return line.split()[1] != "0"
        except OSError:
            return False
        return False

    def kill(self) -> None:
        """SIGKILL everything in it, whatever session or group it is in."""
        try:
            fd = os.open(os.path.join(self.path, "cgroup.kill"), os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            if os.path.isdir(self.path):  # a kernel before 5.14: one pid at a time
                kill_pids(self.pids())
            return
        except OSError:
            return
        try:
            with contextlib.suppress(OSError):
                os.write(fd, b"1")
        finally:
            os.close(fd)

    def remove(self) -> bool:
        """rmdir it, and first the cgroups under it (a subtree running in the child
        made its own, and its guardian died with it); False while something still
        runs in it. True if it is gone."""
        for top, _, _ in os.walk(self.path, topdown=False):
            try:
                os.rmdir(top)
            except FileNotFoundError:
                pass
            except OSError:
                return False
        return True

    def opener(self) -> Callable[[], None] | None:
        """A ``preexec_fn`` for :class:`subprocess.Popen` that moves the new process
        into this cgroup between fork and exec (the descriptor is opened here, so the
        child only makes one ``write``: nothing that could take a lock another thread
        held at the fork). None if the cgroup cannot be entered."""
        try:
            fd = os.open(self.procs, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            return None

        def enter() -> None:
            os.write(fd, b"0")

        enter.fd = fd  # type: ignore[attr-defined]  # closed by close_opener
        return enter


def close_opener(opener: Any) -> None:
    """Close the descriptor of an :meth:`Cgroup.opener` (in the parent, once the
    child has been started)."""
    fd = getattr(opener, "fd", None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def enter_cgroup(procs: str | None) -> None:
    """Move the calling process into the cgroup whose ``cgroup.procs`` is ``procs``
    (a process child does so first thing, before it can start anything: no window). A failure
    leaves it where it is: contained by its process group only."""
    if not procs:
        return
    with contextlib.suppress(OSError):
        fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def descendants(pid: int) -> list[int]:
    """Every living descendant of ``pid``, at any depth, whatever its process group
    or session: found through ``/proc/PID/task/TID/children``. Children reparented
    away (their parent died) are no longer found: that is what a cgroup is for."""
    found: list[int] = []
    todo = [pid]
    seen = {pid}
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except (OSError, ValueError):
                continue
            for kid in kids:
                if kid not in seen:
                    seen.add(kid)
                    found.append(kid)
                    todo.append(kid)
    return found


def pidfds(pids: list[int]) -> list[int]:
    """Open a pidfd on each pid still alive (so a later kill cannot reach a new
    process that happens to reuse the number)."""
    fds = []
    for pid in pids:
        with contextlib.suppress(OSError):
            fds.append(os.pidfd_open(pid))
    return fds


def kill_pidfds(fds: list[int]) -> None:
    """SIGKILL the processes of ``fds`` and close the descriptors."""
    for fd in fds:
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.close(fd)


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def new_cgroup(guardian: Any) -> Cgroup | None:
    """A cgroup of its own for a child about to start, from the runtime's guardian
    (which decides whether cgroups are used and kills them if the supervisor dies);
    None where there is none."""
    make = getattr(guardian, "new_cgroup", None)
    return make() if make is not None else None


def release_cgroup(guardian: Any, cgroup: Cgroup | None, unused: bool = False) -> None:
    """The child of ``cgroup`` has ended: kill what is left in it, remove it.
    ``unused``: no process ever entered it (the start failed before)."""
    if cgroup is None:
        return
    release = getattr(guardian, "release_cgroup", None)
    if release is not None:
        release(cgroup, unused)
    else:
        cgroup.kill()
        cgroup.remove()


def children_of_self() -> list[int]:
    """The calling process's children (of all its threads), from ``/proc``."""
    found: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                found += [int(k) for k in f.read().split()]
        except (OSError, ValueError):
            continue
    return found


def set_child_subreaper() -> bool:
    """Make the calling process a child subreaper (``PR_SET_CHILD_SUBREAPER``): the
    orphans among its descendants are reparented to it rather than to init. For a
    process whose every child is ours to reap (the fork server); the supervising
    process, which hosts the program's own subprocesses too, becomes one only through
    :mod:`otp_py.runtime.reaper` and its rule of which children to reap. True if set."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (AttributeError, OSError):
        return False
