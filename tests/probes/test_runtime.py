"""Probes on running trees, with real components: ``python -m http.server`` gated by an
HTTP readiness probe, TCP, exec and function probes, a SIGSTOP'd server found hung by
its liveness probe and restarted, a port never opened (start timeout), an exec probe
that hangs (killed at its timeout), and nothing left behind when a child stops."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import threading
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


def _start_failure(spec: otp.SupervisorSpec, recorder: Recorder) -> otp.SupervisorExitError:
    """The error ``otp.start(spec)`` raises, failing the test (rather than hanging it)
    if the start neither fails nor succeeds within WAIT seconds."""
    outcome: list[BaseException | otp.Supervisor] = []

    def start() -> None:
        try:
            outcome.append(otp.start(spec, on_report=recorder))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    thread.join(WAIT)
    if not outcome:
        pytest.fail(f"the start neither failed nor succeeded within {WAIT} s")
    [result] = outcome
    if isinstance(result, otp.Supervisor):
        result.stop()
        pytest.fail("the tree started")
    assert isinstance(result, otp.SupervisorExitError), result
    return result


@pytest.mark.parametrize("ready", [False, True], ids=["probe", "probe-and-ready"])
def test_an_http_readiness_probe_gates_a_process_child(
        ready: bool, running: list[otp.Supervisor]) -> None:
    port = free_port()
    answered: list[bool] = []

    def on_report(report: rp.Report) -> None:
        if isinstance(report, rp.ChildStarted) and report.child_id == "web":
            answered.append(connects(port))

    web = otp.ChildSpec.process("web", targets.serve_http, args=(port, 0.3), ready=ready,
                                start_timeout=WAIT, readiness=otp.probes.Http(
                                    f"http://127.0.0.1:{port}/", interval=0.05))
    running.append(otp.start(tree(web), on_report=on_report))
    assert answered == [True]
    last = details(running[0], "web")["probes"]["readiness"]["last"]
    assert last["detail"] == "HTTP 204 No Content"


def test_a_command_child_that_says_ready_early_is_still_gated_by_its_probe(
        running: list[otp.Supervisor]) -> None:
    """ready=True (the notify protocol's READY=1) and a readiness probe: both gate."""
    port = free_port()
    answered: list[bool] = []

    def on_report(report: rp.Report) -> None:
        if isinstance(report, rp.ChildStarted) and report.child_id == "early":
            answered.append(connects(port))

    early = otp.ChildSpec.command(
        "early", [PY, SERVERS, "notify-then-tcp", str(port), "0.5"], ready=True,
        start_timeout=WAIT, readiness=otp.probes.Tcp(port, interval=0.05))
    running.append(otp.start(tree(early), on_report=on_report))
    assert answered == [True]


def test_a_probe_of_a_port_never_opened_fails_the_start_at_start_timeout() -> None:
    port = free_port()
    recorder = Recorder()
    never = otp.ChildSpec.command("never", [PY, "-c", "import time; time.sleep(60)"],
                                  start_timeout=1.0,
                                  readiness=otp.probes.Tcp(port, interval=0.05, timeout=0.2))
    began = time.monotonic()
    caught = _start_failure(tree(never), recorder)
    assert time.monotonic() - began >= 1.0
    timeout = reasons.StartTimeout(1.0)
    assert caught.reason == reasons.Shutdown(reasons.FailedToStartChild("never", timeout))
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
        liveness=otp.probes.Http(url, interval=0.3, timeout=1.0, failure_threshold=2))
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
    assert "no answer within 1 s" in exited.reason.detail
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
        liveness=otp.probes.Tcp(port, interval=0.1, timeout=1.0, failure_threshold=2))
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


def test_an_exec_probe_shows_the_last_line_its_command_wrote(
        running: list[otp.Supervisor]) -> None:
    recorder = Recorder()
    script = "echo checking; echo 'db: connection refused' >&2; exit 2"
    child = otp.ChildSpec.command(
        "w", [PY, "-c", "import time; time.sleep(60)"],
        liveness=otp.probes.Exec(["sh", "-c", script], interval=0.05, failure_threshold=1))
    running.append(otp.start(tree(child), on_report=recorder))
    exited = _wait_restarted(recorder, "w")
    assert isinstance(exited.reason, reasons.Hung)
    assert exited.reason.detail.endswith(
        "failed once; last: exited with status 2: db: connection refused")


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
        began = time.monotonic()
        sup.stop()  # (the tree is done once the probe command is reaped)
    assert time.monotonic() - began < 10  # killed, not waited for (it sleeps 60 s)
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


def test_a_probe_command_does_not_outlive_a_sigkilled_supervisor(tmp_path: Path) -> None:
    """The guardian kills a probe command's group when the supervising process dies,
    as it does a command child's."""
    script = Path(__file__).with_name("dying_tree.py")
    proc = subprocess.Popen([PY, str(script), str(tmp_path / "pids")], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        probe_pid = int(proc.stdout.readline())
        assert psutil.pid_exists(probe_pid)
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    wait_gone([probe_pid])  # (by the guardian, a process of its own: give it room)


def test_the_first_liveness_attempt_waits_initial_delay_after_the_child_is_ready() -> None:
    targets.CALLS.clear()
    recorder = Recorder()
    child = otp.ChildSpec(id="w", start=targets.thread_forever, backend="thread",
                          liveness=otp.probes.Call(targets.counting_check, interval=0.05,
                                                   initial_delay=0.5))
    sup = otp.start(tree(child), on_report=recorder)
    try:
        [started] = recorder.of(rp.ChildStarted, "w")
        deadline = time.monotonic() + WAIT
        while not targets.CALLS:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        sup.stop()
    # (report times are the loop's clock, time.monotonic)
    assert targets.CALLS[0] >= started.time + 0.5


def test_a_reload_that_changes_a_probe_restarts_the_child_with_the_new_one() -> None:
    def spec(interval: float) -> otp.SupervisorSpec:
        return tree(otp.ChildSpec.command("w", [PY, "-c", "import time; time.sleep(60)"],
                                          liveness=otp.probes.Exec("true", interval=interval)))

    sup = otp.start(spec(1.0))
    try:
        before = details(sup, "w")
        plan = sup.update(spec(2.0))
        after = details(sup, "w")
    finally:
        sup.stop()
    assert plan.changed == (("w", ("liveness",)),)
    assert after["pid"] != before["pid"]
    assert after["probes"]["liveness"]["timing"].startswith("every 2 s")
