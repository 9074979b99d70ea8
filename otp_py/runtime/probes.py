"""Running the readiness and liveness probes of a child on the tree's event loop.

A child with a probe gets a :class:`ProbedChild` between its backend and the tree:
to the backend it is the child's sink, to the tree the child's runner. It keeps the
backend's ``up`` until the readiness probe passes (the supervisor's start timer
meanwhile bounds the wait, as for ``ready=True``), then starts the liveness probe,
whose failures are counted by the pure :class:`~otp_py._core.probes.ProbeTracker`:
when it says *hung*, the child is reported hung and the supervisor's core stops and
restarts it like a child that missed its heartbeat. This module decides nothing.

**How attempts run.** One loop timer per probe waits for the next attempt; an attempt
is a task on the loop, bounded by the probe's ``timeout``:

* ``Tcp``, ``Http``: asyncio streams (a connect; for HTTP one request and the status
  line of the answer), closed at the end of the attempt whatever happens.
* ``Exec``: :class:`subprocess.Popen` in a process group (and, where the runtime
  provides them, a cgroup) of its own, its end seen
  through a pidfd registered with the loop (as the command backend does), its output
  read from a pipe as it comes (the last line completes the result); overrun or
  abandoned, the group is SIGKILLed, and the process is reaped when its pidfd says
  it has ended.
* ``Call``: an ``async def`` function is awaited in the task; a plain function runs
  in :class:`_CallPool`, a few daemon threads shared by the tree's plain-function
  probes (never a thread per probe).

**Nothing is left behind.** A child's probes end when it ends, and when it is asked to
stop or killed: the timer is cancelled, the running attempt cancelled (its socket
closed, its command killed). Each attempt, and each probe command until it is reaped,
counts as one of the tree's live runners, so a tree is not *done* while any of them
remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import queue
import signal
import socket
import subprocess
import threading
import urllib.parse
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from otp_py._core.probes import (
    AGAIN,
    HUNG,
    READY,
    Call,
    Exec,
    Http,
    Probe,
    ProbeStep,
    ProbeTracker,
    Tcp,
)
from otp_py._core.reasons import ExitReason, Hung
from otp_py.backends import containment
from otp_py.backends.base import BackendEnv, ChildSink, Runner

__all__ = ["ProbedChild", "has_probes", "watch"]

_STATUS_LINE_LIMIT = 8192
"""Bytes an HTTP status line may take; a longer one fails the attempt."""


def has_probes(spec: Any) -> bool:
    """Whether ``spec`` (a worker's, or a supervisor's: never) declares a probe."""
    return getattr(spec, "readiness", None) is not None or \
        getattr(spec, "liveness", None) is not None


def watch(spec: Any, sink: ChildSink, env: BackendEnv, tree: Any) -> ProbedChild:
    """The sink to hand the backend of a child with probes (see :class:`ProbedChild`)."""
    return ProbedChild(spec, sink, env, tree)


# --------------------------------------------------------------------- one attempt


class _ExecAttempt:
    """A probe command: started at once, its end reported through ``done``.

    Its pid is held by a :class:`subprocess.Popen` until it is reaped (so that the
    tree's child subreaper, if any, leaves it alone: see :mod:`otp_py.runtime.reaper`).
    Its standard output and error go to one pipe, read without blocking as they come;
    the end of what it wrote (:attr:`said`) completes the result's detail."""

    KEEP = 1024  # bytes of its output kept

    def __init__(self, argv: tuple[str, ...], loop: asyncio.AbstractEventLoop,
                 guardian: Any, hold: Callable[[], None], release: Callable[[], None]
                 ) -> None:
        self._loop = loop
        self._guardian = guardian
        self._release = release
        self.done: asyncio.Future[int] = loop.create_future()
        self._output = b""
        read_end, write_end = os.pipe()
        # In a cgroup of its own where there are cgroups, as a command child is:
        # what it starts cannot outlive the attempt, even a daemon leaving its group.
        self._cgroup = containment.new_cgroup(guardian)
        enter = self._cgroup.opener() if self._cgroup is not None else None
        try:
            self._process = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=write_end, stderr=write_end,
                process_group=0, close_fds=True,
                preexec_fn=enter)  # noqa: PLW1509  # (one write(): see Cgroup.opener)
        except BaseException:
            os.close(read_end)
            containment.release_cgroup(guardian, self._cgroup, unused=True)
            raise
        finally:
            os.close(write_end)
            containment.close_opener(enter)
        pid = self._process.pid
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except OSError:  # (out of descriptors): it cannot be watched, so it does not run
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            self._process.wait()
            os.close(read_end)
            containment.release_cgroup(guardian, self._cgroup)
            raise
        os.set_blocking(read_end, False)
        self._pipe: int | None = read_end
        hold()
        if guardian is not None:  # killed with its group if the supervisor dies
            guardian.watch(pid)
        loop.add_reader(read_end, self._read)
        loop.add_reader(self._pidfd, self._ended)

    def _read(self) -> None:
        while self._pipe is not None:
            try:
                chunk = os.read(self._pipe, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:  # every writer has gone
                self._close_pipe()
                return
            self._output = (self._output + chunk)[-self.KEEP:]

    def _close_pipe(self) -> None:
        if self._pipe is not None:
            self._loop.remove_reader(self._pipe)
            os.close(self._pipe)
            self._pipe = None

    @property
    def said(self) -> str:
        """The last line it wrote, cut to 200 characters ("" if it wrote nothing)."""
        lines = self._output.decode("utf-8", "replace").splitlines()
        last = next((line.strip() for line in reversed(lines) if line.strip()), "")
        last = "".join(c if c.isprintable() else "?" for c in last)
        return last if len(last) <= 200 else last[:197] + "..."

    def _ended(self) -> None:
        if self._pidfd is None:
            return
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        returncode = self._process.wait()  # (it has ended: this does not block)
        with contextlib.suppress(OSError):  # what it left in its group goes with it
            os.killpg(self._process.pid, signal.SIGKILL)
        containment.release_cgroup(self._guardian, self._cgroup)  # (and in its cgroup)
        self._read()  # what it wrote before it ended
        self._close_pipe()  # (a descendant elsewhere may hold it: not waited for)
        if self._guardian is not None:
            self._guardian.unwatch(self._process.pid)
        self._release()
        if not self.done.done():
            self.done.set_result(returncode)

    def kill(self) -> None:
        """Kill its group now; it is reaped when the loop sees it end."""
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.killpg(self._process.pid, signal.SIGKILL)
            if self._cgroup is not None:
                self._cgroup.kill()


def _exit_detail(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with status {returncode}"


async def _run_exec(probe: Exec, prober: _Prober) -> tuple[bool, str]:
    attempt = _ExecAttempt(probe.argv, prober.loop, prober.owner.guardian, prober.hold,
                           prober.release)
    try:
        returncode = await asyncio.shield(attempt.done)
    finally:
        attempt.kill()  # (a no-op once it has ended; at a timeout or a stop, the kill)
    said = attempt.said
    return returncode == 0, _exit_detail(returncode) + (f": {said}" if said else "")


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


def _host(probe: Probe) -> str | None:
    if isinstance(probe, Tcp):
        return probe.host
    if isinstance(probe, Http):
        return urllib.parse.urlsplit(probe.url).hostname or ""
    return None


def _resolves(probe: Probe) -> bool:
    """Whether ``probe`` connects to a name (not a numeric address) to resolve."""
    host = _host(probe)
    if host is None:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


async def _open(probe: Probe, host: str, port: int, prober: _Prober, **limit: Any
                ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to ``host:port``. A name is resolved in the probes' pool, not in
    the loop's default executor (which the tree's asyncio children share, and whose
    threads a hanging resolver would take one attempt after another), with at most
    one resolution of this probe out at a time."""
    if prober.pool is None:
        return await asyncio.open_connection(host, port, **limit)
    outcome = await prober.in_pool(
        lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    if outcome is None:
        raise OSError(f"still resolving {host} since an earlier attempt")
    ok, value = outcome
    if not ok:
        raise value
    error: Exception = OSError(f"{host} has no address")
    for family, _, _, _, address in value:
        try:
            return await asyncio.open_connection(address[0], port, family=family, **limit)
        except OSError as exc:  # (the next address, as asyncio's own connect does)
            error = exc
    raise error


async def _run_tcp(probe: Tcp, prober: _Prober) -> tuple[bool, str]:
    _, writer = await _open(probe, probe.host, probe.port, prober)
    await _close(writer)
    return True, "connected"


def _request(probe: Http) -> tuple[str, int, bytes]:
    parts = urllib.parse.urlsplit(probe.url)
    host = parts.hostname or ""
    port = parts.port or 80
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    authority = parts.netloc.rpartition("@")[2]
    lines = [f"GET {target} HTTP/1.1", f"Host: {authority}", "User-Agent: otp-py-probe",
             "Accept: */*", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in probe.headers]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


async def _run_http(probe: Http, prober: _Prober) -> tuple[bool, str]:
    host, port, request = _request(probe)
    reader, writer = await _open(probe, host, port, prober, limit=_STATUS_LINE_LIMIT)
    try:
        writer.write(request)
        await writer.drain()
        line = await reader.readline()
    finally:
        await _close(writer)
    parts = line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        shown = line[:80].decode("latin-1", "replace")
        return False, f"not an HTTP answer: {shown!r}" if line else "closed without an answer"
    status = int(parts[1])
    text = f"HTTP {status}" + (f" {parts[2].strip()}" if len(parts) > 2 else "")
    return 200 <= status < 400, text


def _verdict(result: Any) -> tuple[bool, str]:
    if result is False:
        return False, "returned False"
    return True, "returned " + (repr(result)[:80] if result is not None else "None")


async def _run_call(probe: Call, prober: _Prober) -> tuple[bool, str]:
    if probe.is_async:
        return _verdict(await probe.func())
    return await prober.call_in_pool(probe.func)


_RUN: dict[type[Probe], Callable[[Any, _Prober], Coroutine[Any, Any, tuple[bool, str]]]] = {
    Exec: _run_exec, Tcp: _run_tcp, Http: _run_http, Call: _run_call,
}


def _failure(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------- plain functions' threads


class _Job:
    """One call of a plain function in the pool."""

    __slots__ = ("func", "future", "key", "late", "running")

    def __init__(self, key: tuple[str, str], func: Callable[[], Any],
                 future: asyncio.Future[tuple[bool, Any]]) -> None:
        self.key = key
        self.func = func
        self.future = future
        self.late = False  # its attempt has ended (timed out, or the child stopped)
        self.running = False


class _CallPool:
    """A few daemon threads that run the plain-function probes of one loop.

    Shared by every child of the loop with such a probe, acquired when one starts and
    released when it ends: the threads are started on demand and asked to end when
    the last user has gone. Daemon threads, so that a function that never returns
    cannot hold up the interpreter's exit.

    At most :attr:`SIZE` threads do useful work; one still running a call whose
    attempt has ended (a function that blocks, maybe forever) is written off and
    does not count, so a few stuck functions cannot starve the other children's
    probes (their calls would wait in the queue, time out, and get healthy children
    reported hung). A probe has at most one call out at a time (:data:`_busy`, kept
    for the loop across the pool's lives and the child's restarts: the next attempt
    fails at once while it runs), so the threads stay bounded: :attr:`SIZE` plus one
    per probe whose function is stuck."""

    SIZE = 4
    _pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _CallPool] = \
        weakref.WeakKeyDictionary()
    _busy: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], _Job]] = \
        weakref.WeakKeyDictionary()
    _busy_lock = threading.Lock()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._waiting = 0  # jobs queued, not yet taken by a thread
        self._running = 0  # jobs being run
        self._stuck = 0  # of those, the late ones: their threads are written off
        self._users = 0

    @classmethod
    def acquire(cls, loop: asyncio.AbstractEventLoop) -> _CallPool:
        pool = cls._pools.get(loop)
        if pool is None:
            pool = cls._pools[loop] = cls(loop)
        pool._users += 1
        return pool

    def release(self) -> None:
        self._users -= 1
        if self._users == 0:
            self._pools.pop(self._loop, None)
            with self._lock:
                for _ in range(self._threads):
                    self._jobs.put(None)

    def submit(self, key: tuple[str, str], func: Callable[[], Any]) -> _Job | None:
        """Queue a call of ``func`` for probe ``key``; None if that probe's last call
        is still out."""
        with self._busy_lock:
            busy = self._busy.setdefault(self._loop, {})
            if key in busy:
                return None
            job = busy[key] = _Job(key, func, self._loop.create_future())
        with self._lock:
            self._waiting += 1
            self._jobs.put(job)
            self._grow()
        return job

    def abandon(self, job: _Job) -> None:
        """Its attempt has ended: a queued call is not run; a running one's thread
        is written off (and replaced, if calls are waiting)."""
        with self._lock:
            if job.late:
                return
            job.late = True
            if job.running:
                self._stuck += 1
                self._grow()

    def _grow(self) -> None:
        """(Under the lock.) A thread more if calls wait for a thread, and fewer
        than SIZE threads do useful work."""
        idle = self._threads - self._running
        if self._waiting > idle and self._threads - self._stuck < self.SIZE:
            self._threads += 1
            threading.Thread(target=self._work, name="otp_py-probe-call",
                             daemon=True).start()

    def _done(self, job: _Job) -> None:
        with self._busy_lock:
            busy = self._busy.get(self._loop)
            if busy is not None and busy.get(job.key) is job:
                del busy[job.key]

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                with self._lock:
                    self._threads -= 1
                return
            with self._lock:
                self._waiting -= 1
                skip = job.late
                job.running = not skip
                self._running += not skip
            if skip:  # its attempt is over: not worth running
                self._done(job)
                continue
            outcome: tuple[bool, Any]
            try:
                outcome = (True, job.func())
            except BaseException as exc:  # (SystemExit too: the future must be settled)
                outcome = (False, exc)
            with self._lock:
                job.running = False
                self._running -= 1
                if job.late:
                    self._stuck -= 1
            self._done(job)
            with contextlib.suppress(RuntimeError):  # (the loop has closed meanwhile)
                self._loop.call_soon_threadsafe(_settle, job.future, outcome)


def _settle(future: asyncio.Future[tuple[bool, Any]], outcome: tuple[bool, Any]) -> None:
    if not future.done():
        future.set_result(outcome)


# ---------------------------------------------------------------------- one probe


class _Prober:
    """One probe of one start of a child: its timer, its attempt, its tracker."""

    def __init__(self, owner: ProbedChild, probe: Probe, role: str,
                 on_verdict: Callable[[ProbeStep], None]) -> None:
        self.owner = owner
        self.loop = owner.loop
        self.probe = probe
        self.tracker = ProbeTracker(probe, role)
        self._on_verdict = on_verdict
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[tuple[bool, str]] | None = None
        self._began = 0.0
        self.closed = False
        self.pool: _CallPool | None = None
        if (isinstance(probe, Call) and not probe.is_async) or _resolves(probe):
            self.pool = _CallPool.acquire(self.loop)

    def hold(self) -> None:
        self.owner.tree.runner_started()

    def release(self) -> None:
        self.owner.tree.runner_ended()

    def start(self) -> None:
        if not self.closed:
            self._timer = self.loop.call_at(self.tracker.first_at(self.loop.time()),
                                            self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self.closed:
            return
        self._began = self.loop.time()
        self.hold()
        self._task = self.loop.create_task(self._attempt(), name=f"otp_py-probe-"
                                           f"{self.tracker.role}-{self.owner.name}")
        self._task.add_done_callback(self._attempted)

    async def _attempt(self) -> tuple[bool, str]:
        probe = self.probe
        try:
            return await asyncio.wait_for(_RUN[type(probe)](probe, self), probe.timeout)
        except TimeoutError:
            return False, f"no answer within {probe.timeout:g} s"
        except Exception as exc:
            return False, _failure(exc)

    def _attempted(self, task: asyncio.Task[tuple[bool, str]]) -> None:
        self._task = None
        self.release()
        if self.closed or task.cancelled():
            return
        ok, detail = task.result()
        step = self.tracker.record(ok, detail, self._began, self.loop.time())
        if step.verdict == AGAIN:
            assert step.next_at is not None
            self._timer = self.loop.call_at(step.next_at, self._fire)
        else:
            self._on_verdict(step)

    async def in_pool(self, func: Callable[[], Any]) -> tuple[bool, Any] | None:
        """Run ``func`` in the pool: (True, its result) or (False, its exception);
        None if this probe's last call is still out."""
        pool = self.pool
        assert pool is not None
        job = pool.submit((self.owner.name, self.tracker.role), func)
        if job is None:
            return None
        try:
            return await asyncio.shield(job.future)  # (a timeout leaves it running)
        except asyncio.CancelledError:
            pool.abandon(job)
            raise

    async def call_in_pool(self, func: Callable[[], Any]) -> tuple[bool, str]:
        outcome = await self.in_pool(func)
        if outcome is None:
            return False, "still running since an earlier attempt"
        ok, value = outcome
        return _verdict(value) if ok else (False, _failure(value))

    def close(self) -> None:
        """End probing: no more attempts; the running one is cancelled."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
        if self.pool is not None:
            self.pool.release()
            self.pool = None


# ---------------------------------------------------------------- the probed child


class ProbedChild:
    """A child with probes: the backend's sink, and the tree's runner of the child.

    As a sink, it passes everything on but ``up``, which it holds until the readiness
    probe passes, and ``down`` before that, which becomes a failed start (the child
    never was up, as far as its supervisor knows). As a runner, it ends the probes
    before passing a stop or a kill on, and adds their state to ``describe()``."""

    def __init__(self, spec: Any, sink: ChildSink, env: BackendEnv, tree: Any) -> None:
        self._sink = sink
        self.loop = env.loop
        self.tree = tree
        self.name = env.name
        self.guardian = env.guardian
        self._runner: Runner | None = None
        self._up = False  # told the supervisor
        self._ended = False
        self._readiness = None if spec.readiness is None else \
            _Prober(self, spec.readiness, "readiness", self._readiness_verdict)
        self._liveness = None if spec.liveness is None else \
            _Prober(self, spec.liveness, "liveness", self._liveness_verdict)

    def attach(self, runner: Runner) -> ProbedChild:
        """Wrap the runner the backend returned; this object stands for it."""
        self._runner = runner
        return self

    # -- the sink side (called by the backend, on the loop)

    def up(self) -> None:
        if self._ended or self._up:
            return
        if self._readiness is not None and self._readiness.tracker.verdict != READY:
            self._readiness.start()
            return
        self._ready()

    def _ready(self) -> None:
        self._up = True
        self._sink.up()
        if self._liveness is not None and not self._ended:
            self._liveness.start()

    def _readiness_verdict(self, step: ProbeStep) -> None:
        if self._readiness is not None:
            self._readiness.close()  # its job is done (its tracker stays, for status)
        if step.verdict == READY and not self._ended:
            self._ready()

    def _liveness_verdict(self, step: ProbeStep) -> None:
        if step.verdict == HUNG and not self._ended:
            self._sink.hung(Hung(step.detail))

    def start_failed(self, reason: ExitReason) -> None:
        self.close()
        self._sink.start_failed(reason)

    def down(self, reason: ExitReason, stderr: str | None = None) -> None:
        self.close()
        if self._up:
            self._sink.down(reason, stderr)
        else:  # it ended before its readiness probe passed: a start that failed
            self._sink.start_failed(reason)

    def hung(self, reason: ExitReason) -> None:
        self._sink.hung(reason)

    def report(self, report: Any) -> None:
        self._sink.report(report)

    def close(self) -> None:
        """End the probes for good (the child stops or has ended)."""
        self._ended = True
        for prober in (self._readiness, self._liveness):
            if prober is not None:
                prober.close()

    # -- the runner side (called by the tree)

    def stop(self) -> None:
        self.close()
        if self._runner is not None:
            self._runner.stop()

    def kill(self) -> None:
        self.close()
        if self._runner is not None:
            self._runner.kill()

    def describe(self) -> dict[str, Any]:
        details = dict(self._runner.describe()) if self._runner is not None else {}
        details["probes"] = {
            prober.tracker.role: prober.tracker.status()
            for prober in (self._readiness, self._liveness) if prober is not None}
        return details

    def __getattr__(self, name: str) -> Any:
        # What else the tree may ask of the backend's runner (its pid, a task's frame).
        runner = self.__dict__.get("_runner")
        if runner is None:
            raise AttributeError(name)
        return getattr(runner, name)
