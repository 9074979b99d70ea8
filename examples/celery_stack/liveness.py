"""Is a Celery worker alive? Read its heartbeat file (written by ``app.Heartbeat``).

Each worker's main process touches ``<dir>/heartbeat/<node name>`` from its event
loop every half second, writing its pid and the time. A worker is *alive* when that
file is fresh, or when the process that wrote it is gone (a new worker is starting
and has not written yet: nothing to judge). It is *frozen* when the process that
wrote the file still exists but has not touched it for ``stale`` seconds: its loop
no longer runs (SIGSTOP, a deadlock, a blocking call in the main process).

:func:`alive` is the check; :func:`watch` runs it in a loop as a sidecar and kills a
frozen worker's main process (SIGKILL), so that its supervisor restarts it. The
sidecar is the stand-in for a liveness probe on the worker's own child spec, used
where the installed otp_py has no probes (see tree.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

STALE = 2.0  # seconds without a heartbeat that make a live worker frozen


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


def watch(directory: str, workers: Sequence[str], stale: float = STALE,
          every: float = 0.5) -> None:
    """The sidecar: every ``every`` seconds, SIGKILL the main process of a frozen worker.

    Killing the main process (not asking it to stop: a stopped process cannot act on
    SIGTERM) makes it exit at once, so its supervisor sees the exit and restarts it;
    the pool children's process group is the supervisor's to clean up.
    """
    while True:
        for worker in workers:
            pid = frozen(directory, worker, stale)
            if pid is not None:
                print(f"liveness: {worker} (pid {pid}) has not beaten for more than "
                      f"{stale:g} s: killing it", file=sys.stderr, flush=True)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(every)
