"""The control socket against a hostile local user and a burst of clients.

The tests run as root and simulate another local user: directories and sockets are
chown-ed to ``nobody`` (uid 65534), and a squatting server or a hostile client runs
in a forked child that has become ``nobody`` (``os.setuid``). Everything goes through
the real ``otp-py`` command, or the client function it uses, and a real socket.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pytest

from otp_py.cli import control
from otp_py.cli.errors import CliError
from tests.cli.clitools import ROOT, TIMEOUT, Cli, script, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="simulating another local user needs root")

NOBODY = 65534
ME = os.getuid()
LIMIT = 256
"""The control connections a tree serves at once (``control.MAX_CONNECTIONS``, as
docs/cli.rst states it)."""

FORGED: Final = json.dumps({
    "ok": True, "message": "stopping tree 'forged'", "events": [],
    "tree": {"id": "forged", "pid": 1, "socket": "?", "started_at": 0, "running": True},
    "root": {"id": "forged", "path": "forged", "kind": "supervisor", "state": "running",
             "children": []},
}).encode() + b"\n"
"""What a squatter answers to every request: a forged tree and a forged "stopping"."""


def as_nobody(work: Callable[[int], None]) -> tuple[int, int]:
    """Run ``work(fd)`` in a forked child that has become ``nobody``; return (its pid,
    the read end of the pipe ``fd`` writes to)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            work(write)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def _squatter(path: Path) -> Callable[[int], None]:
    def serve(out: int) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        os.chmod(path, 0o600)
        server.listen(16)
        os.write(out, b"ready\n")
        while True:
            conn, _ = server.accept()
            with conn:
                try:
                    conn.settimeout(5)
                    conn.recv(65536)
                    conn.sendall(FORGED)
                except OSError:
                    pass

    return serve


def _raw_stop(path: Path) -> Callable[[int], None]:
    """A client that, unlike ``otp-py``, talks to any socket, and reads to the end."""

    def ask(out: int) -> None:
        data, error = b"", None
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(20)
            sock.connect(str(path))
            sock.sendall(b'{"op": "stop"}\n')
            try:
                while chunk := sock.recv(65536):
                    data += chunk
            except OSError as exc:
                error = repr(exc)
        os.write(out, json.dumps({"reply": data.decode(), "error": error}).encode())

    return ask


