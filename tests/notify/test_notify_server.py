"""otp_py as the notify server of its children: real programs speaking systemd's
protocol (redis-server, a script using only ``$NOTIFY_SOCKET``) as command and
process children with ``ready=True``."""

from __future__ import annotations

import array
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.reports import Recorder

NOTIFIER = str(Path(__file__).with_name("notifier.py"))
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


def _tree(*children: otp.ChildSpec, **fields: Any) -> otp.SupervisorSpec:
    fields.setdefault("intensity", otp.SlidingWindow(max_restarts=5, period=10))
    return otp.SupervisorSpec(id="root", children=list(children), **fields)


def _notifier(child_id: str, *args: str, **fields: Any) -> otp.ChildSpec:
    fields.setdefault("ready", True)
    fields.setdefault("shutdown", 2.0)
    return otp.ChildSpec.command(child_id, [sys.executable, NOTIFIER, *args], **fields)


def _details(sup: otp.Supervisor, child_id: str) -> dict[str, Any]:
    [info] = [c for c in sup.which_children() if c.id == child_id]
    return dict(info.details)


def _wait(predicate: Any, timeout: float = 20.0, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="otp-notify-") as path:
        yield Path(path)


def _send(address: str, message: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message, "\0" + address[1:])


# ------------------------------------------------------------------- real programs


@pytest.mark.skipif(not os.path.exists(REDIS), reason="redis-server is not installed "
                    "(Debian's redis-server package; .ci/run installs it)")
