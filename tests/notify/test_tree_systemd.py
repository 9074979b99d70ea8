"""The tree itself under systemd (Type=notify): ``otp-py run`` and ``otp.run()`` in a
subprocess whose ``NOTIFY_SOCKET`` is a real datagram socket of this test."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import otp_py as otp
from otp_py.runtime.systemd import Notifier, shutdown_bound
from tests.cli.clitools import Cli, environment, runtime_dir

NOTIFIER = str(Path(__file__).with_name("notifier.py"))


class Manager:
    """A stand-in for systemd's end of NOTIFY_SOCKET: every datagram, with the
    sender's pid and when it came."""

    def __init__(self, abstract: bool = True, where: Path | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract:
            name = f"otp-test-manager/{secrets.token_hex(6)}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            assert where is not None
            self.address = str(where / "notify.sock")
            self.sock.bind(self.address)
        self.messages: list[tuple[float, int, str]] = []

    def receive(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            data, ancillary, _, _ = self.sock.recvmsg(4096, 256)
        except TimeoutError:
            return False
        pid = -1
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = int.from_bytes(payload[:4], sys.byteorder)
        self.messages.append((time.monotonic(), pid, data.decode()))
        return True

    def wait_for(self, text: str, timeout: float = 30.0, *, count: int = 1) -> float:
        """When the ``count``-th message containing ``text`` came."""
        deadline = time.monotonic() + timeout
        while True:
            found = [at for at, _, m in self.messages if text in m.split("\n")
                     or any(line.startswith(text) for line in m.split("\n"))]
            if len(found) >= count:
                return found[count - 1]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {text!r} (x{count}) within {timeout} s; got "
                                     f"{[m for _, _, m in self.messages]}")
            self.receive(min(remaining, 0.5))

    def lines(self, prefix: str) -> list[tuple[float, str]]:
        return [(at, line) for at, _, m in self.messages for line in m.split("\n")
                if line.startswith(prefix)]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def manager() -> Iterator[Manager]:
    m = Manager()
    try:
        yield m
    finally:
        m.close()


@pytest.fixture
def runtime() -> Iterator[Path]:
    with runtime_dir() as path:
        yield path


TREE = """
id = "svc"
intensity = {{ max_restarts = 10, period = 5 }}

[[children]]
id = "env"
command = [{python}, "-c", {env_code}, {env_file}]
shutdown = 2

[[children]]
id = "slow"
command = [{python}, "-c", {slow_code}]
shutdown = 5
"""

# writes the environment variables systemd speaks through, then sleeps
ENV_CODE = textwrap.dedent("""
    import json, os, sys, time
    keys = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
    json.dump({k: os.environ.get(k) for k in keys}, open(sys.argv[1] + ".tmp", "w"))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(3600)
""")
# takes 2.5 s to stop after SIGTERM: the shutdown asks systemd for more time meanwhile
SLOW_CODE = textwrap.dedent("""
    import signal, time
    signal.signal(signal.SIGTERM, lambda *a: (time.sleep(2.5), exit(0)))
    while True:
        time.sleep(3600)
""")


def _tree_file(tmp: Path) -> tuple[Path, Path]:
    env_file = tmp / "child-env.json"
    path = tmp / "svc.toml"
    path.write_text(TREE.format(python=json.dumps(sys.executable),
                                env_code=json.dumps(ENV_CODE), env_file=json.dumps(str(env_file)),
                                slow_code=json.dumps(SLOW_CODE)))
    return path, env_file


def test_otp_py_run_speaks_type_notify(manager: Manager, runtime: Path) -> None:
    """READY=1 once started, WATCHDOG=1 at half WATCHDOG_USEC, STATUS=, STOPPING=1
    at SIGTERM and EXTEND_TIMEOUT_USEC while the ordered shutdown goes on; the
    children do not inherit the tree's NOTIFY_SOCKET."""
    tree, env_file = _tree_file(runtime)
    env = environment(runtime) | {"NOTIFY_SOCKET": manager.address,
                                  "WATCHDOG_USEC": "300000"}  # pings every 0.15 s
    with Cli(["run", str(tree), "--view", "events"], runtime, env=env) as cli:
        ready_at = manager.wait_for("READY=1")
        assert manager.lines("STATUS=running: 2 children running")
        assert {pid for _, pid, m in manager.messages} == {cli.proc.pid}
        manager.wait_for("WATCHDOG=1", count=12)
        pings = [at for at, line in manager.lines("WATCHDOG=1") if at >= ready_at]
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        mean = sum(gaps) / len(gaps)
        assert 0.1 < mean < 0.25, gaps
        print(f"watchdog pings: mean gap {mean * 1000:.0f} ms (WATCHDOG_USEC 300 ms), "
              f"max {max(gaps) * 1000:.0f} ms")
        child_env = json.loads(env_file.read_text())
        assert child_env == {"NOTIFY_SOCKET": None, "WATCHDOG_USEC": None, "WATCHDOG_PID": None}
        stop = time.monotonic()
        cli.proc.send_signal(signal.SIGTERM)
        stopping_at = manager.wait_for("STOPPING=1")
        assert stopping_at - stop < 5
        manager.wait_for("EXTEND_TIMEOUT_USEC=2000000", count=2)  # 2.5 s of slow stop
        assert cli.wait() == 0
    extends = [at for at, _ in manager.lines("EXTEND_TIMEOUT_USEC=")]
    assert all(at >= stopping_at for at in extends)
    assert len(manager.lines("READY=1")) == 1


def test_no_pings_when_the_watchdog_is_for_another_pid(
    manager: Manager, runtime: Path
) -> None:
    tree, _ = _tree_file(runtime)
    env = environment(runtime) | {"NOTIFY_SOCKET": manager.address,
                                  "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"}
    with Cli(["run", str(tree), "--view", "events"], runtime, env=env) as cli:
        manager.wait_for("READY=1")
        cli.proc.send_signal(signal.SIGTERM)
        manager.wait_for("STOPPING=1")
        assert cli.wait() == 0
    assert manager.lines("WATCHDOG=1") == []


RUN_SCRIPT = textwrap.dedent("""
    import sys
    import otp_py as otp

    def work():
        otp.notify_ready()
        import time
        while True:
            time.sleep(3600)

    if __name__ == "__main__":
        tree = otp.SupervisorSpec(id="lib", children=[
            otp.ChildSpec.process("w", work, ready=True, shutdown=2)])
        otp.run(tree)
""")


def test_otp_run_speaks_type_notify_on_a_path_socket(tmp_path: Path) -> None:
    """otp.run() too; NOTIFY_SOCKET as a file path (not abstract)."""
    with runtime_dir() as where:
        manager = Manager(abstract=False, where=where)
        script = where / "svc.py"
        script.write_text(RUN_SCRIPT)
        env = dict(os.environ) | {"NOTIFY_SOCKET": manager.address, "WATCHDOG_USEC": "400000"}
        proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=str(where),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            manager.wait_for("READY=1")
            manager.wait_for("WATCHDOG=1", count=3)
            proc.send_signal(signal.SIGTERM)
            manager.wait_for("STOPPING=1")
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            manager.close()


def test_a_gone_manager_does_not_stop_the_tree(tmp_path: Path) -> None:
    """A NOTIFY_SOCKET nobody listens on: the sends fail, the tree runs on."""
    environ = {"NOTIFY_SOCKET": "@otp-test-nobody/" + secrets.token_hex(6)}
    notifier = Notifier.from_environ(environ)
    assert notifier is not None and environ == {}
    assert not notifier.send("READY=1")
    notifier.close()


def test_from_environ() -> None:
    assert Notifier.from_environ({}) is None
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    notifier = Notifier.from_environ(env)
    assert notifier is not None and notifier.watchdog == 1.0 and env == {}
    notifier.close()
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000",
                                      "WATCHDOG_PID": "1"})
    assert notifier is not None and notifier.watchdog is None
    notifier.close()
    with pytest.raises(ValueError, match="NOTIFY_SOCKET"):
        Notifier.from_environ({"NOTIFY_SOCKET": "relative/path"})


