"""``otp-py run`` (and a tree run from Python) against the signals and the closed
streams an operator, a terminal or a service manager may hand it: SIGHUP (sent, or a
terminal that hangs up), SIGQUIT, and a closed standard output."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.cli.clitools import (
    ROOT,
    TIMEOUT,
    Cli,
    environment,
    run,
    script,
    wait_until,
)

TREE = """
id = "sigtree"

[[children]]
id = "proc"
start = "tests.cli.targets:forever"
backend = "process"
shutdown = 2

[[children]]
id = "task"
start = "tests.cli.targets:task_forever"

[[children]]
id = "cmd"
command = ["sleep", "300"]
"""

REPORT_FD1 = ("import os, sys, time; fd = '/proc/self/fd/1'; "
              "print('fd1=' + (os.readlink(fd) if os.path.exists(fd) else 'closed'), "
              "file=sys.stderr, flush=True); time.sleep(300)")

CLOSED_STDOUT_TREE = f"""
id = "closedout"

[[children]]
id = "proc"
start = "tests.cli.targets:forever"
backend = "process"

[[children]]
id = "cmd"
command = {json.dumps([sys.executable, "-c", REPORT_FD1])}
"""

LIBRARY_TREE = """
import sys
import otp_py as otp
from tests.cli.targets import forever

def on_report(report):
    if isinstance(report, otp.reports.ChildStarted) and report.child_id == "proc":
        print("started proc", file=sys.stderr, flush=True)

otp.run(otp.SupervisorSpec(id="lib", children=[otp.ChildSpec.process("proc", forever)]),
        on_report=on_report)
