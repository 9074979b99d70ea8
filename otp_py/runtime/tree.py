"""The driver: one asyncio loop runs a whole tree, executing the cores' decisions.

Each supervisor of the tree is a :class:`Node`: a :class:`SupervisorCore` plus what
the runtime needs to carry out its actions (the runners of its children, its timers,
the futures of pending calls). The runtime makes no decision of its own.

Events are delivered through one tree-wide mailbox, in the order they were posted,
one at a time: the same semantics as messages between Erlang processes, and the same
as the pure simulator, so a real tree decides exactly what the simulation predicts.
Nothing is polled: children report their ends through callbacks (see
:mod:`otp_py.backends`), timers are loop timers, and an idle tree sleeps.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import itertools
import logging
import random as _random
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from otp_py._core import events as ev
from otp_py._core import reports as rp
from otp_py._core.names import declared_names
from otp_py._core.reasons import ExitReason, Ignored, Killed
from otp_py._core.supervisor import SupervisorCore
from otp_py._errors import SupervisorNotRunningError
from otp_py.backends.base import BackendEnv, Runner
from otp_py.backends.reasons import from_exception
from otp_py.runtime.notify import channel_for
from otp_py.runtime.output import TreeOutput, inherit
from otp_py.runtime.registry import NameRegistry
from otp_py.runtime.timers import NodeTimers
from otp_py.spec import OutputCapture

__all__ = ["Listener", "Node", "Tree"]

logger = logging.getLogger("otp_py")
logger.addHandler(logging.NullHandler())  # a library logs; the application shows

Listener = Callable[[rp.Report], None]

_ERROR_REPORTS = (rp.IntensityExceeded, rp.ChildUnstoppable, rp.ChildStartFailed)


def _log_level(report: rp.Report) -> int:
    if isinstance(report, _ERROR_REPORTS):
        return logging.ERROR
    if isinstance(report, rp.ChildExited | rp.SupervisorExited):
        reason = report.reason
        if reason is not None and reason.is_abnormal:
            return logging.ERROR
        return logging.INFO
    if isinstance(report, rp.RestartScheduled | rp.OutputDropped):
        return logging.WARNING
    return logging.INFO


def _someone_listens() -> bool:
    """Whether a log record of ours would reach a handler other than our NullHandler
    (building records nobody reads costs a crash loop a third of its speed)."""
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if not isinstance(handler, logging.NullHandler):
                return True
        if not current.propagate:
            return False
        current = current.parent
    return False  # our NullHandler keeps logging's last-resort handler out


class _Sink:
    """A backend's line to the node that supervises its child."""

    __slots__ = ("finished", "node", "notify", "ref", "remote", "starting")

    def __init__(self, node: Node, ref: int) -> None:
        self.node = node
        self.ref = ref
        self.finished = False
        self.remote: tuple[str, ...] | None = None  # the path of a subtree it runs
        self.starting = False  # inside the backend's start(), on the tree's stack
        self.notify: Any = None  # the child's notify socket (runtime/notify.py)

    def up(self) -> None:
        self.node.tree.post(self.node, ev.ChildUp(self.ref))

    def start_failed(self, reason: ExitReason) -> None:
        self._finish()
        event = _start_result(self.ref, reason)
        if self.starting:  # failed at once: queued behind what already waits
            self.node.tree.post_soon(self.node, event)
        else:
            self.node.tree.post(self.node, event)

    def down(self, reason: ExitReason, stderr: str | None = None) -> None:
        self._finish()
        self.node.tree.post(self.node, ev.ChildDown(self.ref, reason, stderr))

    def _finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.node.children.pop(self.ref, None)
            if self.remote is not None:
                self.node.tree.remote.pop(self.remote, None)
            if self.notify is not None:
                self.notify.close()
            self.node.tree.runner_ended()

    def hung(self, reason: ExitReason) -> None:
        self.node.tree.post(self.node, ev.ChildHung(self.ref, reason))

    def extend_start(self, seconds: float) -> None:
        """The starting child asks for more time (``EXTEND_TIMEOUT_USEC=``)."""
        self.node.tree.post(self.node, ev.ChildStartExtended(self.ref, seconds))

    def report(self, report: rp.Report) -> None:
        self.node.tree.deliver(report)


