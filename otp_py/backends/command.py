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
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any

from otp_py._core.reasons import ExitReason, Shutdown
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
        environment = None
        if spec.env:
            environment = {**os.environ, **spec.env}
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

    def _on_exit(self) -> None:
        self._env.loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        returncode = self._process.wait()
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        containment.kill_pidfds(self._leftovers)
        self._leftovers = []
        containment.release_cgroup(self._env.guardian, self._cgroup)
        if self._env.guardian is not None:
            self._env.guardian.unwatch(self.pid)
        self._reported = True
        stop_signal = int(self._stop_signal)
        if (
            self._stop_requested
            and not self._killed
            and returncode in (0, -stop_signal, 128 + stop_signal)
        ):
            reason: ExitReason = Shutdown()
        else:
            reason = reasons.from_status(
                returncode,
                stop_requested=self._stop_requested,
                killed=self._killed,
                stop_signal=stop_signal,
            )
        tail = self._streams.close(reason)
        self._sink.down(reason, tail)

    def _signal(self, number: int) -> None:
        if self._reported:
            return
        if self._cgroup is None:
            # Descendants that left the group, found while their parents live:
            # killed once the command has ended (a cgroup would hold them anyway).
            self._leftovers += containment.pidfds(containment.descendants(self.pid))
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

    def kill(self) -> None:
        self._killed = True
        self._signal(signal.SIGKILL)

    def describe(self) -> dict[str, Any]:
        return {"pid": self.pid, "argv": list(self._spec.start)}


def start(spec: Any, sink: ChildSink, env: BackendEnv) -> CommandRunner:
    runner = CommandRunner(spec, sink, env)
    sink.up()
    return runner