print("tree ended", file=sys.stderr, flush=True)
"""

STDOUT_CLOSED = ["bash", "-c", 'exec "$@" >&-', "bash"]
"""A prefix that runs a command with its standard output closed."""


@pytest.fixture
def tree(tmp_path: Path, runtime: Path) -> Iterator[tuple[Cli, Path]]:
    """``otp-py run`` on TREE, up and listening: (the command, its socket)."""
    path = tmp_path / "tree.toml"
    path.write_text(TREE)
    with Cli(["run", str(path), "--view", "events"], runtime) as cli:
        cli.wait_for(r"control socket ")
        sock = runtime / "otp-py" / "sigtree.sock"
        assert sock.is_socket()
        yield cli, sock


def _terminated(cli: Cli) -> list[str]:
    return [line.split()[-2].rstrip(":") for line in cli.lines if " terminated " in line]


def test_sighup_reloads_the_tree_and_it_runs_on(tree: tuple[Cli, Path], runtime: Path) -> None:
    # SIGHUP asks a daemon to read its configuration again: the tree file is read
    # again and applied (tests/cli/test_reload.py edits it); unchanged, nothing is
    # touched and the tree runs on. A terminal that hangs up still stops it (below).
    cli, sock = tree

    def pids() -> dict[str, int | None]:
        reply = json.loads(run(["status", "--json"], runtime).stdout)
        return {n["id"]: n["pid"] for n in reply["root"]["children"]}

    before = pids()
    for nth in (1, 2):  # and again: the handler stays
        cli.proc.send_signal(signal.SIGHUP)
        cli.wait_for(r"^otp-py: SIGHUP: reloaded tree 'sigtree' from tree\.toml$", nth=nth)
        cli.wait_for(r"^otp-py: SIGHUP:   tree 'sigtree': nothing to do ", nth=nth)
    assert pids() == before
    assert cli.proc.poll() is None and sock.is_socket()
    assert not any("stopping tree" in line for line in cli.lines)
    cli.proc.send_signal(signal.SIGTERM)
    assert cli.wait() == 0, cli.output
    assert _terminated(cli) == ["cmd", "task", "proc"]
    assert not sock.exists()  # removed on the way out


CONTROLLING_TTY = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                   "os.execvp(sys.argv[1], sys.argv[1:])")
"""Make fd 0 (a terminal) the controlling terminal of this new session, then exec."""


@pytest.mark.parametrize("view", ["events", "live"])
def test_a_terminal_that_hangs_up_stops_the_tree_in_order(
    tmp_path: Path, runtime: Path, view: str
) -> None:
    path = tmp_path / "tree.toml"
    path.write_text(TREE)
    sock = runtime / "otp-py" / "sigtree.sock"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", CONTROLLING_TTY, script(), "run", str(path), "--view", view],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True, cwd=ROOT,
        env=environment(runtime))
    os.close(slave)
    reading = threading.Event()
    reading.set()

    def drain() -> None:  # a terminal that someone reads, until it hangs up
        while reading.is_set():
            if select.select([master], [], [], 0.1)[0]:
                try:
                    os.read(master, 65536)
                except OSError:
                    return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_until(lambda: run(["status"], runtime).returncode == 0,
                   what="the tree answering on its socket")
        reply = json.loads(run(["status", "--json"], runtime).stdout)
        pids = [n["pid"] for n in reply["root"]["children"] if n.get("pid")]
        assert len(pids) == 2  # proc and cmd
        reading.clear()
        reader.join(TIMEOUT)
        os.close(master)  # the terminal hangs up: the kernel sends SIGHUP
        master = -1
        # Everything written to the terminal from now on fails (EIO): that must not
        # turn the orderly stop into a failure.
        assert proc.wait(TIMEOUT) == 0
        assert not sock.exists()
        wait_until(lambda: not any(psutil.pid_exists(pid) for pid in pids), timeout=5,
                   what="the children gone")
    finally:
        reading.clear()
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(TIMEOUT)


def test_sigquit_dumps_the_tree_and_keeps_running(tree: tuple[Cli, Path],
                                                  runtime: Path) -> None:
    cli, _ = tree
    for nth in (1, 2):  # and again: the handler stays
        cli.proc.send_signal(signal.SIGQUIT)
        end = cli.wait_for(r"^otp-py: end of the SIGQUIT dump$", nth=nth)
        starts = [i for i, line in enumerate(cli.lines) if "SIGQUIT: state of tree" in line]
        assert len(starts) == nth
        dump = cli.lines[starts[-1]:]
        dump = dump[:dump.index(end) + 1]
        assert dump[0].startswith("otp-py: SIGQUIT: state of tree 'sigtree' (pid "
                                  f"{cli.proc.pid}) at ")
        assert dump[1] == "tree 'sigtree': 3/3 running, 0 restarts"
        rows = {line.split()[0]: line.split()[1:3] for line in dump[3:7]}
        assert rows == {"sigtree": ["supervisor", "running"],
                        "sigtree/proc": ["process", "running"],
                        "sigtree/task": ["asyncio", "running"],
                        "sigtree/cmd": ["command", "running"]}
        assert any(line.startswith("last ") and line.endswith(" events:") for line in dump)
        assert any(line.startswith("thread MainThread, id ") for line in dump)
        assert any(line.endswith(" asyncio tasks:") for line in dump)
        assert any("in task_forever" in line for line in dump)  # where the child waits
    status = run(["status", "--json"], runtime)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["tree"]["running"] is True
    cli.proc.send_signal(signal.SIGTERM)
    assert cli.wait() == 0, cli.output
    assert _terminated(cli) == ["cmd", "task", "proc"]


def test_run_with_stdout_closed(tmp_path: Path, runtime: Path) -> None:
    path = tmp_path / "tree.toml"
    path.write_text(CLOSED_STDOUT_TREE)
    with Cli([], runtime, argv=[*STDOUT_CLOSED, script(), "run", str(path), "--view",
                                "events", "--no-capture"]) as cli:
        cli.wait_for(r"control socket ")
        line = cli.wait_for(r"fd1=")
        # The command child's stdout is /dev/null: not closed (the next file it opens
        # would take fd 1 and receive its output), not a descriptor of the tree's.
        assert line.endswith("fd1=/dev/null"), line
        result = run(["ctl", "stop"], runtime)
        assert result.returncode == 0, result.stderr
        assert cli.wait() == 0, cli.output
        assert "otp-py: tree 'closedout' ended: shutdown" in cli.output
        assert "Traceback" not in cli.output, cli.output  # the process child exits cleanly


def test_a_python_tree_with_stdout_closed(runtime: Path) -> None:
    with Cli([], runtime, argv=[*STDOUT_CLOSED, sys.executable, "-c", LIBRARY_TREE],
             env=environment(runtime)) as cli:
        cli.wait_for(r"^started proc$")
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.wait() == 0, cli.output
        assert cli.lines[-1] == "tree ended"
        assert "Traceback" not in cli.output and "AttributeError" not in cli.output, \
            cli.output