def _start_result(ref: int, reason: ExitReason) -> ev.Event:
    """What a start that ended before the child was up means to the core: the child
    raised :class:`otp_py.Ignore` (OTP's ``ignore``: it declines), or it failed."""
    if isinstance(reason, Ignored):
        return ev.ChildIgnored(ref)
    return ev.ChildStartFailed(ref, reason)


class Node:
    """One supervisor of the tree: its core, and the means to carry out its actions."""

    def __init__(
        self,
        tree: Tree,
        spec: Any,
        path: tuple[str, ...],
        parent: Node | None = None,
        parent_ref: int = 0,
    ) -> None:
        self.tree = tree
        self.path = path
        self.parent = parent
        self.parent_ref = parent_ref
        self.core = SupervisorCore(
            spec, path=path, random=tree.random, shared_budgets=tree.shared_budgets
        )
        self.children: dict[int, Runner | Node] = {}
        self.timers = NodeTimers(tree.loop, self._timer_fired)
        self.calls: dict[int, asyncio.Future[Any]] = {}
        self.initialized = False
        self.killed = False
        self.exited = False
        # Its output capture, inherited by its children (see runtime/output.py).
        self.output: OutputCapture | None = inherit(
            parent.output if parent is not None else None, spec)

    @property
    def spec(self) -> Any:
        """The supervisor's spec: the one it runs now (a reload replaces it)."""
        return self.core.spec

    # A nested supervisor is also its parent's child: these make it a Runner.
    def stop(self) -> None:
        self.tree.post(self, ev.Stop())

    def kill(self) -> None:
        self.killed = True
        self.tree.post(self, ev.ForceKill())

    def describe(self) -> dict[str, Any]:
        return {"supervisor": "/".join(self.path)}

    def make_report(self, kind: type[rp.Report], **fields: Any) -> rp.Report:
        """A runtime report from this supervisor (e.g. an unstoppable child)."""
        return kind(path=self.path, time=self.tree.loop.time(), **fields)

    def handle(self, event: ev.Event) -> None:
        tree = self.tree
        core = self.core
        core.routine_reports = tree.listening()
        for action in core.handle(event, tree.loop.time()):
            # The actions of every start, restart and stop come first, by exact type
            # (execute's isinstance chain cost a stop of 10,000 children 14 checks each).
            kind = type(action)
            if kind is ev.Emit:
                tree.deliver(action.report)  # type: ignore[attr-defined]
            elif kind is ev.StartChild:
                self._start_child(action)  # type: ignore[arg-type]
            elif kind is ev.SetTimer:
                self.timers.set(action.token, action.delay)  # type: ignore[attr-defined]
            elif kind is ev.CancelTimer:
                self.timers.cancel(action.token)  # type: ignore[attr-defined]
            elif kind is ev.StopChild:
                runner = self.children.get(action.ref)  # type: ignore[attr-defined]
                if runner is not None:
                    runner.stop()
            else:
                self.execute(action)

    def execute(self, action: ev.Action) -> None:
        tree = self.tree
        if isinstance(action, ev.Emit):
            tree.deliver(action.report)
        elif isinstance(action, ev.StartChild):
            self._start_child(action)
        elif isinstance(action, ev.StopChild):
            runner = self.children.get(action.ref)
            if runner is not None:
                runner.stop()
        elif isinstance(action, ev.KillChild):
            runner = self.children.get(action.ref)
            if runner is not None:
                runner.kill()
        elif isinstance(action, ev.SetTimer):
            self.timers.set(action.token, action.delay)
        elif isinstance(action, ev.CancelTimer):
            self.timers.cancel(action.token)
        elif isinstance(action, ev.Reply):
            future = self.calls.pop(action.request_id, None)
            if future is not None and not future.done():
                if action.error is not None:
                    future.set_exception(action.error)
                else:
                    future.set_result(action.value)
        elif isinstance(action, ev.Initialized):
            self.initialized = True
            if self.parent is not None:
                tree.post(self.parent, ev.ChildUp(self.parent_ref))
            else:
                tree.root_initialized()
        elif isinstance(action, ev.StopTree):
            tree.request_stop()
        elif isinstance(action, ev.Exit):
            self._exited(action.reason)

    def _timer_fired(self, token: int) -> None:
        self.tree.post(self, ev.TimerFired(token))

    def _start_child(self, action: ev.StartChild) -> None:
        spec = action.spec
        path = (*self.path, action.child_id)
        if spec.is_supervisor and spec.backend == "inline":
            node = Node(self.tree, spec, path, parent=self, parent_ref=action.ref)
            self.children[action.ref] = node
            self.tree.nodes[path] = node
            self.tree.post(node, ev.Init())
            return
        sink = _Sink(self, action.ref)
        self.tree.runner_started()
        sink.starting = True
        probed: Any = None  # (runtime/probes.py: between the backend and the sink)
        try:
            if spec.is_supervisor and spec.backend == "ray":  # a subtree in a Ray actor
                from otp_py.runtime.ray_host import as_ray_child

                spec = as_ray_child(spec, self.output)
                sink.remote = path
            elif spec.is_supervisor:  # a subtree in a process of its own
                from otp_py.runtime.subtree import as_process_child

                spec = as_process_child(spec, self.output)
                sink.remote = path
            env = self.tree.env_for(path, self)
            env.output = self.tree.output.capture(self.output, spec, path)
            if spec.readiness is not None or spec.liveness is not None:
                from otp_py.runtime.probes import watch

                probed = watch(spec, sink, env, self.tree)
            # (a subtree in a process of its own signals its start over its pipe; only
            # a child that signals readiness has a use for a notify socket)
            env.notify = sink.notify = (
                channel_for(spec, sink, env)
                if sink.remote is None and getattr(spec, "ready", False) else None)
            runner = self.tree.backend_for(spec).start(spec, probed or sink, env)
        except Exception as exc:  # a start that raised is a failed start, not a crash
            if probed is not None:
                probed.close()
            sink.finished = True
            if sink.notify is not None:
                sink.notify.close()
            self.tree.runner_ended()
            self.tree.post_soon(self, _start_result(action.ref, from_exception(exc)))
            return
        finally:
            sink.starting = False
        if not sink.finished:  # a backend may report a failed start at once
            self.children[action.ref] = runner if probed is None else probed.attach(runner)
            if sink.remote is not None:
                self.tree.remote[path] = runner

    def _exited(self, reason: ExitReason) -> None:
        self.exited = True
        self.timers.clear()
        for future in self.calls.values():
            if not future.done():
                future.set_exception(SupervisorNotRunningError(
                    f"supervisor {'/'.join(self.path)!r} has exited"))
        self.calls.clear()
        if self.tree.nodes.get(self.path) is self:
            del self.tree.nodes[self.path]
        if self.parent is not None:
            self.parent.children.pop(self.parent_ref, None)
            final = Killed() if self.killed else reason
            if self.initialized:
                self.tree.post(self.parent, ev.ChildDown(self.parent_ref, final))
            else:
                self.tree.post(self.parent, ev.ChildStartFailed(self.parent_ref, final))
        else:
            self.tree.root_exited(reason)


