"""Prometheus metrics of a running tree, read from its reports.

:class:`TreeMetrics` is a report listener and a Prometheus *collector* at once: pass
it as ``on_report=`` when the tree starts (so it sees the first starts), register it
in your own registry, and optionally :meth:`~TreeMetrics.watch` the tree's handle so
a scrape can read each supervisor's restart budget::

    from prometheus_client import CollectorRegistry
    from otp_py.observe import TreeMetrics

    metrics = TreeMetrics()
    registry = CollectorRegistry()
    registry.register(metrics)
    sup = otp.start(tree, on_report=metrics)
    metrics.watch(sup)

The metrics (the ``tree`` label is the root's id, ``supervisor`` the supervisor's
path such as ``root/pool``; children of a simple_one_for_one supervisor are counted
together under the template's id; there is never a pid label):

========================================================  ===========================
``otp_py_children{tree,supervisor,state}``                children running,
                                                          restarting, stopped
``otp_py_child_up{tree,supervisor,child,backend}``        1 running, 0 not (dynamic:
                                                          how many instances run)
``otp_py_child_restarts_total{tree,supervisor,child,..}`` starts after the first
``otp_py_child_exits_total{...,reason}``                  ends, by reason: normal,
                                                          shutdown, error, killed,
                                                          signal, hung, start_failed
``otp_py_child_last_exit_timestamp_seconds{...}``         wall time of the last end
``otp_py_restart_latency_seconds{tree,supervisor}``       histogram: exit seen until
                                                          the new child is ready
``otp_py_restart_budget_used_ratio{tree,supervisor}``     1.0: the next restart gives
                                                          up (needs :meth:`watch`)
``otp_py_supervisor_give_ups_total{tree,supervisor}``     intensity exceeded
``otp_py_loop_lag_seconds{tree}``                         lateness of the loop probe
========================================================  ===========================

The loop-lag probe is one ``call_later`` chain per tree, started from the tree's loop
at its first report: every ``lag_interval`` seconds it measures how late its own
timer fired. A scrape while the probe is overdue reports the lateness so far, so a
loop blocked for good shows a growing lag rather than its last healthy value. (The
probe wakes an otherwise idle tree once per interval; nothing else here does.)

prometheus-client is the ``otp_py[metrics]`` extra; this module imports it only when
a :class:`TreeMetrics` is made, and says so if it is missing.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from otp_py import reasons as rs
from otp_py import reports as rp

__all__ = [
    "EXIT_REASONS",
    "LATENCY_BUCKETS",
    "MetricsServer",
    "TreeMetrics",
    "exit_reason_label",
    "parse_address",
    "serve_metrics",
]

EXIT_REASONS: Final = ("normal", "shutdown", "error", "killed", "signal", "hung",
                       "start_failed")
"""The closed set of ``reason`` label values of ``otp_py_child_exits_total``."""

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                          30.0, 60.0)
"""Upper bounds (seconds) of the restart latency histogram's buckets (backoff delays
are part of the latency, hence the long tail)."""

STATES: Final = ("running", "restarting", "stopped")

_OUTCOME_STATE: Final = {
    "restart": "restarting",
    "ignore": "restarting",
}


def exit_reason_label(reason: rs.ExitReason | None) -> str:
    """The ``reason`` label of an exit: one of :data:`EXIT_REASONS`.

    The label is a class, never the text (a message or an exit code in a label would
    make a new series per crash)."""
    if isinstance(reason, rs.Normal):
        return "normal"
    if isinstance(reason, rs.Shutdown):
        return "shutdown"
    if isinstance(reason, rs.Killed):
        return "killed"
    if isinstance(reason, rs.Signaled):
        return "signal"
    if isinstance(reason, rs.Hung | rs.Unstoppable):
        return "hung"
    if isinstance(reason, rs.StartTimeout):
        return "start_failed"
    return "error"


def _prometheus() -> Any:
    try:
        from prometheus_client import core
    except ImportError:
        raise ImportError(
            "otp_py's metrics need prometheus-client: pip install 'otp_py[metrics]'"
        ) from None
    return core


class _Child:
    __slots__ = ("backend", "key", "state")

    def __init__(self, key: str, backend: str) -> None:
        self.key = key  # the label: its id, or its template's
        self.backend = backend
        self.state = "running"


class _Probe:
    """The loop-lag probe of one tree: a timer that measures its own lateness."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.loop = loop
        self.interval = interval
        self.lag = 0.0
        self.due: float | None = None
        self.handle: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self.due = time.monotonic() + self.interval
        self.handle = self.loop.call_later(self.interval, self._fired)

    def _fired(self) -> None:
        if self.due is not None:
            self.lag = max(time.monotonic() - self.due, 0.0)
        self._arm()

    def current(self) -> float:
        due = self.due
        overdue = 0.0 if due is None else time.monotonic() - due
        return max(self.lag, overdue)

    def cancel(self) -> None:
        self.due = None
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


