"""The process backend: a callable run in a new OS process.

The child runs :func:`otp_py.backends.process_child.bootstrap` first (process group,
parent-death signal, SIGTERM as :class:`otp_py.Shutdown`, heartbeat responder), then
the target (a subtree running as the child also forwards its reports over the
child's pipe). Its end is seen the moment it happens: a pidfd (fork, spawn) or the fork
server's status pipe (forkserver) is registered with the event loop. Its exit reason
comes over its pipe (an exception's type, message and traceback text); failing that,
from its exit status or the signal that killed it.

A graceful stop sends SIGTERM to the child (its code then stops what it started, as a
pool's ``with`` block does), a kill SIGKILL to its whole process group; once the child
has ended, whatever is left of its group is killed too, so grandchildren never outlive
it (systemd calls this ``KillMode=mixed``). The process-wide guardian kills the group if the
supervising process dies first.

Descendants that leave the group (``setsid``, a daemonising double fork) are reached
too: where the runtime provides a cgroup (:mod:`otp_py.runtime.containment`) the child
enters it before running anything, a kill and the clean-up after its end are a
``cgroup.kill``, and the guardian kills the cgroup if the supervisor dies. Elsewhere,
the descendants found under the child just before a stop or a kill are killed once
it has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import struct
from multiprocessing.connection import Connection
from typing import Any

import attrs

from otp_py._core.reasons import ExitReason, Hung
from otp_py._core.reports import Report
from otp_py._errors import SupervisorNotRunningError
from otp_py.backends import containment, reasons
from otp_py.backends.base import BackendEnv, ChildSink, settle_reply
from otp_py.backends.output import ChildStreams
from otp_py.backends.process_child import ChildOptions, bootstrap
from otp_py.backends.zygote import ForkServer

__all__ = ["DEFAULT_START_METHOD", "ProcessRunner", "start"]

DEFAULT_START_METHOD = "forkserver"
"""otp_py's own fork server (:mod:`otp_py.backends.zygote`): safe in a process that
runs threads (unlike fork), and as cheap as a fork once the target is imported."""

_STATUS = struct.Struct("!i")

logger = logging.getLogger("otp_py")


class _Launched:
    """A child started through multiprocessing (fork, spawn, or a process_class)."""

    def __init__(self, process: Any) -> None:
        self.process = process
        self.pid: int = process.pid
        method = getattr(getattr(process, "_popen", None), "method", "fork")
        self._pidfd: int | None = None
        if method in ("fork", "spawn"):
            self._pidfd = os.pidfd_open(self.pid)
            self.exit_fd: int = self._pidfd
        else:
            self.exit_fd = process.sentinel

    def returncode(self) -> int:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self.process.join()
        code = self.process.exitcode
        with contextlib.suppress(ValueError):
            self.process.close()
        return int(code) if code is not None else -signal.SIGKILL


class _Forked:
    """A child forked by otp_py's fork server, its parent: the server reaps it at
    once and writes its exit code to the child's status pipe, which the event loop
    watches. When the supervisor hears of the end, the child is already reaped.

    (A pidfd would wake us a little earlier, before the reap, but then a child could
    be reported ended while still a zombie; measured, the gain was within noise.)"""

    def __init__(self, pid: int, status_fd: int) -> None:
        self.pid = pid
        self.exit_fd = status_fd

    def returncode(self) -> int:
        try:
            data = os.read(self.exit_fd, _STATUS.size)
        finally:
            os.close(self.exit_fd)
        if len(data) == _STATUS.size:
            return int(_STATUS.unpack(data)[0])
        return -signal.SIGKILL  # the fork server died before it could tell


class ProcessRunner:
    def __init__(self, spec: Any, sink: ChildSink, env: BackendEnv) -> None:
        self._spec = spec
        self._sink = sink
        self._env = env
        self._ready = not spec.ready
        self._notify = env.notify  # its notify socket (ready=True), or None
        self._reported = False
        self._stop_requested = False
        self._killed = False
        self._shipped: ExitReason | None = None
        self._exit_fd: int | None = None
        self._heartbeat: asyncio.TimerHandle | None = None
        self._ping_sent: float | None = None  # when the unanswered ping went out
        self._calls: dict[int, asyncio.Future[Any]] = {}  # calls to a subtree in the child
        self._call_ids = itertools.count(1)
        self.pid: int | None = None
        self._cgroup: containment.Cgroup | None = None
        self._leftovers: list[int] = []  # pidfds of descendants seen at a stop

    def launch(self) -> None:
        self._cgroup = containment.new_cgroup(self._env.guardian)
        try:
            self._launch_in_cgroup()
        except BaseException:
            containment.release_cgroup(self._env.guardian, self._cgroup)
            self._cgroup = None
            raise

    def _launch_in_cgroup(self) -> None:
        spec = self._spec
        notify = self._notify
        options = ChildOptions(
            path=self._env.path, parent_pid=os.getpid(), heartbeat=spec.heartbeat is not None,
            cgroup=self._cgroup.procs if self._cgroup is not None else None,
            environ=tuple(notify.environ().items()) if notify is not None else (),
        )
        method = spec.start_method or DEFAULT_START_METHOD
        # (its stdout and stderr: pipes to its log files and stderr tail, or None)
        streams = ChildStreams(spec, self._env, self._sink)
        parent_conn, child_conn = multiprocessing.Pipe(duplex=True)
        try:
            if spec.process_class is None and method == "forkserver":
                self._child: _Launched | _Forked = self._fork(child_conn, options, streams)
            else:
                options = attrs.evolve(options, **_connections(streams))
                try:
                    self._child = self._launch(spec, method, child_conn, options)
                finally:
                    for conn in (options.stdout_conn, options.stderr_conn):
                        if conn is not None:
                            conn.close()
        except BaseException:
            parent_conn.close()
            streams.abort()
            raise
        finally:
            child_conn.close()
            streams.close_child_ends()
        self._streams = streams
        streams.started(self._child.pid)
        self._conn: Connection = parent_conn
        self.pid = self._child.pid
        if self._env.guardian is not None:
            self._env.guardian.watch(self.pid)
        loop = self._env.loop
        self._exit_fd = self._child.exit_fd
        loop.add_reader(self._exit_fd, self._on_exit)
        loop.add_reader(parent_conn.fileno(), self._on_message)
        if spec.heartbeat is not None:
            self._heartbeat = loop.call_later(spec.heartbeat.interval, self._ping)
        if notify is not None:  # READY=1 there is as good as notify_ready()
            notify.on_ready = self._notified_ready
            notify.attach(self.pid)

    def _fork(
        self, child_conn: Connection, options: ChildOptions, streams: ChildStreams
    ) -> _Forked:
        spec = self._spec
        status_r, status_w = os.pipe()
        try:
            pid = ForkServer.shared().spawn(
                spec.start, tuple(spec.args), dict(spec.kwargs), options,
                child_conn.fileno(), status_w, streams.stderr_w, streams.stdout_w,
            )
        except BaseException:
            os.close(status_r)
            raise
        finally:
            os.close(status_w)
        return _Forked(pid, status_r)

    def _launch(
        self, spec: Any, method: str, child_conn: Connection, options: ChildOptions
    ) -> _Launched:
        if spec.process_class is not None:
            process_class = spec.process_class
        else:
            process_class = multiprocessing.get_context(method).Process  # type: ignore[attr-defined]
        process = process_class(
            target=bootstrap,
            args=(child_conn, spec.start, tuple(spec.args), dict(spec.kwargs), options),
            name="otp:" + "/".join(self._env.path),
        )
        process.daemon = False  # daemonic processes may not start children (pools)
        process.start()
        return _Launched(process)

    # -- messages from the child

    def _on_message(self) -> None:
        try:
            data = self._conn.recv_bytes()
        except (EOFError, OSError):
            self._stop_reading()
            return
        self._receive(data)

    def _receive(self, data: bytes) -> None:
        """Handle one message from the child. One that cannot be read (its pickle
        names a class this process cannot build) is logged and skipped: it must not
        keep the child's other messages, or its end, from being handled."""
        try:
            self._handle(pickle.loads(data))
        except Exception:
            logger.exception("otp_py: a message from child %s could not be handled",
                             self._env.name)

    def _handle(self, message: Any) -> None:
        kind = message[0]
        if kind == "ready":
            self._notified_ready()
        elif kind == "pong":
            self._ping_sent = None  # answered
        elif kind == "exit":
            self._shipped = message[1]
        elif kind == "report":
            self._forwarded(message[1])
        elif kind == "reply":
            settle_reply(self._calls, message, self._env.name)

    def _notified_ready(self) -> None:
        if not self._ready and not self._reported:
            self._ready = True
            self._sink.up()

    def _forwarded(self, report: Any) -> None:
        """A report from a subtree running in this child (its paths are already the
        ones of this tree)."""
        if isinstance(report, Report):
            self._sink.report(report)

    async def call(self, path: tuple[str, ...], request: Any) -> Any:
        """Ask the supervisor at ``path`` (at or under this child, a subtree running
        in a process of its own) and wait for its answer."""
        where = "/".join(path)
        if self._reported:
            raise SupervisorNotRunningError(f"no running supervisor at {where!r}")
        call_id = next(self._call_ids)
        try:
            # (the request travels pickled inside the message: one the subtree
            # cannot read is answered as an error, not lost)
            message = pickle.dumps(("call", call_id, pickle.dumps((path, request))))
        except Exception as exc:
            raise TypeError(f"cannot send this call to the subtree at {where!r} (it runs "
                            f"in a process of its own): {exc}") from exc
        future: asyncio.Future[Any] = self._env.loop.create_future()
        self._calls[call_id] = future
        try:
            try:
                self._conn.send_bytes(message)
            except (OSError, ValueError) as exc:
                raise SupervisorNotRunningError(
                    f"no running supervisor at {where!r}") from exc
            return await future
        finally:
            self._calls.pop(call_id, None)  # answered, failed or given up by the caller

    def _fail_calls(self) -> None:
        calls, self._calls = self._calls, {}
        for future in calls.values():
            if not future.done():
                future.set_exception(SupervisorNotRunningError(
                    f"the subtree at {'/'.join(self._env.path)!r} has exited"))

    def _stop_reading(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._env.loop.remove_reader(self._conn.fileno())

    # -- the end

    def _on_exit(self) -> None:
        loop = self._env.loop
        if self._exit_fd is not None:
            loop.remove_reader(self._exit_fd)
            self._exit_fd = None
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self._notify is not None:  # (and in its notify socket)
            self._notify.drain()
        # Whatever the child said before it died is still in the pipe.
        with contextlib.suppress(EOFError, OSError, ValueError):
            while self._conn.poll(0):
                self._receive(self._conn.recv_bytes())
        self._stop_reading()
        self._conn.close()
        self._fail_calls()
        returncode = self._child.returncode()
        self._cleanup_group()
        reason = self._reason(returncode)
        tail = self._streams.close(reason)
        self._reported = True
        if self._ready:
            self._sink.down(reason, tail)
        else:
            self._sink.start_failed(reason)

    def _reason(self, returncode: int) -> ExitReason:
        if self._killed and returncode == -signal.SIGKILL:
            return reasons.from_status(returncode, stop_requested=True, killed=True)
        if self._shipped is not None:
            return self._shipped
        return reasons.from_status(
            returncode, stop_requested=self._stop_requested, killed=self._killed
        )

    def _cleanup_group(self) -> None:
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)  # grandchildren left in its group
        containment.kill_pidfds(self._leftovers)  # and those that left it
        self._leftovers = []
        containment.release_cgroup(self._env.guardian, self._cgroup)
        self._cgroup = None
        if self._env.guardian is not None:
            self._env.guardian.unwatch(pid)

    # -- requests from the supervisor

    def stop(self) -> None:
        """SIGTERM to the child alone: it becomes :class:`otp_py.Shutdown` in its main
        thread, and the child's own code stops what it started (a pool's ``with``
        block terminates its workers in order). Signalling the whole group would kill
        pool workers under the pool and deadlock its ``terminate()``. Whatever is left
        of the group is killed once the child has ended, or at the shutdown timeout."""
        self._stop_requested = True
        pid = self.pid
        if pid is not None and not self._reported:
            self._note_descendants(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
                os.kill(pid, signal.SIGCONT)  # a stopped child takes its SIGTERM now

    def _note_descendants(self, pid: int) -> None:
        """Without a cgroup: remember the descendants that live now, whatever their
        group, to kill them once the child has ended (a cgroup holds them anyway)."""
        if self._cgroup is None:
            self._leftovers += containment.pidfds(containment.descendants(pid))

    def kill(self) -> None:
        """SIGKILL to the child's whole process group (and the child, should it not
        lead a group yet)."""
        self._killed = True
        pid = self.pid
        if pid is None or self._reported:
            return
        self._note_descendants(pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        if self._cgroup is not None:
            self._cgroup.kill()

    def describe(self) -> dict[str, Any]:
        facts = self._notify.describe() if self._notify is not None else {}
        return {**facts, "pid": self.pid}

    # -- heartbeat

    def _ping(self) -> None:
        """Every interval: a child silent for ``timeout`` since the ping it has not
        answered is hung; otherwise ping it (if it has answered the last one).

        Silence is counted from the unanswered ping, not from the last answer: when
        the supervisor's own loop stalls, no ping goes out, and the child is not
        blamed for the gap. (Answers that arrived during a stall are read before this
        timer runs: asyncio handles I/O before timers.)"""
        self._heartbeat = None
        if self._reported:
            return
        loop = self._env.loop
        now = loop.time()
        timeout = self._spec.heartbeat.timeout
        if self._ping_sent is not None:
            silent = now - self._ping_sent
            if silent > timeout:
                self._sink.hung(Hung(
                    f"no answer to a ping for {silent:.3g} s (timeout {timeout:g} s)"))
                return
        else:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(("ping",))
                self._ping_sent = now
        self._heartbeat = loop.call_later(self._spec.heartbeat.interval, self._ping)


def _connections(streams: ChildStreams) -> dict[str, Any]:
    """The child's ends of its output pipes as Connections, which travel to a spawned
    child (multiprocessing passes their descriptors); the caller closes them."""
    return {f"{name}_conn": Connection(os.dup(fd))
            for name, fd in (("stdout", streams.stdout_w), ("stderr", streams.stderr_w))
            if fd is not None}


def start(spec: Any, sink: ChildSink, env: BackendEnv) -> ProcessRunner:
    runner = ProcessRunner(spec, sink, env)
    runner.launch()
    if not spec.ready:
        sink.up()
    return runner
