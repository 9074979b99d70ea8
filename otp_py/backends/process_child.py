"""The child side of a process child: what runs first in the new process.

Before the target runs, the child:

* enters the cgroup of its own that its supervisor made for it, if any (see
  :mod:`otp_py.backends.containment`), so nothing it starts can escape a stop;
* becomes the leader of a new process group, so a stop or a kill reaches everything
  it starts (pool workers, shells and their children);
* asks the kernel to SIGKILL it if its parent dies (``PR_SET_PDEATHSIG``), and exits
  at once if the parent is already gone;
* turns SIGTERM into :class:`otp_py.Shutdown` raised in the main thread, so ``finally``
  blocks and context managers run on a graceful stop;
* answers heartbeat pings from a small responder thread, if asked to.

Whatever ends the target (a return, an exception, ``sys.exit``) is sent to the
supervisor over the child's pipe as an exit reason, traceback included.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

import attrs

from otp_py._core.reasons import Abnormal, Crashed, Exited, ExitReason, Normal, Shutdown
from otp_py._errors import Shutdown as ShutdownException
from otp_py.backends.containment import enter_cgroup
from otp_py.backends.context import ChildContext, set_current
from otp_py.backends.reasons import from_exception

__all__ = ["ChildOptions", "bootstrap", "line_buffered_stdout"]

_PR_SET_PDEATHSIG = 1


@attrs.frozen
class ChildOptions:
    path: tuple[str, ...]
    parent_pid: int
    heartbeat: bool = False
    stderr_fd: int | None = None  # fork: an inherited pipe to become fd 2
    stderr_conn: Any = None  # spawn, process classes: the same pipe, as a Connection
    stdout_conn: Any = None  # the same for fd 1, when its output is captured
    cgroup: str | None = None  # the cgroup.procs of the child's own cgroup, to enter
    # (name, value) pairs to set in its environment: its NOTIFY_SOCKET, WATCHDOG_USEC
    # (a process child is forked from a server, not given an environment to exec)
    environ: tuple[tuple[str, str], ...] = ()


def bootstrap(
    conn: Connection, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
    options: ChildOptions,
) -> None:
    """Run ``target(*args, **kwargs)`` as a supervised child process."""
    # First of all, before anything can be started from here: enter the child's own
    # cgroup, which all its descendants will share, whatever they do.
    enter_cgroup(options.cgroup)
    # A forked child inherits the supervisor's event-loop wakeup descriptor: every
    # signal it handled would also wake (and mislead) the supervisor's loop.
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    if options.stderr_fd is not None:
        os.dup2(options.stderr_fd, 2)
        os.close(options.stderr_fd)
    elif options.stderr_conn is not None:
        # A Connection travels to a spawned child (multiprocessing passes its fd).
        os.dup2(options.stderr_conn.fileno(), 2)
        options.stderr_conn.close()
    if options.stdout_conn is not None:
        os.dup2(options.stdout_conn.fileno(), 1)
        options.stdout_conn.close()
        line_buffered_stdout()
    _become_group_leader()
    _die_with_parent(options.parent_pid)
    if options.environ:
        os.environ.update(options.environ)
        if "WATCHDOG_USEC" in os.environ:  # (sd_watchdog_enabled(3) checks it is us)
            os.environ["WATCHDOG_PID"] = str(os.getpid())
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(message)

    # A stop that arrives while we set up must still end the child as a stop: hold
    # SIGTERM back until we are inside the ``try`` that turns it into a reason.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    signal.signal(signal.SIGTERM, _raise_shutdown)
    os.register_at_fork(after_in_child=_reset_in_grandchild)
    set_current(ChildContext(options.path, on_ready=lambda: send(("ready",)),
                             send=send, receive=conn.recv_bytes))
    if options.heartbeat:
        threading.Thread(target=_answer_pings, args=(conn, send), name="otp:heartbeat",
                         daemon=True).start()
    reason: ExitReason = Normal()
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        target(*args, **kwargs)
    except BaseException as exc:  # every end becomes a reason
        reason = from_exception(exc)
        if isinstance(reason, Crashed):
            _ = reason.traceback  # format it here, where the source is, before it travels
    finally:
        # A second SIGTERM must not interrupt the report of the first.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _report(send, reason)
    with send_lock:  # (a thread of the child may still be sending)
        conn.close()
    _flush_std_streams()
    # A subtree run here copied its children's stderr through a writer thread; the
    # process ends with os._exit (no atexit hooks): give the copies their moment.
    copies = sys.modules.get("otp_py.backends.output")
    if copies is not None:
        copies.flush()
    if isinstance(reason, Exited):
        raise SystemExit(reason.code)
    if isinstance(reason, Normal | Shutdown):
        return
    raise SystemExit(1)


def line_buffered_stdout() -> None:
    """A captured stdout is a pipe, which Python buffers by blocks: a child printing
    a line now and then would show nothing in its log for minutes. Line buffering
    makes each ``print`` reach the log as it is made, as on a terminal."""
    stream = sys.stdout
    if stream is not None:
        with contextlib.suppress(Exception):
            stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]


def _flush_std_streams() -> None:
    # A child of a program started with a standard stream closed (``run >&-``) has
    # None for it; a reader that has left makes a flush fail. Neither may turn an
    # end already reported into a traceback and exit status 1.
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.flush()


def _report(send: Any, reason: ExitReason) -> None:
    try:
        send(("exit", reason))
    except (OSError, ValueError):
        pass  # the supervisor is gone; nobody to tell
    except Exception:  # an unpicklable term: send what can be sent
        with contextlib.suppress(Exception):
            send(("exit", Abnormal(repr(reason))))


def _raise_shutdown(signum: int, frame: Any) -> None:
    raise ShutdownException()


def _reset_in_grandchild() -> None:
    # Processes the child forks (pool workers...) are not supervised children: the
    # SIGTERM-as-Shutdown handler is ours, not theirs. Their own handlers stay.
    if signal.getsignal(signal.SIGTERM) is _raise_shutdown:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    set_current(None)


def _become_group_leader() -> None:
    with contextlib.suppress(OSError):  # already a session or group leader
        os.setpgid(0, 0)


def _load_libc() -> Any:
    # The running program's own symbols include libc's; no library search (which
    # would run ldconfig) at child start.
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc() if sys.platform.startswith("linux") else None


def _die_with_parent(parent_pid: int) -> None:
    if _LIBC is not None:
        with contextlib.suppress(AttributeError, OSError):
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid and parent_pid != 0:
        # With fork or spawn our parent is the supervisor; if it is already gone,
        # nobody supervises us. (With the fork server, the parent is the server.)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            pass


def _answer_pings(conn: Connection, send: Any) -> None:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message == ("ping",):
            try:
                send(("pong",))
            except (OSError, ValueError):
                return
