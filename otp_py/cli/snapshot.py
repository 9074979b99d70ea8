"""A picture of a tree: what is declared, and what runs right now.

Built from the public API only: :meth:`~otp_py.AsyncSupervisor.which_children` on
each supervisor, recursing with :meth:`~otp_py.AsyncSupervisor.at`, plus a
:class:`Recorder` listening to the tree's reports for what ``which_children`` does
not say (when a child last started, how it last ended, the recent events).

A snapshot is plain data (dicts, lists, strings, numbers), ready for JSON: the
``status --json`` output is exactly what :func:`snapshot` returns. Each node::

    {"id": "conn", "path": "demo/pool/conn", "kind": "worker" | "supervisor",
     "backend": "asyncio", "state": "running", "restarts": 2, "pid": null,
     "restart": "permanent", "target": "otp_py.cli.demo:flaky_task",
     "started_at": 1700000000.5, "last_exit": {"reason": "...", "at": ...,
     "outcome": "restart", "abnormal": true} | null,
     "strategy": ..., "intensity": ...,          # supervisors
     "children": [...] | null, "note": null | "why children are not shown",
     "status": "Ready to accept connections"}  # a notify child's last STATUS=, if any

Times are wall-clock seconds (``time.time()``), so another process can read them.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shlex
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Final

import otp_py as otp

__all__ = [
    "Recorder",
    "child_fields",
    "count_specs",
    "declared",
    "describe_shutdown",
    "describe_target",
    "exit_record",
    "flatten",
    "probe_fields",
    "snapshot",
]

Node = dict[str, Any]

CALL_TIMEOUT: Final = 2.0
"""Seconds to wait for one supervisor's ``which_children``. A supervisor answers calls
between decisions, so one busy stopping a slow child answers late; the snapshot then
shows it as busy rather than waiting."""


def describe_target(start: Any) -> str:
    """What a worker runs, as a user would write it: ``package.module:function`` or
    a command line."""
    if isinstance(start, tuple | list):
        return shlex.join(str(a) for a in start)
    if isinstance(start, functools.partial):
        return f"partial({describe_target(start.func)})"
    module = getattr(start, "__module__", None)
    name = getattr(start, "__qualname__", None) or getattr(start, "__name__", None)
    if module and name:
        return f"{module}:{name}"
    return repr(start)


def describe_shutdown(value: Any) -> str:
    if value is otp.BRUTAL_KILL:
        return "brutal_kill"
    if value == otp.INFINITY:
        return "infinity"
    return f"{value:g} s"


def _spec_fields(spec: Any) -> Node:
    """The declared facts of a spec, for the view and ``tree``."""
    fields: Node = {
        "kind": "supervisor" if spec.is_supervisor else "worker",
        "backend": spec.backend,
        "restart": spec.restart.value,
        "shutdown": describe_shutdown(spec.shutdown),
    }
    if spec.significant:
        fields["significant"] = True
    if spec.is_supervisor:
        fields["strategy"] = spec.strategy.name
        fields["intensity"] = spec.intensity.describe()
        if spec.auto_shutdown is not otp.AutoShutdown.NEVER:
            fields["auto_shutdown"] = spec.auto_shutdown.value
    else:
        fields["target"] = describe_target(spec.start)
    return fields


def declared(spec: otp.SupervisorSpec | otp.ChildSpec, parent: str = "") -> Node:
    """The declared tree as nested nodes (no runtime facts)."""
    path = f"{parent}/{spec.id}" if parent else spec.id
    node: Node = {"id": spec.id, "path": path, **_spec_fields(spec)}
    if isinstance(spec, otp.SupervisorSpec):
        node["children"] = [declared(child, path) for child in spec.children]
    return node


def count_specs(spec: otp.SupervisorSpec) -> tuple[int, int]:
    """(supervisors, workers) declared in a tree, the root included."""
    supervisors, workers = 1, 0
    for child in spec.children:
        if isinstance(child, otp.SupervisorSpec):
            s, w = count_specs(child)
            supervisors += s
            workers += w
        else:
            workers += 1
    return supervisors, workers


class Recorder:
    """A report listener: remembers, per child path, when the child last started and
    how it last ended, and keeps the recent events.

    Register it as the tree's ``on_report``; it runs on the tree's loop. Memory is
    bounded: at most ``limit`` children are remembered (the least recently active go
    first), at most ``events`` events."""

    def __init__(self, *, limit: int = 10_000, events: int = 200) -> None:
        self._limit = limit
        self.started_at: OrderedDict[str, float] = OrderedDict()
        self.last_exit: OrderedDict[str, Node] = OrderedDict()
        self.events: deque[tuple[float, otp.reports.Report]] = deque(maxlen=events)
        self._subscribers: list[Callable[[float, otp.reports.Report], None]] = []

    def subscribe(self, callback: Callable[[float, otp.reports.Report], None]) -> None:
        """Call ``callback(wall_time, report)`` for every report from now on."""
        self._subscribers.append(callback)

    def __call__(self, report: otp.reports.Report) -> None:
        now = time.time()
        rp = otp.reports
        if isinstance(report, rp.ChildStarted):
            self._remember(self.started_at, f"{report.where}/{report.child_id}", now)
        elif isinstance(report, rp.SupervisorStarting) and len(report.path) == 1:
            self._remember(self.started_at, report.where, now)
        elif isinstance(report, rp.ChildExited | rp.ChildTerminated | rp.ChildStartFailed):
            reason = report.reason
            outcome = report.outcome if isinstance(report, rp.ChildExited) else (
                "terminated" if isinstance(report, rp.ChildTerminated) else "start failed")
            self._remember(self.last_exit, f"{report.where}/{report.child_id}", {
                "reason": str(reason),
                "at": now,
                "outcome": outcome,
                "abnormal": bool(reason is not None and reason.is_abnormal),
            })
        self.events.append((now, report))
        for callback in self._subscribers:
            callback(now, report)

    def _remember(self, table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self._limit:
            table.popitem(last=False)

    def recent(self, count: int = 50) -> list[Node]:
        """The last ``count`` events, oldest first, as data."""
        events = list(self.events)[-count:] if count > 0 else []
        return [{"at": at, "text": report.describe(), "type": type(report).__name__}
                for at, report in events]


def probe_fields(spec: Any, details: Any) -> Node | None:
    """A worker's probes for ``status``: each one's description and timing, with the
    running child's counts and last result (from the runner's ``details``)."""
    running = details.get("probes") if isinstance(details, dict) else None
    found: Node = {}
    for role in ("readiness", "liveness"):
        probe = getattr(spec, role, None)
        if probe is None:
            continue
        state = running.get(role) if isinstance(running, dict) else None
        state = state if isinstance(state, dict) else {}
        found[role] = {"probe": probe.describe(), "timing": probe.timing(),
                       "attempts": state.get("attempts", 0),
                       "failures": state.get("failures", 0),
                       "verdict": state.get("verdict"), "last": state.get("last")}
    return found or None


def child_fields(info: otp.ChildInfo, path: str, recorder: Recorder) -> Node:
    """One child's node (see the module docstring), without its children; a worker
    with probes also has ``probes`` (see :func:`probe_fields`)."""
    node = _child_node(info, path, recorder)
    if not info.is_supervisor:
        probes = probe_fields(info.spec, dict(info.details))
        if probes is not None:
            node["probes"] = probes
    return node


def _child_node(info: otp.ChildInfo, path: str, recorder: Recorder) -> Node:
    return {
        "id": info.id,
        "path": path,
        **_spec_fields(info.spec),
        "state": info.state,
        "restarts": info.restarts,
        "pid": info.pid,
        "started_at": recorder.started_at.get(path) if info.state == "running" else None,
        "last_exit": recorder.last_exit.get(path),
        "children": None,
        "note": None,
        **_notified(info.details),
        **_ray_node(info.details),
    }


def _ray_node(details: Any) -> Node:
    """Where a ray child's actor (or a Ray-hosted subtree's) runs, if it is one."""
    node = details.get("node_id") if details else None
    if not isinstance(node, str) or not node:
        return {}
    return {"node": node, "node_ip": details.get("node_ip"),
            "worker_pid": details.get("worker_pid")}


def _notified(details: Any) -> Node:
    """What a child with a notify socket said (its ``STATUS=``), if it said it."""
    status = details.get("status") if details else None
    return {"status": status} if isinstance(status, str) else {}


def exit_record(record: otp.reports.ExitRecord, offset: float) -> Node:
    """One entry of a crash history as data: ``at`` (wall clock: the record's loop
    time plus ``offset``), ``reason``, ``abnormal``, ``traceback`` (a crash of a
    process, thread or asyncio child), ``stderr`` (the tail a process or command
    child wrote), ``uptime`` and the restart ``delay``."""
    reason = record.reason
    traceback = getattr(reason, "traceback", None)
    return {
        "at": record.time + offset,
        "reason": str(reason),
        "abnormal": bool(reason is not None and reason.is_abnormal),
        "traceback": traceback if isinstance(traceback, str) else None,
        "stderr": record.stderr,
        "uptime": record.uptime,
        "delay": record.delay,
    }


async def snapshot(
    sup: otp.AsyncSupervisor,
    spec: otp.SupervisorSpec,
    recorder: Recorder,
    *,
    timeout: float = CALL_TIMEOUT,
) -> Node:
    """The running tree under ``sup`` (whose spec is ``spec``), as nested nodes.

    Never raises for a tree that changes meanwhile: a supervisor that has exited, or
    does not answer within ``timeout`` seconds, is shown without its children and
    with a ``note`` saying why."""
    path = spec.id
    root: Node = {
        "id": spec.id,
        "path": path,
        **_spec_fields(spec),
        "state": "running" if sup.running else "stopped",
        "restarts": None,
        "pid": os.getpid(),
        "started_at": recorder.started_at.get(path),
        "last_exit": None,
    }
    root["children"], root["note"] = await _children(sup, path, recorder, timeout)
    return root


async def _children(
    sup: otp.AsyncSupervisor, path: str, recorder: Recorder, timeout: float
) -> tuple[list[Node] | None, str | None]:
    try:
        infos = await asyncio.wait_for(sup.which_children(), timeout)
    except TimeoutError:
        return None, f"busy: no answer within {timeout:g} s"
    except otp.SupervisorNotRunningError:
        return None, "not running"
    except Exception as exc:  # e.g. a subtree's answer that could not travel
        return None, f"no answer: {exc}"
    nodes: list[Node] = []
    nested: list[tuple[Node, otp.AsyncSupervisor]] = []
    for info in infos:
        node = child_fields(info, f"{path}/{info.id}", recorder)
        nodes.append(node)
        if info.is_supervisor and info.state == "running":
            # (a subtree in a process of its own answers through its pipe)
            nested.append((node, sup.at(info.id)))
    results = await asyncio.gather(
        *(_children(handle, node["path"], recorder, timeout) for node, handle in nested)
    )
    for (node, _), (children, note) in zip(nested, results, strict=True):
        node["children"], node["note"] = children, note
    return nodes, None


def flatten(node: Node, *, max_children: int | None = None) -> list[Node]:
    """The nodes of a tree in start order, each with a ``depth``; at most
    ``max_children`` children per supervisor, the rest summed up in one row
    (``{"more": n, "running": r, "depth": d}``)."""
    rows: list[Node] = []

    def visit(n: Node, depth: int) -> None:
        rows.append({**n, "depth": depth})
        children = n.get("children") or []
        shown = children if max_children is None else children[:max_children]
        for child in shown:
            visit(child, depth + 1)
        hidden = children[len(shown):]
        if hidden:
            running = sum(1 for c in hidden if c.get("state") == "running")
            rows.append({"more": len(hidden), "running": running, "depth": depth + 1,
                         "path": n["path"]})

    visit(node, 0)
    return rows
