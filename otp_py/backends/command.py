"""The command backend: an external program in a process group of its own.

Started with :class:`subprocess.Popen` (``process_group=0``); its end is seen through
a pidfd registered with the event loop, then it is reaped at once. A graceful stop
sends the spec's ``stop_signal`` (default SIGTERM) to its whole group, a kill
SIGKILL; leftovers of the group are killed once it has ended.

Where the runtime provides a cgroup (see :mod:`otp_py.runtime.containment`), the
program enters it between fork and exec, so all it ever starts stays in it, even
what leaves the process group; the leftovers are killed with ``cgroup.kill``. (The
entry is a ``preexec_fn``, which costs a start its ``vfork``: a few milliseconds
more per start in a large process. Moving the program in once started would be
cheaper but leaves a window: measured on a loaded machine, a shell's daemon was out
of reach before the move.)
Elsewhere, the descendants found under it just before a stop or a kill (whatever
their group) are killed once it has ended.

With ``ready=True`` it gets a notify socket (``$NOTIFY_SOCKET``, see
:mod:`otp_py.runtime.notify`): it is up at its ``READY=1``, not at exec. A forking
daemon that names its real process with ``MAINPID=`` is followed: when the program
it ran first exits, the child lives on as that process (watched through a pidfd of
its own), which stops and kills reach too.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
from typing import Any

from otp_py._core.reasons import Abnormal, ExitReason, Killed, Shutdown
from otp_py.backends import containment, reasons
from otp_py.backends.base import BackendEnv, ChildSink
from otp_py.backends.output import ChildStreams

__all__ = ["CommandRunner", "start"]


class CommandRunner:
    def __init__(self, spec: Any, sink: ChildSink, env: BackendEnv) -> None:
        self._spec = spec
        self._sink = sink
        self._env = env
        self._stop_signal = spec.stop_signal if spec.stop_signal is not None else signal.SIGTERM
        self._stop_requested = False
        self._killed = False
        self._reported = False
        self._leftovers: list[int] = []  # pidfds of descendants seen at a stop
        self._notify = env.notify  # its notify socket (ready=True), or None
        self._ready = self._notify is None
        self._main_pid: int | None = None  # MAINPID=: the daemon it forked
        self._main_pidfd: int | None = None
        self._watched_main: int | None = None  # its group, given to the guardian
        environment = None
        if spec.env or self._notify is not None:
            environment = {**os.environ, **(spec.env or {})}
            if self._notify is not None:
                environment.update(self._notify.environ())
        # (its stdout and stderr: pipes to its log files and stderr tail, or None)
        self._streams = ChildStreams(spec, env, sink)
        self._cgroup = containment.new_cgroup(env.guardian)
        enter = self._cgroup.opener() if self._cgroup is not None else None
        try:
            self._process = subprocess.Popen(
                list(spec.start),
                cwd=spec.cwd,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=self._streams.stdout_w,
                stderr=self._streams.stderr_w,
                process_group=0,
                close_fds=True,
                # one write() to a descriptor opened beforehand: nothing that a
                # thread holding a lock at the fork could block (see Cgroup.opener)
                preexec_fn=enter,  # noqa: PLW1509
            )
        except BaseException:
            self._streams.abort()
            # the program could not be started: the child that entered the cgroup
            # has exited and been reaped by Popen, so the cgroup is empty, reusable
            containment.release_cgroup(env.guardian, self._cgroup, unused=True)
            raise
        finally:
            containment.close_opener(enter)
        self.pid = self._process.pid
        self._streams.started(self.pid)
        if env.guardian is not None:
            env.guardian.watch(self.pid)
        self._pidfd = os.pidfd_open(self.pid)
        env.loop.add_reader(self._pidfd, self._on_exit)
        if self._notify is not None:
            self._notify.on_ready = self._notified_ready
            self._notify.on_main_pid = self._follow
            self._notify.attach(self.pid)

    def _notified_ready(self) -> None:
        if not self._ready and not self._reported:
            self._ready = True
            self._sink.up()

    def _follow(self, pid: int) -> bool:
        """``MAINPID=pid``: the child is now that process (the notify socket checked
        that it is one of the child's own)."""
        if self._reported:
            return False
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return False
        if self._main_pidfd is not None:
            with contextlib.suppress(ValueError, OSError):
                self._env.loop.remove_reader(self._main_pidfd)
            os.close(self._main_pidfd)
        self._main_pid, self._main_pidfd = pid, pidfd
        guardian = self._env.guardian
        if guardian is not None and self._watched_main is not None:
            guardian.unwatch(self._watched_main)
            self._watched_main = None
        with contextlib.suppress(OSError):  # a daemon leading a group of its own
            if guardian is not None and pid != self.pid and os.getpgid(pid) == pid:
                guardian.watch(pid)  # dies with the supervisor, as the child's group
                self._watched_main = pid
        return True

    def _on_exit(self) -> None:
        self._env.loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        if self._notify is not None:  # what it said just before it exited counts
            self._notify.drain()
        returncode = self._process.wait()
        if self._main_pidfd is not None and not _ended(self._main_pidfd):
            # A forking daemon's first process is done; the child lives on as the
            # process it named: its end is the child's end.
            self._env.loop.add_reader(self._main_pidfd, self._on_main_exit)
            return
        if self._main_pidfd is not None:  # (it named a process that has ended too)
            os.close(self._main_pidfd)
            self._main_pidfd = None
        self._finish(returncode)

    def _on_main_exit(self) -> None:
        fd, pid = self._main_pidfd, self._main_pid
        assert fd is not None and pid is not None
        self._env.loop.remove_reader(fd)
        returncode = _status(fd)  # (None: not ours to reap; its status is unknown)
        os.close(fd)
        self._main_pidfd = None
        self._finish(returncode, pid)

    def _finish(self, returncode: int | None, main_pid: int | None = None) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        if main_pid is not None:
            with contextlib.suppress(OSError):
                if os.getpgid(main_pid) == main_pid:
                    os.killpg(main_pid, signal.SIGKILL)
        containment.kill_pidfds(self._leftovers)
        self._leftovers = []
        containment.release_cgroup(self._env.guardian, self._cgroup)
        if self._env.guardian is not None:
            self._env.guardian.unwatch(self.pid)
            if self._watched_main is not None:
                self._env.guardian.unwatch(self._watched_main)
        self._reported = True
        stop_signal = int(self._stop_signal)
        if (
            self._stop_requested
            and not self._killed
            and returncode in (0, -stop_signal, 128 + stop_signal, None)
        ):
            reason: ExitReason = Shutdown()
        elif returncode is None and self._killed:
            reason = Killed()
        elif returncode is None:
            reason = Abnormal(f"its main process {main_pid} ended; its exit status is not "
                              "known (it was not a child of the supervisor)")
        else:
            reason = reasons.from_status(
                returncode,
                stop_requested=self._stop_requested,
                killed=self._killed,
                stop_signal=stop_signal,
            )
        tail = self._streams.close(reason)
        if self._ready:
            self._sink.down(reason, tail)
        else:  # it ended before its READY=1
            self._sink.start_failed(reason)

    def _signal(self, number: int) -> None:
        if self._reported:
            return
        if self._cgroup is None:
            # Descendants that left the group, found while their parents live:
            # killed once the command has ended (a cgroup would hold them anyway).
            self._leftovers += containment.pidfds(containment.descendants(self.pid))
        if self._main_pidfd is not None:  # (MAINPID=: the daemon, and its group)
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._main_pidfd, number)
            with contextlib.suppress(OSError):
                if self._main_pid is not None and os.getpgid(self._main_pid) == self._main_pid:
                    os.killpg(self._main_pid, number)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, number)
        # A command that left the group it was made to lead (setpgid into another)
        # is not reached through it: signalled alone too (its pid is still its own,
        # not yet reaped), or a stop would wait on it forever without a cgroup.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(self.pid) != self.pid:
                os.kill(self.pid, number)
        if number == signal.SIGKILL and self._cgroup is not None:
            self._cgroup.kill()

    def stop(self) -> None:
        self._stop_requested = True
        self._signal(self._stop_signal)
        if self._stop_signal not in (signal.SIGCONT, signal.SIGKILL):
            # A stopped command (SIGSTOP, a debugger's SIGTSTP) keeps its stop signal
            # pending until it runs again: SIGCONT right after, as systemd sends it,
            # so a frozen child stops at once instead of at its shutdown timeout.
            self._signal(signal.SIGCONT)

    def kill(self) -> None:
        self._killed = True
        self._signal(signal.SIGKILL)

    def describe(self) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        if self._notify is not None:
            facts.update(self._notify.describe())
        pid = self._main_pid if self._main_pid is not None else self.pid
        facts.update(pid=pid, argv=list(self._spec.start))
        return facts


def _ended(pidfd: int) -> bool:
    """Whether the process of ``pidfd`` has ended (a pidfd is readable then)."""
    poller = select.poll()  # (not select.select: a descriptor may be above 1023)
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


def _status(pidfd: int) -> int | None:
    """The return code (negative: a signal) of the ended process of ``pidfd`` if
    this process may reap it (it was adopted: we are a subreaper), else None."""
    try:
        result = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
    except (ChildProcessError, OSError):
        return None
    if result is None:
        return None
    if result.si_code == os.CLD_EXITED:
        return int(result.si_status)
    return -int(result.si_status)


def start(spec: Any, sink: ChildSink, env: BackendEnv) -> CommandRunner:
    runner = CommandRunner(spec, sink, env)
    if runner._ready:  # (else: at its READY=1)
        sink.up()
    return runner