def _read_all(fd: int, timeout: float = TIMEOUT) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while True:
            ready, _, _ = select.select([pipe], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                raise AssertionError(f"nothing more from the child within {timeout} s: {data!r}")
            chunk = pipe.read(65536)
            if not chunk:
                return data
            data += chunk


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OTP_PY_SOCKET", "XDG_RUNTIME_DIR", "TMPDIR")}
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def otp_py(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([script(), *args], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=ROOT, env=env, check=False)


@pytest.fixture
def base() -> Iterator[Path]:
    """A short directory of root's that ``nobody`` may pass through (0711)."""
    path = Path(tempfile.mkdtemp(prefix="otph-", dir="/tmp"))
    os.chmod(path, 0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def squat() -> Iterator[Callable[[Path], Path]]:
    """``squat(path)``: a forging server as ``nobody`` on ``path``, up and listening."""
    pids: list[int] = []

    def start(path: Path) -> Path:
        pid, out = as_nobody(_squatter(path))
        pids.append(pid)
        with os.fdopen(out, "rb", buffering=0) as pipe:
            ready, _, _ = select.select([pipe], [], [], TIMEOUT)
            assert ready and pipe.read(6) == b"ready\n", "the squatter did not start"
        return path

    try:
        yield start
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


# The fallback directory when XDG_RUNTIME_DIR is unset (in $TMPDIR, so that a test
# never touches the real /tmp/otp-py-0), and the XDG one, checked the same way.
LAYOUTS = {
    "tmp": (lambda base: {"TMPDIR": str(base)}, lambda base: base / f"otp-py-{ME}"),
    "xdg": (lambda base: {"XDG_RUNTIME_DIR": str(base)}, lambda base: base / "otp-py"),
}


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# ------------------------------------------------------------------ item 6


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_clients_refuse_a_directory_another_user_made(
    base: Path, squat: Callable[[Path], Path], layout: str
) -> None:
    env_of, dir_of = LAYOUTS[layout]
    env, directory = _env(**env_of(base)), dir_of(base)
    directory.mkdir(mode=0o700)
    os.chown(directory, NOBODY, NOBODY)  # made first by the other user
    squat(directory / "forged.sock")
    for args in (["status", "--json"], ["ctl", "stop", "--tree", "forged"]):
        result = otp_py(args, env)
        assert result.returncode == 1, (args, result.stdout)
        assert "forged" not in result.stdout
        assert _one_line(result) == (
            f"otp-py: error: refusing {directory}: it belongs to uid {NOBODY}, not to you "
            f"(uid {ME}); another user may have made it to intercept the control socket; "
            "remove it, set XDG_RUNTIME_DIR, or pass --socket PATH")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize(("owner", "mode", "why"), [
    (NOBODY, 0o700, f"it belongs to uid {NOBODY}, not to you (uid {ME})"),
    (ME, 0o777, "its mode is 0777, open to group or others"),
    (ME, 0o750, "its mode is 0750, open to group or others"),
])
def test_run_refuses_a_directory_that_is_not_private(
    base: Path, layout: str, owner: int, mode: int, why: str
) -> None:
    env_of, dir_of = LAYOUTS[layout]
    env, directory = _env(**env_of(base)), dir_of(base)
    directory.mkdir()
    os.chmod(directory, mode)
    os.chown(directory, owner, owner)
    result = otp_py(["run", "tests.cli.targets:TREE", "--view", "quiet", "--duration", "0.5"],
                    env)
    assert result.returncode == 1
    line = _one_line(result)
    assert line.startswith(f"otp-py: error: refusing {directory}: {why}"), line
    assert list(directory.iterdir()) == []  # no socket put there
    assert stat_mode(directory) == mode  # and nothing changed behind the user's back


def stat_mode(path: Path) -> int:
    return os.lstat(path).st_mode & 0o777


@pytest.fixture
def theirs(base: Path, squat: Callable[[Path], Path]) -> Path:
    """A forging server of ``nobody``'s on a socket in a directory of its own."""
    directory = base / "theirs"
    directory.mkdir(mode=0o755)
    os.chown(directory, NOBODY, NOBODY)
    return squat(directory / "forged.sock")


def test_clients_refuse_a_socket_of_another_user(theirs: Path) -> None:
    for args in (["status", "--socket", str(theirs)],
                 ["ctl", "stop", "--socket", str(theirs)]):
        result = otp_py(args, _env())
        assert result.returncode == 1 and "forged" not in result.stdout
        assert _one_line(result) == (
            f"otp-py: error: refusing {theirs}: the socket belongs to uid {NOBODY}, not to "
            f"you (uid {ME}); another user may be answering for a tree")


def test_clients_refuse_a_server_of_another_user(theirs: Path) -> None:
    os.chown(theirs, ME, ME)  # the file looks like ours: only the peer's uid tells
    for args in (["status", "--socket", str(theirs)],
                 ["ctl", "stop", "--socket", str(theirs)]):
        result = otp_py(args, _env())
        assert result.returncode == 1 and "forged" not in result.stdout
        assert _one_line(result) == (
            f"otp-py: error: permission denied: {theirs} is served by a process of uid "
            f"{NOBODY}, not by you (uid {ME}); refusing to talk to it")


@pytest.fixture
def tree_on(base: Path) -> Iterator[tuple[Cli, Path]]:
    """``otp-py run`` listening on a socket in ``base``: (the command, its socket)."""
    sock = base / "t.sock"
    env = _env(XDG_RUNTIME_DIR=str(base))
    with Cli(["run", "tests.cli.targets:TREE", "--socket", str(sock), "--view", "events"],
             base, env=env) as cli:
        cli.wait_for(r"control socket ")
        yield cli, sock


def test_clients_refuse_a_socket_open_to_others(tree_on: tuple[Cli, Path]) -> None:
    cli, sock = tree_on
    os.chmod(sock, 0o666)
    result = otp_py(["ctl", "stop", "--socket", str(sock)], _env())
    assert result.returncode == 1
    assert _one_line(result) == (
        f"otp-py: error: refusing {sock}: the socket's mode is 0666, open to group or "
        "others (a tree creates it 0600)")
    assert cli.proc.poll() is None  # the request was never sent


def test_a_peer_of_another_user_is_told_permission_denied(tree_on: tuple[Cli, Path]) -> None:
    cli, sock = tree_on
    os.chmod(sock, 0o666)  # a mistake that lets the other user reach the tree
    pid, out = as_nobody(_raw_stop(sock))
    try:
        seen = json.loads(_read_all(out))
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert seen["error"] is None, seen  # not "connection reset"
    reply = json.loads(seen["reply"])
    assert reply == {"ok": False,
                     "error": f"permission denied: uid {NOBODY} is not the tree's user "
                              f"(uid {ME})"}
    os.chmod(sock, 0o600)
    assert control.request(sock, {"op": "ping"})["tree"]["running"] is True  # not stopped
    assert cli.proc.poll() is None


# ------------------------------------------------------------------ item 8


def _connections(path: Path) -> tuple[int, int]:
    """(waiting in the backlog, accepted) connections to the socket ``path``, as the
    kernel lists them."""
    waiting = accepted = 0
    with open("/proc/net/unix") as table:
        for line in table:
            fields = line.split()
            if len(fields) < 8 or fields[7] != str(path) or int(fields[3], 16) & 0x10000:
                continue  # another socket, or the listening one
            if fields[6] == "0":
                waiting += 1  # not accepted yet: no file, inode 0
            else:
                accepted += 1
    return waiting, accepted


def _somaxconn() -> int:
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        return 128


def test_a_burst_of_200_clients_all_get_their_status(tree_on: tuple[Cli, Path]) -> None:
    cli, sock = tree_on
    clients = 200
    results: list[object] = []
    lock = threading.Lock()

    def ask() -> None:
        try:
            outcome: object = control.request(sock, {"op": "status"}, timeout=120)
        except CliError as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=ask) for _ in range(clients)]
    # The tree is busy (stopped) while the burst arrives: every client must find room
    # in the backlog or wait for it, none may fail with EAGAIN.
    os.kill(cli.proc.pid, signal.SIGSTOP)
    try:
        for thread in threads:
            thread.start()
        # (Where the kernel caps the backlog below the burst, the rest wait in
        # connect: that is what they should do, and they get in after SIGCONT.)
        room = min(clients, _somaxconn() + 1)
        wait_until(lambda: _connections(sock)[0] + len(results) >= room, timeout=60,
                   what="every client connected or failed")
    finally:
        os.kill(cli.proc.pid, signal.SIGCONT)
    for thread in threads:
        thread.join(180)
    failures = [r for r in results if isinstance(r, CliError)]
    assert not failures, f"{len(failures)} of {clients} failed, e.g. {failures[0]}"
    assert len(results) == clients
    assert all(isinstance(r, dict) and r["tree"]["id"] == "pytree" for r in results)


def test_connections_beyond_the_limit_are_refused_at_once(tree_on: tuple[Cli, Path]) -> None:
    _, sock = tree_on
    idle: list[socket.socket] = []
    try:
        for _ in range(LIMIT):
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            idle.append(conn)
            conn.connect(str(sock))  # and says nothing
        wait_until(lambda: _connections(sock)[1] >= LIMIT, timeout=10,
                   what="the tree accepting every idle connection")
        with pytest.raises(CliError) as refused:  # a hang would be "no reply within"
            control.request(sock, {"op": "status"}, timeout=30)
        assert str(refused.value) == (f"busy: {LIMIT} control connections are open "
                                      "already; try again later")
    finally:
        for conn in idle:
            conn.close()
    wait_until(lambda: _answers(sock), what="the tree answering again")


def _answers(path: Path) -> bool:
    try:
        control.request(path, {"op": "ping"}, timeout=10)
    except CliError:
        return False
    return True
