"""Is a Celery worker up, and alive? Read its heartbeat file (written by ``app.Heartbeat``).

Each worker's main process touches ``<dir>/heartbeat/<node name>`` from its event
loop every half second, writing its pid and the time. So:

* a worker is *ready* when a live process wrote that file recently: its main loop
  runs, connected to the broker (a file left by the worker it replaces names a dead
  pid, and does not count);
* a worker is *frozen* when the process that wrote the file still exists but has not
  touched it for ``STALE`` seconds: its loop no longer runs (SIGSTOP, a deadlock, a
  blocking call in the main process). It is *alive* otherwise (a file whose writer
  is gone means a new worker is starting: nothing to judge yet).

``w1`` and ``w2`` are the probe targets of the tree (``otp_py.probes.Call``):
``examples.celery_stack.liveness:w1.alive`` is w1's liveness probe (``w1.ready`` would
be its readiness probe; tree.toml says why the tree goes without). A probe runs in the
supervising process, which finds the stack's directory in ``CELERY_STACK_DIR`` (the
chaos driver and the README set it for ``otp-py run``).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

STALE = 2.5  # seconds without a heartbeat that make a live worker frozen


def heartbeat(directory: str | os.PathLike[str], worker: str) -> tuple[int, float] | None:
    """The (pid, time) of worker ``w1``'s last heartbeat (file ``w1@<host>``), or None."""
    newest: tuple[int, float] | None = None
    for path in Path(directory, "heartbeat").glob(f"{worker}@*"):
        try:
            fields = path.read_text().split()
            beat = (int(fields[0]), float(fields[1]))
        except (OSError, ValueError, IndexError):
            continue  # being written, or gone: the next look will tell
        if newest is None or beat[1] > newest[1]:
            newest = beat
    return newest


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (ended, not yet reaped) has no loop to run either: it is not frozen
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def frozen(directory: str | os.PathLike[str], worker: str, stale: float = STALE,
           now: float | None = None) -> int | None:
    """The pid of worker ``worker``'s main process if it is frozen, else None."""
    beat = heartbeat(directory, worker)
    if beat is None:
        return None
    pid, when = beat
    now = time.time() if now is None else now
    if now - when > stale and _exists(pid):
        return pid
    return None


def alive(directory: str | os.PathLike[str], worker: str, stale: float = STALE) -> bool:
    """False only for a worker whose main process exists but has stopped beating."""
    return frozen(directory, worker, stale) is None


def ready(directory: str | os.PathLike[str], worker: str, stale: float = STALE) -> bool:
    """True once a live main process of ``worker`` has beaten within ``stale`` s."""
    beat = heartbeat(directory, worker)
    return beat is not None and time.time() - beat[1] <= stale and _exists(beat[0])


class Worker:
    """The probe targets of one worker: ``ready`` (readiness), ``alive`` (liveness).

    The stack's directory is read from ``CELERY_STACK_DIR`` at each call: a probe
    target is named by import path in the tree file, so it cannot take arguments.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Worker({self.name!r})"

    @staticmethod
    def directory() -> str:
        try:
            return os.environ["CELERY_STACK_DIR"]
        except KeyError:
            raise RuntimeError("CELERY_STACK_DIR is not set for the supervisor: the "
                               "worker probes read the heartbeat files there") from None

    def ready(self) -> bool:
        return ready(self.directory(), self.name)

    def alive(self) -> bool:
        return alive(self.directory(), self.name)


w1 = Worker("w1")
w2 = Worker("w2")