class Tree:
    """A supervision tree running on ``loop``."""

    def __init__(
        self,
        spec: Any,
        loop: asyncio.AbstractEventLoop,
        *,
        random: Callable[[], float] | None = None,
        guardian: Any = None,
        place: tuple[str, ...] = (),
    ) -> None:
        # ``place``: where the root sits in a larger tree (a subtree in a process of
        # its own is a part of its parent's tree), so its paths, in reports, errors and
        # calls, are the same as in the parent's.
        self.loop = loop
        self.random = random if random is not None else _random.Random().random
        self.guardian = guardian
        self.listeners: list[Listener] = []
        self.shared_budgets: dict[str, Any] = {}
        self._mailbox: deque[tuple[Node, ev.Event]] = deque()
        self._draining = False
        self.nodes: dict[tuple[str, ...], Node] = {}
        # Subtrees running in processes of their own, by path: calls to a supervisor
        # at or under one of them travel to its process.
        self.remote: dict[tuple[str, ...], Any] = {}
        self.root = Node(self, spec, (*place, spec.id))
        self.nodes[self.root.path] = self.root
        self.initialized: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[ExitReason] = loop.create_future()
        self.stop_requested = False
        # Called when the tree is asked to stop (the systemd client's STOPPING=1).
        self.stop_callbacks: list[Callable[[], None]] = []
        self.gave_up: rp.IntensityExceeded | None = None
        self.exit_reason: ExitReason | None = None
        self._live_runners = 0  # children whose end has not been reported yet
        self._watchdog: Any = None
        self._logging_wanted: bool | None = None
        # False in a subtree whose reports are forwarded to the tree above, which
        # logs them: a record is logged once, where the application configured logging.
        self.log_reports = True
        self._request_ids = itertools.count(1)
        self.output = TreeOutput()
        self._place = place
        self._backends: dict[str, Any] = {}
        self._envs: dict[tuple[str, ...], BackendEnv] = {}
        # Tree-wide child names (whereis); the spec's own were checked unique already.
        self.names = NameRegistry(declared_names(spec, place))
        self.reload_lock = asyncio.Lock()  # reloads (update()) one at a time

    # -- the mailbox

    def post(self, node: Node, event: ev.Event) -> None:
        self._mailbox.append((node, event))
        if not self._draining:
            self._drain()

    def post_soon(self, node: Node, event: ev.Event) -> None:
        """Post ``event`` from the loop's next turn, behind whatever already waits there.

        A start that fails at once is reported this way. Posted directly, it would be
        handled in the same pass over the mailbox, the core would retry the restart at
        once, and a child whose every start fails would keep the loop from ever running
        again while the budget lasts: no signal, no call and no control request served,
        the garbage collector off all along. OTP's ``try_again_restart`` is likewise a
        message a supervisor sends itself, queued behind the ones already waiting.
        The decisions are the same either way; only what can come in between changes.
        """
        self.loop.call_soon(self.post, node, event)

    def _drain(self) -> None:
        # The cyclic garbage collector is paused while a batch of events is handled:
        # starting 10,000 children is one batch of ~200,000 allocations, and letting
        # the collector run (and re-scan every live object) in the middle of it
        # doubled the time. What the batch leaves is collected as usual afterwards.
        self._draining = True
        self._logging_wanted = None  # looked up again once per batch
        collecting = gc.isenabled()
        if collecting:
            gc.disable()
        try:
            mailbox = self._mailbox
            while mailbox:
                node, event = mailbox.popleft()
                try:
                    node.handle(event)
                except Exception:  # a bug must not take the tree down silently
                    logger.exception("otp_py: internal error handling %r in %s", event,
                                     "/".join(node.path))
        finally:
            self._draining = False
            if collecting:
                gc.enable()

    # -- lifecycle

    def start(self) -> None:
        """Start the tree (from the loop's thread)."""
        config = getattr(self.root.spec, "watchdog", None)
        if config is not None:
            from otp_py.runtime.watchdog import Watchdog

            self._watchdog = Watchdog(self, config)
            self._watchdog.start()
        if not self._place:  # (a subtree's reports go to its parent's log)
            self.output.open_log(self.root.output, self.root.spec.id)
            if self.output.logging:
                self.listeners.append(self.output.listener)
        self.post(self.root, ev.Init())

    def refresh_watchdog(self) -> None:
        """Run the loop watchdog the root's spec now asks for (after a reload)."""
        config = getattr(self.root.spec, "watchdog", None)
        current = self._watchdog
        if current is not None and getattr(current, "_config", None) == config:
            return
        if current is not None:
            current.stop()
            self._watchdog = None
        if config is not None and not self.done.done():
            from otp_py.runtime.watchdog import Watchdog

            self._watchdog = Watchdog(self, config)
            self._watchdog.start()

    def request_stop(self) -> None:
        self._stopping()
        self.post(self.root, ev.Stop())

    def force_kill(self) -> None:
        self._stopping()
        self.post(self.root, ev.ForceKill())

    def _stopping(self) -> None:
        self.stop_requested = True
        for callback in self.stop_callbacks[:]:
            try:
                callback()
            except Exception:
                logger.exception("otp_py: stop callback %r failed", callback)

    def root_initialized(self) -> None:
        if not self.initialized.done():
            self.initialized.set_result(None)

    def root_exited(self, reason: ExitReason) -> None:
        self.exit_reason = reason
        self._maybe_done()

    def runner_started(self) -> None:
        self._live_runners += 1

    def runner_ended(self) -> None:
        self._live_runners -= 1
        self._maybe_done()

    def _maybe_done(self) -> None:
        # The tree is done when its root has exited and every child it ever started
        # has been reaped, including starts abandoned at their start timeout.
        if self.exit_reason is None or self._live_runners > 0:
            return
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        self.output.close(self.exit_reason)
        if not self.done.done():
            self.done.set_result(self.exit_reason)
        if not self.initialized.done():
            self.initialized.set_result(None)

    # -- reports

    def listening(self) -> bool:
        """Whether a report would reach anyone: a listener, or a log handler. While
        not, the cores leave out the reports of routine starts and exits."""
        if self.listeners:
            return True
        logging_wanted = self._logging_wanted
        if logging_wanted is None:
            logging_wanted = self._logging_wanted = self.log_reports and _someone_listens()
        return logging_wanted

    def deliver(self, report: rp.Report) -> None:
        if type(report) is rp.IntensityExceeded and report.path == self.root.path:
            self.gave_up = report
        for listener in self.listeners[:]:  # (a listener may remove itself)
            try:
                listener(report)
            except Exception:
                logger.exception("otp_py: report listener %r failed", listener)
        logging_wanted = self._logging_wanted
        if logging_wanted is None:
            logging_wanted = self._logging_wanted = self.log_reports and _someone_listens()
        if logging_wanted:
            level = _log_level(report)
            if logger.isEnabledFor(level):
                logger.log(level, "%s", report.describe(), extra={"otp_report": report})

    # -- backends

    def backend_for(self, spec: Any) -> Any:
        name = spec.backend
        backend = self._backends.get(name)
        if backend is None:
            backend = _load_backend(name)
            self._backends[name] = backend
        return backend

    def env_for(self, path: tuple[str, ...], node: Node | None = None) -> BackendEnv:
        env = self._envs.get(path)
        if env is None:
            env = BackendEnv(self.loop, path, self.guardian, node)
            if len(self._envs) < 100_000:
                self._envs[path] = env
        return env

    # -- calls

    async def call(self, path: tuple[str, ...], request: ev.Request) -> Any:
        node = self.nodes.get(path)
        if node is None:
            for end in range(len(path), 1, -1):
                runner = self.remote.get(path[:end])
                if runner is not None:  # in a subtree's process
                    return await runner.call(path, request)
            raise SupervisorNotRunningError(f"no running supervisor at {'/'.join(path)!r}")
        future: asyncio.Future[Any] = self.loop.create_future()
        request_id = next(self._request_ids)
        node.calls[request_id] = future
        self.post(node, ev.Call(request_id, request))
        return await future

    def budgets_used(self, under: tuple[str, ...] = ()) -> dict[tuple[str, ...], float | None]:
        """The restart budget used by each supervisor running in this process at or
        under ``under`` (see ``SupervisorCore.budget_used``), read now, from the loop's
        thread. Read directly, not through the mailbox: a supervisor busy with a
        restart still answers, and the answer changes nothing."""
        now = self.loop.time()
        size = len(under)
        return {path: node.core.budget_used(now) for path, node in list(self.nodes.items())
                if path[:size] == under}

    def with_details(self, path: tuple[str, ...], infos: list[Any]) -> list[Any]:
        """``which_children`` rows of the supervisor at ``path``, each with what its
        runner knows (pid, thread name...). Rows from a subtree's process already
        carry theirs."""
        node = self.nodes.get(path)
        if node is None:
            return infos
        runners = node.children
        rows = []
        for info in infos:
            runner = runners.get(info.ref) if info.ref is not None else None
            rows.append(info if runner is None else
                        attrs.evolve(info, details=runner.describe()))
        return rows


_BACKEND_MODULES = {
    "asyncio": "otp_py.backends.task",
    "thread": "otp_py.backends.thread",
    "process": "otp_py.backends.process",
    "command": "otp_py.backends.command",
    "ray": "otp_py.backends.ray_actor",  # (needs the otp_py[ray] extra)
}


def _load_backend(name: str) -> Any:
    """Import a backend when a tree first needs it (a tree of tasks never loads
    multiprocessing)."""
    try:
        return importlib.import_module(_BACKEND_MODULES[name])
    except KeyError:
        raise ValueError(f"unknown backend {name!r}") from None