def test_redis_supervised_by_systemd_protocol_is_started_only_after_its_ready(
    tmp: Path,
) -> None:
    """redis-server --supervised systemd sends READY=1 once it accepts connections:
    the tree reports it started only then, and starts the next sibling after it."""
    sock_path = str(tmp / "redis.sock")
    recorder = Recorder()
    answers: list[bytes] = []

    def at_start(report: rp.Report) -> None:
        # On the tree's loop, the moment the start is reported: redis must answer.
        if isinstance(report, rp.ChildStarted) and report.child_id == "redis":
            with socket.socket(socket.AF_UNIX) as conn:
                conn.settimeout(5)
                conn.connect(sock_path)
                conn.sendall(b"PING\r\n")
                answers.append(conn.recv(64))

    redis = otp.ChildSpec.command(
        "redis", [REDIS, "--supervised", "systemd", "--port", "0", "--unixsocket", sock_path,
                  "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        ready=True, start_timeout=20, shutdown=5)
    after = _notifier("after", "grandchild", ready=False)
    with otp.start(_tree(redis, after), on_report=lambda r: (at_start(r), recorder(r))) as sup:
        details = _details(sup, "redis")
        started = recorder.of(rp.ChildStarted)
        assert [r.child_id for r in started] == ["redis", "after"]
        assert answers == [b"+PONG\r\n"]
        assert details["status"] == "Ready to accept connections"
        latency = details["ready_after"]
        assert 0 < latency < 20
        print(f"redis READY=1 came {latency * 1000:.1f} ms after exec")
    exits = recorder.of(rp.ChildTerminated, "redis")
    assert len(exits) == 1


class _Starting:
    """``otp.start`` in a thread of its own: it returns once the root is up, which a
    child with ready=True holds back until its READY=1."""

    def __init__(self, spec: otp.SupervisorSpec, recorder: Recorder) -> None:
        self.sup: otp.Supervisor | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(spec, recorder))
        self._thread.start()

    def _run(self, spec: otp.SupervisorSpec, recorder: Recorder) -> None:
        try:
            self.sup = otp.start(spec, on_report=recorder)
        except BaseException as exc:
            self.error = exc

    def started(self, timeout: float = 20.0) -> otp.Supervisor:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the tree did not start"
        if self.error is not None:
            raise self.error
        assert self.sup is not None
        return self.sup


class _Warnings(logging.Handler):
    """The otp_py logger's warnings, to wait on."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings() -> Iterator[_Warnings]:
    handler = _Warnings()
    logger = logging.getLogger("otp_py")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_a_script_using_only_the_documented_protocol(tmp: Path) -> None:
    """It is up at its READY=1, not at exec; its STATUS= is shown; it got
    NOTIFY_SOCKET (an abstract address) and, with a heartbeat, WATCHDOG_USEC."""
    state = str(tmp / "state.json")
    recorder = Recorder()
    spec = _tree(_notifier("w", "ready", state,
                           heartbeat=otp.Heartbeat(interval=0.5, timeout=30)))
    starting = _Starting(spec, recorder)
    try:
        _wait(lambda: os.path.exists(state), what="the script's first lines")
        env = json.loads(Path(state).read_text())
        assert env["NOTIFY_SOCKET"].startswith("@otp_py/notify/")
        assert env["WATCHDOG_USEC"] == "30000000"
        assert recorder.of(rp.ChildStarted, "w") == []
        go = time.monotonic()
    finally:
        Path(state + ".go").touch()  # (whatever happened: let the start end)
        sup = starting.started()
    with sup:
        [report] = recorder.of(rp.ChildStarted, "w")
        assert report.time > go
        details = _details(sup, "w")
        assert details["pid"] == env["pid"]
        assert details["status"] == "serving"


def test_ready_never_sent_fails_the_start_at_its_start_timeout(tmp: Path) -> None:
    state = str(tmp / "state.json")
    with pytest.raises(otp.SupervisorExitError) as caught:
        otp.start(_tree(_notifier("w", "ready", state, start_timeout=1.0)))
    assert caught.value.reason == reasons.Shutdown(
        reasons.FailedToStartChild("w", reasons.StartTimeout(1.0)))


# ------------------------------------------------------------------ who may write


def test_a_grandchild_is_not_heard_by_default() -> None:
    recorder = Recorder()
    with pytest.raises(otp.SupervisorExitError) as caught:
        otp.start(_tree(_notifier("w", "grandchild", start_timeout=1.5)), on_report=recorder)
    assert caught.value.reason == reasons.Shutdown(
        reasons.FailedToStartChild("w", reasons.StartTimeout(1.5)))


def test_a_grandchild_is_heard_with_notify_access_all() -> None:
    recorder = Recorder()
    spec = _tree(_notifier("w", "grandchild", start_timeout=20, notify_access="all"))
    with otp.start(spec, on_report=recorder):
        assert [r.child_id for r in recorder.of(rp.ChildStarted)] == ["w"]


def test_another_process_cannot_speak_for_the_child(tmp: Path, warnings: _Warnings) -> None:
    """This test process knows the child's socket and sends READY=1 to it: refused
    (its credentials are not the child's, nor a descendant's); the child's own
    READY=1 is heard."""
    state = str(tmp / "state.json")
    recorder = Recorder()
    starting = _Starting(_tree(_notifier("w", "ready", state, notify_access="all")),
                         recorder)
    try:
        _wait(lambda: os.path.exists(state), what="the script's first lines")
        address = json.loads(Path(state).read_text())["NOTIFY_SOCKET"]
        _send(address, b"READY=1\nSTATUS=spoofed")
        _wait(lambda: any("refused" in m for m in warnings.messages), what="the refusal")
        assert recorder.of(rp.ChildStarted, "w") == []
    finally:
        Path(state + ".go").touch()  # (whatever happened: let the start end)
        sup = starting.started()
    with sup:
        details = _details(sup, "w")
        assert details["notify_refused"] == 1
        assert details["status"] == "serving"
    assert f"pid {os.getpid()} was refused" in warnings.messages[0]


def test_descriptors_sent_along_are_closed_at_once(tmp: Path) -> None:
    """A datagram carrying file descriptors (FDSTORE=1, here from a stranger): they
    are closed as it is read, never kept (the leak check would see them)."""
    state = str(tmp / "state.json")
    recorder = Recorder()
    starting = _Starting(_tree(_notifier("w", "ready", state)), recorder)
    try:
        _wait(lambda: os.path.exists(state), what="the script's first lines")
        address = json.loads(Path(state).read_text())["NOTIFY_SOCKET"]
        read, write = os.pipe()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendmsg([b"FDSTORE=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                               array.array("i", [read, write]))],
                             0, "\0" + address[1:])
        finally:
            os.close(read)
    finally:
        Path(state + ".go").touch()  # (whatever happened: let the start end)
        sup = starting.started()
    with sup:
        assert _details(sup, "w")["notify_refused"] == 1
        # the pipe's read end is closed everywhere: writing to it fails
        with pytest.raises(BrokenPipeError):
            os.write(write, b"x")
    os.close(write)


def test_a_mainpid_naming_the_supervisor_is_refused(warnings: _Warnings) -> None:
    """A child cannot get otp_py to take the supervising process (or an ancestor)
    for its own, to be stopped and killed with it."""
    spec = _tree(_notifier("w", "mainpid", str(os.getpid())))
    with otp.start(spec) as sup:
        details = _details(sup, "w")
        assert details["pid"] != os.getpid()
    assert any(f"MAINPID={os.getpid()} refused" in m for m in warnings.messages)


# --------------------------------------------------------------------- hostility


def test_a_flooding_child_does_not_starve_the_tree() -> None:
    """Garbage, oversized datagrams, bare keys and terminal escapes as fast as the
    child can send them for 2 s: the tree still answers calls promptly, the escapes
    never reach a status line, and the STATUS= that follows is heard."""
    recorder = Recorder()
    with otp.start(_tree(_notifier("w", "flood", "2")), on_report=recorder) as sup:
        slowest, calls = 0.0, 0
        while _details(sup, "w").get("status") != "flood over":
            began = time.monotonic()
            details = _details(sup, "w")
            slowest = max(slowest, time.monotonic() - began)
            calls += 1
            status = details.get("status")
            if status is not None:  # only its STATUS=<escapes>, made one harmless line
                assert status.isprintable() and len(status) <= 256
            time.sleep(0.01)
        details = _details(sup, "w")
        assert calls > 20
        assert slowest < 1.0
        assert details["notify_dropped"] > 0  # the oversized ones
        assert recorder.of(rp.ChildExited, "w") == []
        print(f"slowest of {calls} calls during the flood: {slowest * 1000:.1f} ms; "
              f"dropped {details['notify_dropped']}")


# ---------------------------------------------------------------- the watchdog


def _pinger(backend: str, path: str, pings: int) -> otp.ChildSpec:
    heartbeat = otp.Heartbeat(interval=0.05, timeout=1.5)  # (30 pings' worth: margin)
    if backend == "command":
        return _notifier("w", "watchdog", str(pings), "0.05", path, heartbeat=heartbeat)
    return otp.ChildSpec.process("w", _process_pinger, args=(pings, path), ready=True,
                                 heartbeat=heartbeat, shutdown=2.0)


def _process_pinger(pings: int, path: str) -> None:
    sys.argv = ["notifier", "watchdog", str(pings), "0.05", path]
    env = {k: os.environ.get(k) for k in ("WATCHDOG_USEC", "WATCHDOG_PID")}
    with open(path + ".env", "w") as f:
        json.dump(env | {"pid": os.getpid()}, f)
    import runpy

    runpy.run_path(NOTIFIER, run_name="__main__")


@pytest.mark.parametrize("backend", ["process", "command"])
def test_a_child_whose_watchdog_pings_stop_is_hung_and_restarted(
    backend: str, tmp: Path
) -> None:
    path = str(tmp / "pings")
    recorder = Recorder()
    with otp.start(_tree(_pinger(backend, path, 10)), on_report=recorder):
        [exited] = recorder.wait_kind(rp.ChildExited, "w")
        assert isinstance(exited.reason, reasons.Hung)
        assert "WATCHDOG=1" in str(exited.reason)
        assert len(Path(path).read_text().split()) >= 10  # (it pinged, then stopped)
        recorder.wait_kind(rp.ChildStarted, "w", count=2)
    if backend == "process":
        env = json.loads(Path(path + ".env").read_text())
        assert env["WATCHDOG_USEC"] == "1500000"
        assert env["WATCHDOG_PID"] == str(env["pid"])


@pytest.mark.parametrize("backend", ["process", "command"])
def test_a_child_that_keeps_pinging_is_not_hung(backend: str, tmp: Path) -> None:
    path = str(tmp / "pings")
    recorder = Recorder()
    with otp.start(_tree(_pinger(backend, path, 40)), on_report=recorder):
        _wait(lambda: os.path.exists(path) and len(Path(path).read_text().split()) >= 40,
              what="40 pings")
    assert recorder.of(rp.ChildExited, "w") == []


# ----------------------------------------------------------------------- MAINPID


def test_a_forking_daemon_named_by_mainpid_becomes_the_child(tmp: Path) -> None:
    path = str(tmp / "daemon.pid")
    recorder = Recorder()
    with otp.start(_tree(_notifier("w", "daemon", path)), on_report=recorder) as sup:
        daemon = int(Path(path).read_text())
        assert _details(sup, "w")["pid"] == daemon
        assert _details(sup, "w")["status"] == f"daemon {daemon}"
        time.sleep(0.3)  # its first process has exited meanwhile: it still runs
        assert recorder.of(rp.ChildExited, "w") == []
        assert os.path.exists(f"/proc/{daemon}")
    [ended] = recorder.of(rp.ChildTerminated, "w")
    assert ended.child_id == "w"
    _wait(lambda: not _alive(daemon), what="the daemon's end")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
