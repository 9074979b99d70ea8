"""``otp-py status`` and ``otp-py ctl`` against a tree that ``otp-py run`` is running,
over its control socket."""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.clitools import Cli, run, wait_until

TREE = """
id = "ctltree"
intensity = { max_restarts = 10, period = 5 }

[[children]]
id = "proc"
start = "tests.cli.targets:forever"
backend = "process"
shutdown = 2

[[children]]
id = "pool"
strategy = "one_for_one"

  [[children.children]]
  id = "task"
  start = "tests.cli.targets:task_forever"

  [[children.children]]
  id = "once"
  start = "tests.cli.targets:task_forever"
  restart = "temporary"

[[children]]
id = "far"
backend = "process"

  [[children.children]]
  id = "inner"
  start = "tests.cli.targets:task_forever"
"""


@pytest.fixture
def tree(tmp_path: Path, runtime: Path) -> Iterator[tuple[Cli, Path]]:
    """``otp-py run`` on TREE, up and listening: (the command, its socket)."""
    path = tmp_path / "tree.toml"
    path.write_text(TREE)
    sock = runtime / "otp-py" / "ctltree.sock"
    with Cli(["run", str(path), "--view", "events"], runtime) as cli:
        cli.wait_for(r"control socket ")
        assert sock.is_socket()
        yield cli, sock


def status(runtime: Path, *args: str) -> dict[str, object]:
    result = run(["status", "--json", *args], runtime)
    assert result.returncode == 0, result.stderr
    reply: dict[str, object] = json.loads(result.stdout)
    return reply


def node(reply: dict[str, object], path: str) -> dict[str, object]:
    def walk(n: dict[str, object]) -> Iterator[dict[str, object]]:
        yield n
        for child in n.get("children") or []:  # type: ignore[attr-defined]
            yield from walk(child)

    return next(n for n in walk(reply["root"]) if n["path"] == path)  # type: ignore[arg-type]


def test_the_socket_is_private(tree: tuple[Cli, Path]) -> None:
    _, sock = tree
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700


def test_status_shows_which_children(tree: tuple[Cli, Path], runtime: Path) -> None:
    result = run(["status"], runtime)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("tree 'ctltree' (pid ")
    assert lines[0].endswith(": 6/6 running, 0 restarts")
    assert lines[1].split() == ["PATH", "KIND", "STATE", "RESTARTS", "PID", "UP", "LAST", "EXIT"]
    assert [line.split()[:4] for line in lines[2:]] == [
        ["ctltree", "supervisor", "running", "-"],
        ["ctltree/proc", "process", "running", "0"],
        ["ctltree/pool", "supervisor", "running", "0"],
        ["ctltree/pool/task", "asyncio", "running", "0"],
        ["ctltree/pool/once", "asyncio", "running", "0"],
        ["ctltree/far", "supervisor/process", "running", "0"],  # in its own process,
        ["ctltree/far/inner", "asyncio", "running", "0"],  # seen through its pipe
    ]
    reply = status(runtime)
    proc = node(reply, "ctltree/proc")
    assert proc["state"] == "running" and isinstance(proc["pid"], int)


def test_ctl_restart_and_terminate(tree: tuple[Cli, Path], runtime: Path) -> None:
    cli, _ = tree
    before = node(status(runtime), "ctltree/proc")["pid"]
    result = run(["ctl", "restart", "ctltree/proc"], runtime)
    assert (result.returncode, result.stdout) == (0, "restarted ctltree/proc\n"), result.stderr
    cli.wait_for(r"ctltree: started proc \(restart 1\)$")
    after = node(status(runtime), "ctltree/proc")
    assert after["restarts"] == 1 and after["pid"] != before
    assert after["last_exit"]["reason"] == "shutdown"  # type: ignore[index]

    result = run(["ctl", "terminate", "pool/task"], runtime)  # the root's id may be omitted
    assert (result.returncode, result.stdout) == (0, "terminated ctltree/pool/task\n")
    assert node(status(runtime), "ctltree/pool/task")["state"] == "stopped"
    result = run(["ctl", "restart", "pool/task"], runtime)  # a stopped child: started again
    assert (result.returncode, result.stdout) == (0, "restarted ctltree/pool/task\n")
    assert node(status(runtime), "ctltree/pool/task")["state"] == "running"

    # inside a subtree that runs in a process of its own
    result = run(["ctl", "restart", "far/inner"], runtime)
    assert (result.returncode, result.stdout) == (0, "restarted ctltree/far/inner\n")
    cli.wait_for(r"ctltree/far: started inner \(restart 1\)$")
    assert node(status(runtime), "ctltree/far/inner")["restarts"] == 1


