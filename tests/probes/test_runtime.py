"""Probes on running trees, with real components: ``python -m http.server`` gated by an
HTTP readiness probe, TCP, exec and function probes, a SIGSTOP'd server found hung by
its liveness probe and restarted, a port never opened (start timeout), an exec probe
that hangs (killed at its timeout), and nothing left behind when a child stops."""

from __future__ import annotations

import functools
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.probes import targets
from tests.reports import Recorder

PY = sys.executable
SERVERS = str(Path(__file__).with_name("servers.py"))
WAIT = 15.0
"""Seconds a test waits for what must happen within a few (a loaded machine is slow)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def http_server(port: int) -> list[str]:
    return [PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


def tree(*children: otp.ChildSpec) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="root", children=list(children),
                              intensity=otp.SlidingWindow(10, 5))


def details(sup: otp.Supervisor, child: str) -> dict[str, Any]:
    [info] = [c for c in sup.which_children() if c.id == child]
    return dict(info.details)


def wait_gone(pids: list[int], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    for pid in pids:
        while True:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            assert time.monotonic() < deadline, f"pid {pid} still runs"
            time.sleep(0.01)


@pytest.fixture
def running() -> Iterator[list[otp.Supervisor]]:
    """Trees to stop at the end of the test, whatever happens."""
    sups: list[otp.Supervisor] = []
    yield sups
    for sup in sups:
        sup.stop()


# ------------------------------------------------------------------- readiness


def test_an_http_readiness_probe_gates_the_start_of_a_real_http_server(
        tmp_path: Path, running: list[otp.Supervisor]) -> None:
    port = free_port()
    answered: list[bool] = []

    def on_report(report: rp.Report) -> None:
        if isinstance(report, rp.ChildStarted) and report.child_id == "web":
            answered.append(connects(port))  # (on the loop, at the moment it is reported)

    web = otp.ChildSpec.command("web", http_server(port), cwd=str(tmp_path), start_timeout=WAIT,
                                readiness=otp.probes.Http(f"http://127.0.0.1:{port}/",
                                                          interval=0.05))
    running.append(otp.start(tree(web), on_report=on_report))
    assert answered == [True]  # reported started only once it answers HTTP
    readiness = details(running[0], "web")["probes"]["readiness"]
    assert readiness["verdict"] == "ready"
    assert readiness["last"]["ok"] is True
    assert readiness["last"]["detail"] == "HTTP 200 OK"


def test_a_probe_of_a_port_never_opened_fails_the_start_at_start_timeout() -> None:
    port = free_port()
    recorder = Recorder()
    never = otp.ChildSpec.command("never", [PY, "-c", "import time; time.sleep(60)"],
                                  start_timeout=1.0,
                                  readiness=otp.probes.Tcp(port, interval=0.05, timeout=0.2))
    began = time.monotonic()
    with pytest.raises(otp.SupervisorExitError) as caught:
        otp.start(tree(never), on_report=recorder)
    assert time.monotonic() - began >= 1.0
    timeout = reasons.StartTimeout(1.0)
    assert caught.value.reason == reasons.Shutdown(reasons.FailedToStartChild("never", timeout))
    assert [r.reason for r in recorder.of(rp.ChildStartFailed, "never")] == [timeout]
    assert recorder.of(rp.ChildStarted, "never") == []


def test_a_child_that_dies_before_its_readiness_probe_passes_fails_its_start() -> None:
    recorder = Recorder()
    dies = otp.ChildSpec.command("dies", [PY, "-c", "raise SystemExit(3)"], start_timeout=WAIT,
                                 readiness=otp.probes.Tcp(free_port(), interval=0.05))
    began = time.monotonic()
    with pytest.raises(otp.SupervisorExitError):
        otp.start(tree(dies), on_report=recorder)
    assert time.monotonic() - began < WAIT  # at once, not at the start timeout
    [failed] = recorder.of(rp.ChildStartFailed, "dies")
    assert failed.reason == reasons.Exited(3)


def test_an_exec_readiness_probe_waits_for_its_command_to_exit_0(
        tmp_path: Path, running: list[otp.Supervisor]) -> None:
    marker = str(tmp_path / "up")
    seen: list[bool] = []

    def on_report(report: rp.Report) -> None:
        if isinstance(report, rp.ChildStarted) and report.child_id == "late":
            seen.append(os.path.exists(marker))

    late = otp.ChildSpec.command(
        "late", [PY, SERVERS, "late-file", marker, "0.3"], start_timeout=WAIT,
        readiness=otp.probes.Exec(["test", "-e", marker], interval=0.05))
    running.append(otp.start(tree(late), on_report=on_report))
    assert seen == [True]
    last = details(running[0], "late")["probes"]["readiness"]["last"]
    assert last == {"ok": True, "detail": "exited with status 0", "took": last["took"]}


async def _exists_async(path: str) -> bool:
    return os.path.exists(path)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_function_readiness_probe_sync_or_async(
        flavour: str, tmp_path: Path, running: list[otp.Supervisor]) -> None:
    marker = str(tmp_path / "up")
    func = functools.partial(os.path.exists if flavour == "sync" else _exists_async, marker)
    seen: list[bool] = []

    def on_report(report: rp.Report) -> None:
        if isinstance(report, rp.ChildStarted) and report.child_id == "late":
            seen.append(os.path.exists(marker))

    late = otp.ChildSpec.command(
        "late", [PY, SERVERS, "late-file", marker, "0.3"], start_timeout=WAIT,
        readiness=otp.probes.Call(func, interval=0.05))
    running.append(otp.start(tree(late), on_report=on_report))
    assert seen == [True]


# -------------------------------------------------------------------- liveness


def _wait_restarted(recorder: Recorder, child: str) -> rp.ChildExited:
    recorder.wait_kind(rp.ChildStarted, child, count=2, timeout=WAIT)
    [exited] = recorder.of(rp.ChildExited, child)
    return exited


def test_a_sigstopped_http_server_is_found_hung_by_its_liveness_probe_and_restarted(
        tmp_path: Path, running: list[otp.Supervisor]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    recorder = Recorder()
    web = otp.ChildSpec.command(
        "web", http_server(port), cwd=str(tmp_path), start_timeout=WAIT, shutdown=0.5,
        readiness=otp.probes.Http(url, interval=0.05),
        liveness=otp.probes.Http(url, interval=0.2, timeout=0.3, failure_threshold=2))
    sup = otp.start(tree(web), on_report=recorder)
    running.append(sup)
    first = details(sup, "web")["pid"]
    os.kill(first, signal.SIGSTOP)  # alive, its port still accepts, but it answers nothing
    try:
        exited = _wait_restarted(recorder, "web")
    finally:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.kill(first, signal.SIGCONT)
    assert isinstance(exited.reason, reasons.Hung)
    assert exited.reason.detail.startswith(f"liveness probe http GET {url} failed 2 times")
    assert "no answer within 0.3 s" in exited.reason.detail
    wait_gone([first])
    assert details(sup, "web")["pid"] != first
    assert connects(port)  # the new one serves


def test_a_tcp_liveness_probe_finds_a_closed_listener_and_the_child_is_restarted(
        running: list[otp.Supervisor]) -> None:
    port = free_port()
    recorder = Recorder()
    server = otp.ChildSpec.command(
        "server", [PY, SERVERS, "tcp", str(port)], start_timeout=WAIT,
        readiness=otp.probes.Tcp(port, interval=0.05),
        liveness=otp.probes.Tcp(port, interval=0.1, timeout=0.5, failure_threshold=2))
    sup = otp.start(tree(server), on_report=recorder)
    running.append(sup)
    first = details(sup, "server")["pid"]
    os.kill(first, signal.SIGUSR1)  # it closes its listener and runs on
    exited = _wait_restarted(recorder, "server")
    assert isinstance(exited.reason, reasons.Hung)
    assert "tcp 127.0.0.1" in exited.reason.detail
    assert "connection refused" in exited.reason.detail
    wait_gone([first])


def test_an_exec_probe_that_hangs_is_killed_at_its_timeout(
        tmp_path: Path, running: list[otp.Supervisor]) -> None:
    pids = tmp_path / "pids"
    recorder = Recorder()
    child = otp.ChildSpec.command(
        "w", [PY, "-c", "import time; time.sleep(60)"],
        liveness=otp.probes.Exec(["sh", "-c", f"echo $$ >> {pids}; exec sleep 60"],
                                 interval=0.1, timeout=0.4, failure_threshold=2))
    running.append(otp.start(tree(child), on_report=recorder))
    exited = _wait_restarted(recorder, "w")
    assert isinstance(exited.reason, reasons.Hung)
    assert exited.reason.detail.endswith("failed 2 times in a row; last: no answer within 0.4 s")
    probe_pids = [int(line) for line in pids.read_text().split()]
    assert len(probe_pids) >= 2
    wait_gone(probe_pids[:2])  # both killed at their timeout (and reaped)


@pytest.mark.parametrize("backend", ["command", "process", "thread", "asyncio"])
def test_a_function_liveness_probe_on_every_backend(
        backend: str, running: list[otp.Supervisor]) -> None:
    start: Any = {"command": [PY, "-c", "import time; time.sleep(60)"],
                  "process": targets.sleep_forever, "thread": targets.thread_forever,
                  "asyncio": targets.task_forever}[backend]
    func = targets.alive_async if backend in ("asyncio", "command") else targets.alive
    recorder = Recorder()
    child = otp.ChildSpec(id="w", start=start, backend=backend,  # type: ignore[arg-type]
                          liveness=otp.probes.Call(func, interval=0.05, failure_threshold=2))
    targets.BROKEN.clear()
    sup = otp.start(tree(child), on_report=recorder)
    running.append(sup)
    try:
        assert details(sup, "w")["probes"]["liveness"]["verdict"] is None
        targets.BROKEN.set()
        recorder.wait_kind(rp.ChildExited, "w", timeout=WAIT)
        targets.BROKEN.clear()  # the new one is alive
        exited = _wait_restarted(recorder, "w")
    finally:
        targets.BROKEN.clear()
    assert isinstance(exited.reason, reasons.Hung)
    assert "returned False" in exited.reason.detail


def test_a_blocking_plain_function_probe_fails_at_its_timeout_without_blocking_the_loop(
        running: list[otp.Supervisor]) -> None:
    recorder = Recorder()
    child = otp.ChildSpec(id="w", start=targets.task_forever, liveness=otp.probes.Call(
        targets.blocking_check, interval=0.05, timeout=0.2, failure_threshold=2))
    targets.RELEASE.clear()
    sup = otp.start(tree(child), on_report=recorder)
    running.append(sup)
    try:
        began = time.monotonic()
        sup.which_children()  # the loop answers while the function blocks
        assert time.monotonic() - began < 1.0
        exited = recorder.wait_kind(rp.ChildExited, "w", timeout=WAIT)[0]
    finally:
        targets.RELEASE.set()  # (its thread then ends with the tree)
    assert isinstance(exited.reason, reasons.Hung)
    assert exited.reason.detail.endswith(
        "failed 2 times in a row; last: still running since an earlier attempt")


# ---------------------------------------------------------- nothing left behind


def test_a_stop_during_an_exec_probe_kills_the_probe_command(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    child = otp.ChildSpec.command(
        "w", [PY, "-c", "import time; time.sleep(60)"],
        liveness=otp.probes.Exec(["sh", "-c", f"echo $$ >> {pids}; exec sleep 60"],
                                 interval=0.05, timeout=60))
    sup = otp.start(tree(child))
    try:
        deadline = time.monotonic() + WAIT
        while not (pids.exists() and pids.read_text().strip()):
            assert time.monotonic() < deadline, "the probe never ran"
            time.sleep(0.01)
    finally:
        sup.stop()
    [pid] = [int(line) for line in pids.read_text().split()]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_no_attempt_runs_once_the_child_has_stopped() -> None:
    targets.CALLS.clear()
    child = otp.ChildSpec(id="w", start=targets.thread_forever, backend="thread",
                          liveness=otp.probes.Call(targets.counting_check, interval=0.02))
    sup = otp.start(tree(child))
    deadline = time.monotonic() + WAIT
    while len(targets.CALLS) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    sup.terminate_child("w")
    stopped = time.monotonic()
    count = len(targets.CALLS)
    time.sleep(0.2)  # ten intervals: none may come
    sup.stop()
    assert [t for t in targets.CALLS if t > stopped] == []
    assert len(targets.CALLS) == count
