"""supervisorctl's commands, as otp-py subcommands, against a tree that ``otp-py run``
is running: a real control socket and real child processes. Each command keeps the
exit-status convention of the command line: 0 done, 1 refused, 2 a usage mistake."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.cli.clitools import Cli, run, wait_until

TREE = """
id = "sc"
intensity = {{ max_restarts = 20, period = 5 }}

[[children]]
id = "proc"
start = "tests.cli.targets:forever"
backend = "process"
shutdown = 2

[[children]]
id = "cmd"
command = ["sh", "-c", {cmd_script}]

[[children]]
id = "flaky"
start = "tests.cli.targets:crash_once"
backend = "process"
args = ["{marker}"]

[[children]]
id = "noisy"
command = ["sh", "-c", {noisy_script}]

[[children]]
id = "pool"

  [[children.children]]
  id = "a"
  start = "tests.cli.targets:task_forever"

  [[children.children]]
  id = "b"
  start = "tests.cli.targets:task_forever"

  [[children.children]]
  id = "c"
  start = "tests.cli.targets:thread_until_stopped"
  backend = "thread"
"""


CMD_SCRIPT = ('trap "echo shell-got-usr1" USR1; sleep 1000 & '
              'while kill -0 $! 2>/dev/null; do wait; done; echo sleep-gone')
"""A shell that reports a SIGUSR1 it gets and ends once its sleep has ended."""

NOISY_SCRIPT = ("if [ ! -e {noisy} ]; then touch {noisy}; echo 'disk on fire' >&2; exit 3; "
                "fi; exec sleep 1000")
"""A command that fails once, saying why on stderr, then runs."""


@pytest.fixture
def tree(tmp_path: Path, runtime: Path) -> Iterator[Cli]:
    path = tmp_path / "tree.toml"
    noisy = NOISY_SCRIPT.format(noisy=tmp_path / "noisy.marker")
    path.write_text(TREE.format(marker=tmp_path / "flaky.marker",
                                cmd_script=json.dumps(CMD_SCRIPT),
                                noisy_script=json.dumps(noisy)))
    # (--no-capture: the children's output on the command's own, where the tests read it)
    with Cli(["run", str(path), "--view", "events", "--no-capture"], runtime) as cli:
        cli.wait_for(r"control socket ")
        cli.wait_for(r"sc: started flaky \(restart 1\)$")
        cli.wait_for(r"sc: started noisy \(restart 1\)$")
        yield cli


def ok(runtime: Path, *args: str) -> str:
    result = run(list(args), runtime)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def child(runtime: Path, path: str) -> dict[str, object]:
    reply: dict[str, object] = json.loads(ok(runtime, "status", path, "--json"))
    return reply


def test_stop_start_restart_one_child(tree: Cli, runtime: Path) -> None:
    pid = child(runtime, "proc")["pid"]
    assert isinstance(pid, int) and psutil.pid_exists(pid)
    assert ok(runtime, "stop", "proc") == "terminated sc/proc\n"
    assert child(runtime, "proc")["state"] == "stopped"
    wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie",
               what="the stopped child's process gone")
    assert ok(runtime, "stop", "proc") == "sc/proc is already stopped\n"
    assert ok(runtime, "start", "proc") == "started sc/proc\n"
    started = child(runtime, "proc")
    assert started["state"] == "running" and started["pid"] not in (None, pid)
    assert ok(runtime, "start", "proc") == "sc/proc is already running\n"
    assert ok(runtime, "restart", "sc/proc") == "restarted sc/proc\n"
    assert child(runtime, "proc")["pid"] != started["pid"]
    # ctl stays as the older spelling
    assert ok(runtime, "ctl", "terminate", "proc") == "terminated sc/proc\n"
    assert ok(runtime, "ctl", "start", "proc") == "started sc/proc\n"


def test_globs_name_every_child_they_match(tree: Cli, runtime: Path) -> None:
    assert ok(runtime, "stop", "pool/*") == (
        "terminated sc/pool/a\nterminated sc/pool/b\nterminated sc/pool/c\n")
    states = json.loads(ok(runtime, "status", "sc/pool/*", "--json"))
    assert [(c["path"], c["state"]) for c in states] == [
        ("sc/pool/a", "stopped"), ("sc/pool/b", "stopped"), ("sc/pool/c", "stopped")]
    assert ok(runtime, "start", "pool/[ab]") == "started sc/pool/a\nstarted sc/pool/b\n"
    assert ok(runtime, "restart", "pool/?") == (
        "restarted sc/pool/a\nrestarted sc/pool/b\nrestarted sc/pool/c\n")
    result = run(["stop", "pool/z*"], runtime)
    assert result.returncode == 1
    assert result.stderr == "otp-py: error: no child matches 'pool/z*' (see otp-py status)\n"


def test_signal_a_child_or_its_process_group(tree: Cli, runtime: Path) -> None:
    pid = child(runtime, "cmd")["pid"]
    assert isinstance(pid, int)
    [sleeper] = psutil.Process(pid).children()
    # To the child alone: its shell's trap runs; the sleep it started is untouched.
    out = ok(runtime, "signal", "USR1", "cmd")
    assert out == f"sent SIGUSR1 to sc/cmd (pid {pid})\n"
    tree.wait_for(r"^shell-got-usr1$")
    assert sleeper.is_running() and sleeper.status() != psutil.STATUS_ZOMBIE
    assert child(runtime, "cmd")["pid"] == pid
    # To its process group: the sleep gets it too and dies of it.
    out = ok(runtime, "signal", "--group", "SIGUSR1", "cmd")
    assert out == f"sent SIGUSR1 to process group of sc/cmd (pid {pid})\n"
    tree.wait_for(r"^sleep-gone$")
    tree.wait_for(r"sc: started cmd \(restart 1\)$")
    # A number works as well; SIGTERM ends the shell, and the tree restarts it.
    pid = child(runtime, "cmd")["pid"]
    assert ok(runtime, "signal", "15", "cmd") == f"sent SIGTERM to sc/cmd (pid {pid})\n"
    tree.wait_for(r"sc: started cmd \(restart 2\)$")

    for args, message in {
        ("signal", "HUP", "pool/a"): "sc/pool/a is an asyncio child",
        ("signal", "HUP", "pool"): "sc/pool is a supervisor",
    }.items():
        result = run(list(args), runtime)
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)
    result = run(["signal", "NOPE", "cmd"], runtime)
    assert result.returncode == 2 and "unknown signal 'NOPE'" in result.stderr


def test_pid_of_the_tree_and_of_children(tree: Cli, runtime: Path) -> None:
    assert ok(runtime, "pid") == f"{tree.proc.pid}\n"
    pid = int(ok(runtime, "pid", "proc"))
    assert psutil.Process(pid).ppid() != 0 and pid != tree.proc.pid
    result = run(["pid", "p*"], runtime)  # proc, and pool: a supervisor has no pid
    assert result.returncode == 1
    assert result.stdout == f"sc/proc {pid}\n"
    assert result.stderr == ("otp-py: error: sc/pool has no pid of its own: a supervisor "
                             f"runs inside the tree's process (pid {tree.proc.pid})\n")
    result = run(["pid", "pool/a"], runtime)
    assert result.returncode == 1
    assert "sc/pool/a has no pid of its own: an asyncio child runs inside the tree's process" \
        in result.stderr


def test_status_path_shows_one_child_in_full(tree: Cli, runtime: Path) -> None:
    flaky = child(runtime, "flaky")
    assert flaky["state"] == "running" and flaky["restarts"] == 1
    assert flaky["target"] == "tests.cli.targets:crash_once"
    [crash] = flaky["history"]  # type: ignore[misc]
    assert crash["reason"] == "ValueError: first start fails on purpose"
    assert "Traceback (most recent call last)" in crash["traceback"]
    assert "in crash_once" in crash["traceback"]
    noisy = child(runtime, "noisy")
    [exit3] = noisy["history"]  # type: ignore[misc]
    assert exit3["reason"] == "exited with status 3"
    assert "disk on fire" in exit3["stderr"]

    text = ok(runtime, "status", "flaky")
    lines = text.splitlines()
    assert lines[0] == "sc/flaky  (worker, process)"
    assert "  target    tests.cli.targets:crash_once" in lines
    assert any(line.startswith("  pid       ") and line.split()[-1].isdigit() for line in lines)
    assert "  last 1 exit (oldest first):" in lines
    assert any(line.endswith(": ValueError: first start fails on purpose") or
               ": ValueError: first start fails on purpose (after" in line for line in lines)
    assert "        Traceback (most recent call last):" in lines
    assert "ValueError: first start fails on purpose" in lines[-1]
    text = ok(runtime, "status", "noisy")
    assert "        last lines of stderr:" in text.splitlines()
    assert "          disk on fire" in text.splitlines()


def test_usage_mistakes_and_shutdown(tree: Cli, runtime: Path) -> None:
    result = run(["stop"], runtime)
    assert result.returncode == 2
    assert "to stop the whole tree: otp-py shutdown" in result.stderr
    result = run(["start", "nope"], runtime)
    assert (result.returncode, result.stderr) == (
        1, "otp-py: error: no child 'nope' under 'sc'\n")
    assert ok(runtime, "shutdown") == "stopping tree 'sc'\n"
    assert tree.wait() == 0, tree.output
    assert os.WIFEXITED(0)

