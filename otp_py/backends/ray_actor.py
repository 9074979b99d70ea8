"""The ray backend: a child that is a Ray actor (``ChildSpec.ray_actor``).

The actor is made with the child's ``ray.remote`` options and Ray's own restarts off
(``max_restarts=0``, ``max_task_retries=0``): whether, when and how often it comes
back is the supervisor's decision, as for every other child. Ray is the transport
and the placement, nothing more.

What runs in the actor is a small host (:class:`ActorHost`) around the user's
object. It builds the object in its ``__init__`` (with the child's context set, so
:func:`otp_py.notify_ready` works there), and its ``otp_run`` method calls the
user's run method: that one call is the child's life. The host turns how it ended
into an exit reason *inside the actor* (returning: ``normal``; raising: the user's
exception, as :func:`~otp_py.backends.reasons.from_exception` makes it for every
backend), so the supervisor sees the same reasons as from a process child.

On the supervisor's side nothing polls. The running call's ``ObjectRef`` is watched
through its future: its result is the exit reason; a ``RayActorError`` instead means
the actor itself died (its worker killed by a signal or the OOM killer, its node
lost), reported as :class:`ActorDied`, which says which and carries the node and the
pid. Readiness is another call's answer (``otp_facts`` returns once ``__init__``
has; ``otp_ready`` once the actor has called ``notify_ready``); a heartbeat is a
ping call that must answer within its timeout.

A graceful stop sets the child's stop token (the actor's run method sees it with
:func:`otp_py.wait_for_stop` or :func:`otp_py.stop_requested`); a kill is
``ray.kill``. Once the run call has ended, the actor is killed too: nothing of a
child outlives its end. The actors are not detached, so Ray's owner fate-sharing
ends them with the process that runs the tree, however it ends.

The host runs the user's method on one of Ray's actor threads; more are added to
``max_concurrency`` (:data:`CONTROL_THREADS`) for the readiness, ping and stop calls,
which must be served while the run method runs.

An actor class with ``otp_stream`` and ``otp_call`` methods *streams* (the actor that
hosts a subtree, :mod:`otp_py.runtime.ray_host`, is one): the supervisor keeps one
``otp_stream`` call outstanding, a long poll answered with the messages the actor
has for it, in order (``("report", report)``, ``("reply", call_id, ok, payload)``,
``("ready",)``, and last ``("closed",)``), the way a process subtree's messages come
up its pipe; :meth:`RayRunner.call` sends a call down with ``otp_call``. The run
call's end is reported once the stream has closed (or a moment after), so that the
reports of what the actor did come before its exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any

import attrs

from otp_py._core.reasons import Abnormal, ExitReason, Hung, Killed, Normal, Shutdown
from otp_py._core.reports import Report
from otp_py._errors import SupervisorNotRunningError
from otp_py.backends import reasons
from otp_py.backends.base import BackendEnv, ChildSink, settle_reply
from otp_py.backends.context import ChildContext, set_current

__all__ = [
    "ActorDied",
    "ActorHost",
    "RayNotAvailableError",
    "RayRunner",
    "ray_module",
    "remote_options",
    "start",
]

CONTROL_THREADS = 5
"""Actor threads added to the user's ``max_concurrency``: readiness, ping, stop, and
for a streaming actor (a hosted subtree) its message stream and calls."""


STREAM_GRACE = 2.0
"""Seconds a streaming actor's messages may trail its run call's end."""

logger = logging.getLogger("otp_py")


class RayNotAvailableError(RuntimeError):
    """Raised when a ray child starts without Ray: not installed, or not initialised
    (``ray.init`` is the application's; otp_py never starts a cluster of its own)."""


@attrs.frozen
class ActorDied(ExitReason):
    """A ray child's actor died under it: its worker process was killed (a signal,
    the OOM killer) or exited, or the node it ran on was lost. ``cause`` says which
    (``"worker process died"``, ``"node lost"``, ``"out of memory"``, or Ray's own
    words); ``node_id``, ``node_ip`` and ``pid`` say where it was; ``detail`` is
    Ray's message. An abnormal exit: its restart type decides."""

    cause: str
    actor_id: str = ""
    node_id: str = ""
    node_ip: str = ""
    pid: int | None = None
    detail: str = attrs.field(default="", eq=False, repr=False)

    def __str__(self) -> str:
        where = [f"node {self.node_id[:12]}" if self.node_id else "",
                 self.node_ip, f"pid {self.pid}" if self.pid is not None else ""]
        place = ", ".join(w for w in where if w)
        return f"ray actor died: {self.cause}" + (f" ({place})" if place else "")


def ray_module() -> Any:
    """The ``ray`` module, once the application has connected to a cluster; a
    :class:`RayNotAvailableError` saying what to do otherwise. (Never ``ray.init``
    here: Ray would quietly start a local cluster of its own.)"""
    try:
        import ray
    except ImportError as exc:
        raise RayNotAvailableError(
            "ray children need Ray: pip install 'otp_py[ray]'") from exc
    if not ray.is_initialized():
        raise RayNotAvailableError(
            "Ray is not initialised: call ray.init() (or ray.init(address=...) to join a "
            "cluster) before starting a tree with ray children; otp_py uses the "
            "application's Ray connection and never starts one itself")
    return ray


def remote_options(options: Any) -> dict[str, Any]:
    """The ``ray.remote`` options of a supervised actor: the user's, with Ray's
    restarts off and the host's control threads added."""
    made = dict(options)
    made["max_restarts"] = 0
    made["max_task_retries"] = 0
    made["max_concurrency"] = int(made.get("max_concurrency", 1)) + CONTROL_THREADS
    return made


# ----------------------------------------------------------------- in the actor


class ActorHost:
    """The actor's side: holds the user's object, runs its run method once, and
    answers the supervisor's readiness, ping and stop calls on other threads."""

    def __init__(self, cls: type, run: str, args: tuple[Any, ...],
                 kwargs: dict[str, Any], path: tuple[str, ...], notify: bool) -> None:
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._context = ChildContext(path, on_ready=self._ready.set,
                                     stopped=self._stop.is_set, stop_wait=self._stop.wait)
        self._run_name = run
        self._failure: ExitReason | None = None
        self._object: Any = None
        set_current(self._context)
        try:
            self._object = cls(*args, **kwargs)
        except BaseException as exc:  # the start failed: the run call says so
            self._failure = reasons.from_exception(exc)
        finally:
            set_current(None)
        if not notify or self._failure is not None:
            self._ready.set()

    def otp_facts(self) -> dict[str, Any]:
        """Where this actor runs; answered once ``__init__`` has returned."""
        import ray

        context = ray.get_runtime_context()
        node_ip: Any = ray.util.get_node_ip_address  # (untyped in Ray)
        return {"actor_id": context.get_actor_id(), "node_id": context.get_node_id(),
                "node_ip": node_ip(), "pid": os.getpid(),
                "failed": self._failure is not None}

    def otp_ready(self) -> bool:
        """Answer once the actor is ready (it called ``notify_ready``) or its run has
        ended (then the run call's answer says how)."""
        self._ready.wait()
        return True

    def otp_ping(self) -> None:
        """A heartbeat: answering at all is the answer."""

    def otp_stop(self) -> None:
        """The supervisor's graceful stop: set the child's stop token."""
        self._stop.set()

    def otp_stream(self) -> list[Any]:
        """The next messages of a streaming actor (blocks until there are some)."""
        return list(self._object.otp_stream())

    def otp_call(self, call_id: int, payload: bytes) -> None:
        """A call to a streaming actor; its answer comes on the stream."""
        self._object.otp_call(call_id, payload)

    def otp_run(self) -> ExitReason:
        """Run the user's run method; how it ended, as an exit reason."""
        if self._failure is not None:
            return self._failure
        set_current(self._context)
        try:
            result = getattr(self._object, self._run_name)()
            if inspect.iscoroutine(result):
                asyncio.run(result)
        except BaseException as exc:  # every end is reported, whatever it is
            return reasons.from_exception(exc)
        finally:
            self._ready.set()
        return Shutdown() if self._stop.is_set() else Normal()


_host_classes: dict[int, Any] = {}
_host_lock = threading.Lock()


def host_class(ray: Any, host: type = ActorHost) -> Any:
    """``ray.remote(host)``, made once per class (making it exports it to the
    cluster)."""
    with _host_lock:
        made = _host_classes.get(id(host))
        if made is None:
            made = _host_classes[id(host)] = ray.remote(host)
        return made


# ------------------------------------------------------- on the supervisor's side

_PID = re.compile(r"\bpid: (\d+)")
_IP = re.compile(r"\bip: ([0-9a-fA-F.:]+)")
_NODE = re.compile(r"[Nn]ode(?: ID| Id|_id)?:? ([0-9a-f]{20,})")


def died(error: BaseException, facts: dict[str, Any] | None, actor_id: str) -> ActorDied:
    """The :class:`ActorDied` reason for the ``RayActorError`` a call to the actor
    raised: what killed it (from Ray's message) and where it was (from the facts the
    actor gave, else from the message)."""
    text = str(getattr(error, "error_msg", "") or error)
    lowered = text.lower()
    if "node" in lowered and ("died" in lowered or "dead" in lowered) and (
            "its node" in lowered or "node has died" in lowered
            or "node failure" in lowered or "raylet" in lowered):
        cause = "node lost"
    elif "node_out_of_memory" in lowered or "memory monitor" in lowered \
            or "exit type: out_of_memory" in lowered:
        cause = "out of memory"
    elif "worker process has died" in lowered or "worker unexpectedly exits" in lowered \
            or "worker process" in lowered:
        cause = "worker process died"
    elif "ray.kill" in lowered:
        cause = "killed with ray.kill"
    else:
        cause = "died"
    if getattr(error, "preempted", False):
        cause = "node preempted"
    facts = facts or {}
    pid = facts.get("pid")
    if pid is None and (match := _PID.search(text)):
        pid = int(match.group(1))
    node_ip = facts.get("node_ip") or ((m := _IP.search(text)) and m.group(1)) or ""
    node_id = facts.get("node_id") or ((m := _NODE.search(text)) and m.group(1)) or ""
    return ActorDied(cause, actor_id=facts.get("actor_id") or actor_id, node_id=node_id,
                     node_ip=node_ip, pid=pid, detail=text[-4000:])


class RayRunner:
    """A running ray child, as the runtime sees it."""

    host: type = ActorHost

    def __init__(self, spec: Any, sink: ChildSink, env: BackendEnv) -> None:
        self._spec = spec
        self._sink = sink
        self._env = env
        self._ready = not spec.ready
        self._reported = False
        self._stop_requested = False
        self._killed = False
        self._facts: dict[str, Any] | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._ping_due: asyncio.TimerHandle | None = None
        self._actor: Any = None
        self._actor_id = ""
        self._ray: Any = None
        self._streams = callable(getattr(spec.start.cls, "otp_stream", None))
        self._stream_closed = False
        self._ended: ExitReason | None = None  # the run has ended; the stream has not
        self._end_timer: asyncio.TimerHandle | None = None
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._call_ids = itertools.count(1)

    # -- start

    def launch(self) -> None:
        ray = self._ray = ray_module()
        spec = self._spec
        target = spec.start
        notify = bool(spec.ready) and target.ready_on == "notify"
        options = remote_options(target.options)
        self._actor = host_class(ray, self.host).options(**options).remote(
            *self._host_args(notify))
        self._actor_id = self._actor._actor_id.hex()
        self._watch(self._actor.otp_facts.remote(), self._on_facts)
        self._watch(self._actor.otp_run.remote(), self._on_run_end)
        if self._streams:
            self._next_messages()
        elif notify:
            self._watch(self._actor.otp_ready.remote(), self._on_notified)

    def _host_args(self, notify: bool) -> tuple[Any, ...]:
        spec = self._spec
        target = spec.start
        return (target.cls, target.run, tuple(spec.args), dict(spec.kwargs),
                self._env.path, notify)

    def _watch(self, ref: Any, callback: Callable[[Any], None]) -> None:
        """Call ``callback(future)`` on the loop when ``ref`` resolves (Ray calls
        the future's callbacks on a thread of its own)."""
        loop = self._env.loop

        def resolved(future: Any) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the tree is gone
                loop.call_soon_threadsafe(callback, future)

        ref.future().add_done_callback(resolved)

    def _on_facts(self, future: Any) -> None:
        if self._reported or future.exception() is not None:
            return  # (the run call reports the actor's death)
        self._facts = future.result()
        if self._facts is not None and self._facts.get("failed"):
            return  # (the run call reports the failure)
        if self._spec.ready and self._spec.start.ready_on == "init":
            self._set_ready()
        if self._spec.heartbeat is not None:
            self._ping_timer = self._env.loop.call_later(
                self._spec.heartbeat.interval, self._ping)

    def _on_notified(self, future: Any) -> None:
        if not self._reported and future.exception() is None:
            self._set_ready()

    def _set_ready(self) -> None:
        if not self._ready and not self._reported:
            self._ready = True
            self._sink.up()

    # -- a streaming actor's messages

    def _next_messages(self) -> None:
        with contextlib.suppress(Exception):  # (Ray shutting down: the run call says)
            self._watch(self._actor.otp_stream.remote(), self._on_messages)

    def _on_messages(self, future: Any) -> None:
        if future.exception() is not None:
            self._close_stream()  # the actor died: its run call says how
            return
        for message in future.result():
            try:
                self._handle(message)
            except Exception:
                logger.exception("otp_py: a message from the actor of %s could not be "
                                 "handled", self._env.name)
        if not self._stream_closed:
            self._next_messages()

    def _handle(self, message: Any) -> None:
        kind = message[0]
        if kind == "report":
            if isinstance(message[1], Report) and not self._reported:
                self._sink.report(message[1])
        elif kind == "ready":
            self._set_ready()
        elif kind == "reply":
            settle_reply(self._calls, message, self._env.name)
        elif kind == "closed":
            self._close_stream()

    def _close_stream(self) -> None:
        self._stream_closed = True
        if self._ended is not None and not self._reported:
            self._finish(self._ended)

    async def call(self, path: tuple[str, ...], request: Any) -> Any:
        """Ask the supervisor at ``path`` (at or under this child, a subtree hosted in
        the actor) and wait for its answer, which comes on the stream."""
        where = "/".join(path)
        if self._reported or not self._streams:
            raise SupervisorNotRunningError(f"no running supervisor at {where!r}")
        call_id = next(self._call_ids)
        try:  # (as Ray pickles: what __main__ defines travels by value)
            payload = self._ray.cloudpickle.dumps((path, request))
        except Exception as exc:
            raise TypeError(f"cannot send this call to the subtree at {where!r} (it runs "
                            f"in a Ray actor): {exc}") from exc
        future: asyncio.Future[Any] = self._env.loop.create_future()
        self._calls[call_id] = future
        try:
            try:
                self._actor.otp_call.remote(call_id, payload)
            except Exception as exc:
                raise SupervisorNotRunningError(
                    f"no running supervisor at {where!r}") from exc
            return await future
        finally:
            self._calls.pop(call_id, None)

    def _fail_calls(self) -> None:
        calls, self._calls = self._calls, {}
        for future in calls.values():
            if not future.done():
                future.set_exception(SupervisorNotRunningError(
                    f"the subtree at {'/'.join(self._env.path)!r} has exited"))

    # -- the end

    def _on_run_end(self, future: Any) -> None:
        if self._reported:
            return
        error = future.exception()
        reason: ExitReason
        if error is None:
            result = future.result()
            reason = result if isinstance(result, ExitReason) else Normal()
            if self._streams and not self._stream_closed:
                # (what the actor said before it ended may still be on its way)
                self._ended = reason
                self._end_timer = self._env.loop.call_later(
                    STREAM_GRACE, self._close_stream)
                return
        elif self._killed:
            reason = Killed()
        elif isinstance(error, self._ray.exceptions.RayActorError):
            reason = died(error, self._facts, self._actor_id)
        else:
            reason = Abnormal(f"ray: {type(error).__name__}: {error}")
        self._finish(reason)

    def _finish(self, reason: ExitReason) -> None:
        self._reported = True
        self._fail_calls()
        for timer in (self._ping_timer, self._ping_due, self._end_timer):
            if timer is not None:
                timer.cancel()
        self._end_actor()
        if self._ready:
            self._sink.down(reason)
        else:
            self._sink.start_failed(reason)

    def _end_actor(self) -> None:
        """Its run has ended: nothing of the child may stay, so its actor goes too."""
        with contextlib.suppress(Exception):  # (already dead, or Ray shut down)
            self._ray.kill(self._actor, no_restart=True)

    # -- requests from the supervisor

    def stop(self) -> None:
        """Set the actor's stop token; its run method is expected to return."""
        self._stop_requested = True
        if not self._reported:
            with contextlib.suppress(Exception):
                self._actor.otp_stop.remote()

    def kill(self) -> None:
        """``ray.kill``: the worker process ends at once; the run call then fails,
        which reports the end."""
        self._killed = True
        if not self._reported:
            self._end_actor()

    def describe(self) -> dict[str, Any]:
        facts = self._facts or {}
        details: dict[str, Any] = {"actor_id": self._actor_id}
        for key, name in (("node_id", "node_id"), ("node_ip", "node_ip"),
                          ("pid", "worker_pid")):
            if facts.get(key) is not None:
                details[name] = facts[key]
        return details

    # -- heartbeat

    def _ping(self) -> None:
        """Ping; the answer must come within the heartbeat's timeout, after which the
        next ping is sent one interval later."""
        self._ping_timer = None
        if self._reported:
            return
        heartbeat = self._spec.heartbeat
        try:
            ref = self._actor.otp_ping.remote()
        except Exception:  # Ray is shutting down: the run call will say how it ended
            return
        self._ping_due = self._env.loop.call_later(heartbeat.timeout, self._silent)
        self._watch(ref, self._pong)

    def _pong(self, future: Any) -> None:
        if self._reported or self._ping_due is None:
            return
        self._ping_due.cancel()
        self._ping_due = None
        if future.exception() is None:
            self._ping_timer = self._env.loop.call_later(
                self._spec.heartbeat.interval, self._ping)

    def _silent(self) -> None:
        self._ping_due = None
        if not self._reported:
            timeout = self._spec.heartbeat.timeout
            self._sink.hung(Hung(f"the actor did not answer a ping within {timeout:g} s"))


def start(spec: Any, sink: ChildSink, env: BackendEnv) -> RayRunner:
    runner = RayRunner(spec, sink, env)
    runner.launch()
    if not spec.ready:
        sink.up()
    return runner