class TreeMetrics:
    """A report listener that keeps the tree's metrics, and the Prometheus collector
    that exports them (call it with each report; register it in a registry).

    ``lag_interval``: seconds between two loop-lag probes (None: no probe, and no
    ``otp_py_loop_lag_seconds``). ``budget_timeout``: how long a scrape waits for a
    watched tree's loop to read its budgets (a blocked loop then shows no ratio, and
    its lag says why). Raises :class:`ImportError` naming the extra when
    prometheus-client is not installed."""

    def __init__(self, *, lag_interval: float | None = 1.0, budget_timeout: float = 1.0,
                 buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self._core = _prometheus()
        if lag_interval is not None and not lag_interval > 0:
            raise ValueError(f"TreeMetrics: lag_interval must be > 0 seconds or None; "
                             f"got {lag_interval!r}")
        self._lag_interval = lag_interval
        self._budget_timeout = budget_timeout
        self._buckets = tuple(sorted(float(b) for b in buckets))
        self._lock = threading.Lock()
        self._dynamic: set[tuple[str, ...]] = set()  # simple_one_for_one supervisors
        self._supervisors: set[tuple[str, ...]] = set()
        self._children: dict[tuple[tuple[str, ...], str], _Child] = {}
        self._backends: dict[tuple[tuple[str, ...], str], str] = {}
        self._restarts: dict[tuple[str, ...], int] = defaultdict(int)
        self._exits: dict[tuple[str, ...], int] = defaultdict(int)
        self._last_exit: dict[tuple[str, ...], float] = {}
        self._give_ups: dict[tuple[str, ...], int] = defaultdict(int)
        self._exit_seen: dict[tuple[tuple[str, ...], str], float] = {}
        self._latency: dict[tuple[str, ...], list[float]] = {}  # per-bucket counts + sum
        self._probes: dict[str, _Probe] = {}
        self._watched: dict[str, tuple[Any, asyncio.AbstractEventLoop | None]] = {}

    # ------------------------------------------------------------------ reports

    def __call__(self, report: rp.Report) -> None:
        """Take one report (this object is the listener)."""
        with self._lock:
            self._take(report)
            if (self._lag_interval is not None and type(report) is rp.SupervisorStarting
                    and report.path[0] not in self._probes):
                self._start_probe(report.path[0])

    def _start_probe(self, tree: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not called from a loop (a replay): no probe
            return
        assert self._lag_interval is not None
        self._probes[tree] = _Probe(loop, self._lag_interval)

    def _label(self, sup: tuple[str, ...], child_id: str) -> str:
        if sup in self._dynamic:
            return child_id.rpartition("#")[0] or child_id
        return child_id

    def _series(self, sup: tuple[str, ...], child_id: str, backend: str) -> tuple[str, ...]:
        return (sup[0], "/".join(sup), self._label(sup, child_id), backend)

    def _ended(self, sup: tuple[str, ...], child_id: str, reason: str) -> None:
        backend = self._backends.get((sup, child_id), "")
        series = self._series(sup, child_id, backend)
        self._exits[(*series, reason)] += 1
        self._last_exit[series] = time.time()

    def _take(self, report: rp.Report) -> None:
        sup = report.path
        kind = type(report)
        if kind is rp.SupervisorStarting:
            self._supervisors.add(sup)
            if report.strategy == "simple_one_for_one":  # type: ignore[attr-defined]
                self._dynamic.add(sup)
        elif kind is rp.ChildStarted:
            child_id: str = report.child_id  # type: ignore[attr-defined]
            key = (sup, child_id)
            backend: str = report.backend  # type: ignore[attr-defined]
            self._backends[key] = backend
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = _Child(self._label(sup, child_id), backend)
            child.state = "running"
            if report.restarts:  # type: ignore[attr-defined]
                self._restarts[self._series(sup, child_id, backend)] += 1
            seen = self._exit_seen.pop(key, None)
            if seen is not None:
                self._observe_latency((sup[0], "/".join(sup)), max(report.time - seen, 0.0))
        elif kind is rp.ChildStartFailed:
            child_id = report.child_id  # type: ignore[attr-defined]
            key = (sup, child_id)
            self._backends.setdefault(key, report.backend)  # type: ignore[attr-defined]
            self._ended(sup, child_id, "start_failed")
        elif kind is rp.ChildExited:
            child_id = report.child_id  # type: ignore[attr-defined]
            key = (sup, child_id)
            self._ended(sup, child_id, exit_reason_label(report.reason))  # type: ignore[attr-defined]
            outcome: str = report.outcome  # type: ignore[attr-defined]
            state = _OUTCOME_STATE.get(outcome, "stopped")
            if state == "restarting":
                self._exit_seen[key] = report.time
            self._set_state(sup, child_id, state, removed=outcome == "remove")
        elif kind is rp.ChildTerminated:
            child_id = report.child_id  # type: ignore[attr-defined]
            self._ended(sup, child_id, exit_reason_label(report.reason))  # type: ignore[attr-defined]
            self._set_state(sup, child_id, "stopped", removed=sup in self._dynamic)
        elif kind is rp.RestartScheduled:
            self._set_state(sup, report.child_id, "restarting")  # type: ignore[attr-defined]
        elif kind is rp.IntensityExceeded:
            self._give_ups[(sup[0], "/".join(sup))] += 1
        elif kind is rp.SupervisorExited:
            self._supervisor_gone(sup)

    def _set_state(self, sup: tuple[str, ...], child_id: str, state: str, *,
                   removed: bool = False) -> None:
        key = (sup, child_id)
        if removed:
            self._children.pop(key, None)
            self._exit_seen.pop(key, None)
            return
        child = self._children.get(key)
        if child is not None:
            child.state = state

    def _supervisor_gone(self, sup: tuple[str, ...]) -> None:
        """A supervisor ended with all its children: they are no longer children (its
        counters stay, as counters do). A restarted one reports its starts anew."""
        size = len(sup)
        for key in [k for k in self._children if k[0][:size] == sup]:
            del self._children[key]
            self._exit_seen.pop(key, None)
        for path in [p for p in self._supervisors if p[:size] == sup]:
            self._supervisors.discard(path)
        if size == 1:
            probe = self._probes.pop(sup[0], None)
            if probe is not None:
                probe.cancel()
            self._watched.pop(sup[0], None)

    def _observe_latency(self, series: tuple[str, ...], seconds: float) -> None:
        counts = self._latency.get(series)
        if counts is None:
            counts = self._latency[series] = [0.0] * (len(self._buckets) + 2)
        counts[bisect.bisect_left(self._buckets, seconds)] += 1  # (last: +Inf)
        counts[-1] += seconds

    # ------------------------------------------------------------------ budgets

    def watch(self, handle: Any) -> None:
        """Read the restart budgets of the tree behind ``handle`` (a
        :class:`~otp_py.Supervisor` or :class:`~otp_py.AsyncSupervisor` on its root)
        at each scrape, for ``otp_py_restart_budget_used_ratio``. An
        :class:`~otp_py.AsyncSupervisor` must be watched from its loop."""
        if not hasattr(handle, "restart_budgets") or not getattr(handle, "path", None):
            raise TypeError(f"TreeMetrics.watch() takes a Supervisor or AsyncSupervisor "
                            f"handle; got {handle!r}")
        import otp_py as otp

        loop = None
        if isinstance(handle, otp.AsyncSupervisor):
            loop = asyncio.get_running_loop()  # read on its loop, never from another
        self._watched[handle.path[0]] = (handle, loop)

    def _budgets(self) -> dict[str, float | None]:
        found: dict[str, float | None] = {}
        for handle, loop in list(self._watched.values()):
            with contextlib.suppress(Exception):  # an ended or blocked tree: no ratio
                found.update(self._read_budgets(handle, loop))
        return found

    def _read_budgets(self, handle: Any, loop: asyncio.AbstractEventLoop | None
                      ) -> dict[str, float | None]:
        if loop is None:
            result: dict[str, float | None] = handle.restart_budgets(self._budget_timeout)
            return result
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            result = handle.restart_budgets()
            return result
        future: concurrent.futures.Future[dict[str, float | None]] = (
            concurrent.futures.Future())

        def read() -> None:
            try:
                future.set_result(handle.restart_budgets())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(read)
        return future.result(self._budget_timeout)

    # ------------------------------------------------------------------ collecting

    def describe(self) -> list[Any]:
        """The metric families, without samples (so registering reads nothing)."""
        return list(self._families().values())

    def collect(self) -> Iterator[Any]:
        """The current samples, for a registry's scrape."""
        budgets = self._budgets() if self._watched else {}
        with self._lock:
            families = self._families()
            self._fill(families, budgets)
        yield from families.values()

    def _families(self) -> dict[str, Any]:
        core = self._core
        child = ["tree", "supervisor", "child", "backend"]
        sup = ["tree", "supervisor"]
        families = {
            "children": core.GaugeMetricFamily(
                "otp_py_children", "Children of each supervisor, by state.",
                labels=[*sup, "state"]),
            "up": core.GaugeMetricFamily(
                "otp_py_child_up", "1 when the child runs (a simple_one_for_one "
                "template: how many of its children run).", labels=child),
            "restarts": core.CounterMetricFamily(
                "otp_py_child_restarts", "Starts of a child after its first.", labels=child),
            "exits": core.CounterMetricFamily(
                "otp_py_child_exits", "Ends of a child, by class of reason.",
                labels=[*child, "reason"]),
            "last_exit": core.GaugeMetricFamily(
                "otp_py_child_last_exit_timestamp_seconds",
                "Unix time of the child's last end.", labels=child),
            "latency": core.HistogramMetricFamily(
                "otp_py_restart_latency_seconds",
                "Seconds from a child's exit being seen to its new instance being ready.",
                labels=sup),
            "budget": core.GaugeMetricFamily(
                "otp_py_restart_budget_used_ratio",
                "Restarts counting in the supervisor's window over those allowed "
                "(1: the next restart gives up).", labels=sup),
            "give_ups": core.CounterMetricFamily(
                "otp_py_supervisor_give_ups", "Times a supervisor gave up (intensity "
                "exceeded).", labels=sup),
        }
        if self._lag_interval is not None:
            families["lag"] = core.GaugeMetricFamily(
                "otp_py_loop_lag_seconds", "How late the tree loop's probe timer fired "
                "(or is, while overdue).", labels=["tree"])
        return families

    def _fill(self, families: dict[str, Any], budgets: dict[str, float | None]) -> None:
        counts: dict[tuple[str, str], dict[str, int]] = {}
        for sup in self._supervisors:
            counts[(sup[0], "/".join(sup))] = dict.fromkeys(STATES, 0)
        up: dict[tuple[str, ...], int] = {}
        for (sup, _), child in self._children.items():
            place = (sup[0], "/".join(sup))
            states = counts.setdefault(place, dict.fromkeys(STATES, 0))
            states[child.state] += 1
            series = (*place, child.key, child.backend)
            up[series] = up.get(series, 0) + (child.state == "running")
        for (tree, where), states in sorted(counts.items()):
            for state, number in states.items():
                families["children"].add_metric([tree, where, state], number)
        for labels, value in _rows(up):
            families["up"].add_metric(labels, value)
        for labels, value in _rows(self._restarts):
            families["restarts"].add_metric(labels, value)
        for labels, value in _rows(self._exits):
            families["exits"].add_metric(labels, value)
        for labels, value in _rows(self._last_exit):
            families["last_exit"].add_metric(labels, value)
        for key, cells in sorted(self._latency.items()):
            cumulative, total = [], 0.0
            for bound, count in zip((*self._buckets, float("inf")), cells[:-1], strict=True):
                total += count
                cumulative.append((_bound(bound), total))
            families["latency"].add_metric(list(key), cumulative, sum_value=cells[-1])
        for name, ratio in sorted(budgets.items()):
            if ratio is not None:
                families["budget"].add_metric([name.split("/", 1)[0], name], ratio)
        for labels, value in _rows(self._give_ups):
            families["give_ups"].add_metric(labels, value)
        if "lag" in families:
            for tree, probe in sorted(self._probes.items()):
                families["lag"].add_metric([tree], probe.current())


def _rows(values: Mapping[tuple[str, ...], float]) -> list[tuple[list[str], float]]:
    return [(list(key), value) for key, value in sorted(values.items())]


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


class MetricsServer:
    """An HTTP server for ``/metrics`` in a daemon thread (see :func:`serve_metrics`)."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def address(self) -> tuple[str, int]:
        """The host and port it listens on (the port chosen, when 0 was asked)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def serve_metrics(metrics: TreeMetrics, host: str = "127.0.0.1", port: int = 0, *,
                  registry: Any = None) -> MetricsServer:
    """Serve ``metrics`` (in ``registry``, or a registry of its own) over HTTP at
    ``http://host:port/metrics`` from a daemon thread; port 0 picks a free one
    (:attr:`MetricsServer.address` says which). Close it with
    :meth:`MetricsServer.close`."""
    _prometheus()
    from prometheus_client import CollectorRegistry, start_http_server

    if registry is None:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(metrics)
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9100``, ``:9100`` for all addresses) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT (such as 127.0.0.1:9100); got {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)