def _work() -> None:
    pass


def test_shutdown_bound() -> None:
    def worker(i: str, shutdown: object = 5.0) -> otp.ChildSpec:
        return otp.ChildSpec.thread(i, _work, shutdown=shutdown)

    assert shutdown_bound(otp.SupervisorSpec(id="r", children=[])) == 0
    flat = otp.SupervisorSpec(id="r", children=[worker("a", 5), worker("b", 2)])
    assert shutdown_bound(flat) == 5 + 1 + 2 + 1  # one after the other, each + a kill
    nested = otp.SupervisorSpec(id="r", children=[
        worker("a", otp.BRUTAL_KILL), otp.SupervisorSpec(id="s", children=[worker("b", 2)])])
    assert shutdown_bound(nested) == 1 + 3
    capped = otp.SupervisorSpec(id="r", children=[
        otp.SupervisorSpec(id="s", shutdown=4, children=[worker("b", 10)])])
    assert shutdown_bound(capped) == 5
    pool = otp.SupervisorSpec(id="r", strategy=otp.SimpleOneForOne(),
                              children=[worker("t", 3)])
    assert shutdown_bound(pool) == 4
    assert shutdown_bound(otp.SupervisorSpec(id="r", children=[
        worker("a", otp.INFINITY)])) == float("inf")