def test_refused_requests_are_one_line_and_leave_the_tree_alone(
    tree: tuple[Cli, Path], runtime: Path
) -> None:
    cases = {
        ("ctl", "restart", "ctltree/nope"): "no child 'nope' under 'ctltree'",
        ("ctl", "restart", "nope/task"): "no running supervisor at 'ctltree/nope'",
        ("ctl", "terminate", "ctltree"): "'ctltree' is the root supervisor, not a child",
        ("ctl", "restart", "pool/once"): "ctltree/pool/once is temporary",
        ("status", "--tree", "other"): "no tree is listening on",
    }
    for args, message in cases.items():
        result = run(list(args), runtime)
        assert result.returncode == 1, (args, result.stdout)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and message in lines[0], (args, result.stderr)
    _, sock = tree
    for raw in (b"not json\n", b"[1, 2]\n", b'{"op": "explode"}\n', b'{"op": "restart"}\n',
                b'{"op": "status", "events": -1}\n', b"x" * 100_000 + b"\n"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(sock))
            s.sendall(raw)
            reply = json.loads(s.makefile("rb").readline())
        assert reply["ok"] is False and reply["error"], raw[:40]
    reply = status(runtime)
    assert all(node(reply, p)["state"] == "running" and node(reply, p)["restarts"] == 0
               for p in ("ctltree/proc", "ctltree/pool/task", "ctltree/pool/once"))


def test_ctl_stop_stops_the_tree_in_order(tree: tuple[Cli, Path], runtime: Path) -> None:
    cli, sock = tree
    result = run(["ctl", "stop"], runtime)
    assert (result.returncode, result.stdout) == (0, "stopping tree 'ctltree'\n")
    assert cli.wait() == 0, cli.output
    terminated = [line.split()[-2].rstrip(":") for line in cli.lines if " terminated " in line]
    assert terminated == ["inner", "far", "once", "task", "pool", "proc"]
    assert not sock.exists()  # removed on the way out
    result = run(["status"], runtime)
    assert result.returncode == 1
    assert result.stderr.startswith("otp-py: error: no running tree found")


def test_a_second_tree_on_the_same_socket_is_refused(tree: tuple[Cli, Path], tmp_path: Path,
                                                     runtime: Path) -> None:
    path = tmp_path / "tree.toml"
    result = run(["run", str(path), "--duration", "1"], runtime)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"otp-py: error: a tree is already listening on {runtime}/otp-py/ctltree.sock; stop "
        "it, or give this one another socket with --socket PATH"
    ]


def test_explicit_socket_and_stale_sockets(tmp_path: Path, runtime: Path) -> None:
    sock = runtime / "mine.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))  # a socket file nobody listens on: left by a dead tree
    stale.close()
    result = run(["status", "--socket", str(sock)], runtime)
    assert result.returncode == 1
    assert "a stale socket" in result.stderr
    with Cli(["run", "tests.cli.targets:TREE", "--socket", str(sock), "--view", "quiet"],
             runtime) as cli:
        wait_until(lambda: run(["status", "--socket", str(sock)], runtime).returncode == 0,
                   what="the tree answering on its socket")
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        result = run(["ctl", "stop", "--socket", str(sock)], runtime)
        assert result.returncode == 0
        assert cli.wait() == 0
