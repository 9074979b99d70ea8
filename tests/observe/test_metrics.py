"""Prometheus metrics: a running tree scraped over HTTP, the text parsed with
prometheus-client's own parser.

Children really crash (a command killed by a signal, a process child raising), and the
restart budget is read on real time with a short window: it rises with each restart
and falls back once the window has passed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import otp_py as otp
from otp_py import reasons
from otp_py._core.intensity import SlidingWindow
from otp_py.observe import EXIT_REASONS, TreeMetrics, exit_reason_label, serve_metrics
from otp_py.observe.metrics import parse_address
from tests.observe.targets import crash_on_usr1

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

TIMEOUT = 30.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """GET ``url`` and parse it with prometheus-client's parser."""
    with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
        assert answer.status == 200
        text = answer.read().decode()
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def wait_for(predicate, what: str, timeout: float = TIMEOUT):  # type: ignore[no-untyped-def]
    """Poll ``predicate()`` (a scrape, say) until it returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def pid_of(sup: otp.Supervisor, child: str) -> int:
    [row] = [c for c in sup.which_children() if c.id == child]
    assert row.pid is not None, row
    return row.pid


@pytest.fixture
def served() -> Iterator[tuple[TreeMetrics, str]]:
    metrics = TreeMetrics(lag_interval=0.1)
    with serve_metrics(metrics, "127.0.0.1", 0) as server:
        host, port = server.address
        yield metrics, f"http://{host}:{port}/metrics"


WINDOW = 4.0


def _crashing_tree() -> otp.SupervisorSpec:
    return otp.SupervisorSpec(
        id="root",
        intensity=otp.SlidingWindow(max_restarts=10, period=WINDOW),
        children=[
            otp.ChildSpec.command("sleeper", ["sleep", "600"]),
            otp.ChildSpec(id="worker", start=crash_on_usr1, backend="process",
                        ready=True),
        ],
    )


def _restarted(sup: otp.Supervisor, child: str, count: int) -> bool:
    return any(c.id == child and c.restarts >= count and c.state == "running"
               for c in sup.which_children())


def test_a_crash_is_counted_under_the_childs_labels_and_the_budget_rises_and_falls(
        served: tuple[TreeMetrics, str]) -> None:
    metrics, url = served
    sup = otp.start(_crashing_tree(), on_report=metrics)
    try:
        metrics.watch(sup)
        first = scrape(url)
        cmd = {"tree": "root", "supervisor": "root", "child": "sleeper", "backend": "command"}
        proc = {**cmd, "child": "worker", "backend": "process"}
        assert value(first, "otp_py_child_up", **cmd) == 1
        assert value(first, "otp_py_child_up", **proc) == 1
        assert value(first, "otp_py_children", tree="root", supervisor="root",
                     state="running") == 2
        assert value(first, "otp_py_child_restarts_total", **cmd) is None
        assert value(first, "otp_py_restart_budget_used_ratio", tree="root",
                     supervisor="root") == 0

        os.kill(pid_of(sup, "sleeper"), signal.SIGKILL)  # crash 1: a signal
        wait_for(lambda: _restarted(sup, "sleeper", 1), "the command restarted")
        after_one = scrape(url)
        assert value(after_one, "otp_py_child_restarts_total", **cmd) == 1
        assert value(after_one, "otp_py_child_exits_total", **cmd, reason="signal") == 1
        assert value(after_one, "otp_py_child_up", **cmd) == 1
        assert value(after_one, "otp_py_child_last_exit_timestamp_seconds", **cmd) \
            == pytest.approx(time.time(), abs=TIMEOUT)
        assert value(after_one, "otp_py_restart_latency_seconds_count", tree="root",
                     supervisor="root") == 1
        ratio_one = value(after_one, "otp_py_restart_budget_used_ratio", tree="root",
                          supervisor="root")

        os.kill(pid_of(sup, "worker"), signal.SIGUSR1)  # crash 2: an exception
        wait_for(lambda: _restarted(sup, "worker", 1), "the process child restarted")
        after_two = scrape(url)
        assert value(after_two, "otp_py_child_restarts_total", **proc) == 1
        assert value(after_two, "otp_py_child_exits_total", **proc, reason="error") == 1
        assert value(after_two, "otp_py_child_restarts_total", **cmd) == 1
        ratio_two = value(after_two, "otp_py_restart_budget_used_ratio", tree="root",
                          supervisor="root")
        # 1 then 2 restarts of the 10 allowed, unless the window passed in between
        # (only a machine stalled for seconds would see that; the fall is tested below).
        assert ratio_one == pytest.approx(0.1)
        assert ratio_two is not None and ratio_two > 0
        if ratio_two != pytest.approx(0.1):
            assert ratio_two == pytest.approx(0.2)

        # No restart any more: the window passes and the ratio falls back to 0.
        def fallen() -> bool:
            ratio = value(scrape(url), "otp_py_restart_budget_used_ratio", tree="root",
                          supervisor="root")
            return ratio == 0

        wait_for(fallen, "the budget ratio fell back to 0", timeout=WINDOW + TIMEOUT)
        final = scrape(url)
        assert value(final, "otp_py_child_restarts_total", **cmd) == 1  # counters stay
        assert value(final, "otp_py_supervisor_give_ups_total", tree="root",
                     supervisor="root") is None
    finally:
        sup.stop()


def test_a_supervisor_that_gives_up_is_counted() -> None:
    metrics = TreeMetrics(lag_interval=None)
    registry = prometheus_client.CollectorRegistry()
    registry.register(metrics)
    tree = otp.SupervisorSpec(
        id="root", intensity=otp.SlidingWindow(1, 60.0), children=[
            otp.SupervisorSpec(id="pool", intensity=otp.SlidingWindow(0, 60.0), children=[
                otp.ChildSpec.command("job", [sys.executable, "-c", "raise SystemExit(3)"]),
            ]),
        ])
    sup = otp.start(tree, on_report=metrics)
    try:
        def gave_up() -> Samples:
            text = prometheus_client.generate_latest(registry).decode()
            found: Samples = {}
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    found[(sample.name, frozenset(sample.labels.items()))] = sample.value
            hit = value(found, "otp_py_supervisor_give_ups_total", tree="root",
                        supervisor="root/pool")
            return found if hit == 1 else {}

        found = wait_for(gave_up, "root/pool gave up")
        assert value(found, "otp_py_child_exits_total", tree="root", supervisor="root/pool",
                     child="job", backend="command", reason="error") == 1
    finally:
        sup.stop()


async def _worker() -> None:
    await asyncio.Event().wait()


def test_simple_one_for_one_children_are_counted_under_the_template(
        served: tuple[TreeMetrics, str]) -> None:
    metrics, url = served
    tree = otp.SupervisorSpec(id="root", children=[
        otp.SupervisorSpec(id="pool", strategy=otp.SimpleOneForOne(), children=[
            otp.ChildSpec.task("conn", _worker, restart=otp.Restart.TEMPORARY)]),
    ])
    sup = otp.start(tree, on_report=metrics)
    try:
        metrics.watch(sup)
        ids = [sup.start_child(supervisor="pool") for _ in range(3)]
        sup.terminate_child(f"pool/{ids[0]}")
        found = scrape(url)
        labels = {"tree": "root", "supervisor": "root/pool", "child": "conn",
                  "backend": "asyncio"}
        assert value(found, "otp_py_child_up", **labels) == 2
        assert value(found, "otp_py_child_exits_total", **labels, reason="shutdown") == 1
        assert value(found, "otp_py_children", tree="root", supervisor="root/pool",
                     state="running") == 2
        named = {dict(key[1]).get("child") for key in found}
        assert not any("#" in str(name) for name in named), named  # no per-instance series
        assert all("pid" not in dict(key[1]) for key in found)
    finally:
        sup.stop()


_LOOPS: list[asyncio.AbstractEventLoop] = []


async def _loop_grabber() -> None:
    _LOOPS.append(asyncio.get_running_loop())
    await asyncio.Event().wait()


def test_a_blocked_loop_shows_in_the_loop_lag(served: tuple[TreeMetrics, str]) -> None:
    metrics, url = served
    _LOOPS.clear()
    tree = otp.SupervisorSpec(id="root", children=[otp.ChildSpec.task("grab", _loop_grabber)])
    sup = otp.start(tree, on_report=metrics)
    try:
        assert value(scrape(url), "otp_py_loop_lag_seconds", tree="root") is not None
        blocked = threading.Event()

        def block() -> None:
            blocked.set()
            time.sleep(1.0)  # the tree's loop does nothing else meanwhile

        wait_for(lambda: _LOOPS, "the task child running")  # (up before its first step)
        _LOOPS[0].call_soon_threadsafe(block)
        assert blocked.wait(TIMEOUT)

        def lag_seen() -> bool:
            lag = value(scrape(url), "otp_py_loop_lag_seconds", tree="root")
            return lag is not None and lag >= 0.5

        wait_for(lag_seen, "a lag of at least 0.5 s")
    finally:
        sup.stop()


def test_a_budget_used_ratio_is_a_pure_query_on_the_window() -> None:
    budget = SlidingWindow(max_restarts=2, period=10.0).budget(lambda: 0.5)
    assert budget.used_ratio(0.0) == 0
    budget.on_failure("a", 1.0)
    assert budget.used_ratio(1.0) == 0.5
    budget.on_failure("b", 2.0)
    assert budget.used_ratio(2.0) == 1.0  # the next restart gives up
    assert budget.used_ratio(11.0) == 1.0  # OTP's boundary: t >= now - period still counts
    assert budget.used_ratio(11.5) == 0.5  # a's restart left the window
    assert budget.used_ratio(12.5) == 0
    assert budget.on_failure("a", 12.5).allow  # the query changed nothing it decides on
    assert SlidingWindow(0, 5.0).budget(lambda: 0.5).used_ratio(0.0) == 1.0
    assert otp.ExponentialBackoff().budget(lambda: 0.5).used_ratio(0.0) is None
    combined = (otp.SlidingWindow(4, 10.0) & otp.ExponentialBackoff()).budget(lambda: 0.5)
    combined.on_failure("a", 0.0)
    assert combined.used_ratio(0.0) == 0.25


@pytest.mark.parametrize(("reason", "label"), [
    (reasons.Normal(), "normal"),
    (reasons.Shutdown(), "shutdown"),
    (reasons.Shutdown("bye"), "shutdown"),
    (reasons.Crashed("ValueError", "bad"), "error"),
    (reasons.Exited(3), "error"),
    (reasons.Abnormal("boom"), "error"),
    (reasons.Killed(), "killed"),
    (reasons.Signaled(9, "SIGKILL"), "signal"),
    (reasons.Hung("no heartbeat"), "hung"),
    (reasons.StartTimeout(5.0), "start_failed"),
])
def test_exit_reasons_map_to_a_closed_set(reason: reasons.ExitReason, label: str) -> None:
    assert exit_reason_label(reason) == label
    assert label in EXIT_REASONS


def test_addresses_are_parsed() -> None:
    assert parse_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_address("[::1]:9100") == ("::1", 9100)
    assert parse_address(":9100") == ("0.0.0.0", 9100)
    for bad in ("9100", "host:", "host:http", "host:70000"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_address(bad)


def test_without_prometheus_client_the_error_names_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"otp_py\[metrics\]"):
        TreeMetrics()


def test_otp_py_run_serves_metrics(tmp_path: Path) -> None:
    from tests.cli.clitools import Cli, runtime_dir

    tree = tmp_path / "tree.toml"
    tree.write_text(
        'id = "root"\n'
        'intensity = { max_restarts = 100, period = 60 }\n'
        '[[children]]\n'
        'id = "flaky"\n'
        f'command = [{json.dumps(sys.executable)}, "-c", "import time; time.sleep(0.2); '
        'raise SystemExit(3)"]\n')
    with runtime_dir() as runtime, Cli(["run", str(tree), "--view", "events", "--no-control",
                                        "--metrics", "127.0.0.1:0"], runtime) as cli:
        line = cli.wait_for(r"metrics at http://127\.0\.0\.1:\d+/metrics")
        url = line.split("metrics at ", 1)[1].strip()
        labels = {"tree": "root", "supervisor": "root", "child": "flaky",
                  "backend": "command"}

        def restarted() -> Samples:
            found = scrape(url)
            count = value(found, "otp_py_child_restarts_total", **labels)
            return found if count is not None and count >= 1 else {}

        found = wait_for(restarted, "a restart of flaky counted")
        assert (value(found, "otp_py_child_exits_total", **labels, reason="error") or 0) >= 1
        ratio = value(found, "otp_py_restart_budget_used_ratio", tree="root", supervisor="root")
        assert ratio is not None and 0 < ratio <= 1
        assert value(found, "otp_py_loop_lag_seconds", tree="root") is not None
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.wait() == 0, cli.output


def test_otp_py_run_refuses_a_bad_metrics_address(tmp_path: Path) -> None:
    from tests.cli.clitools import run, runtime_dir

    with runtime_dir() as runtime:
        result = run(["run", "whatever.toml", "--metrics", "nowhere"], runtime)
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr
