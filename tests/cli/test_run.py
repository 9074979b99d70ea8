"""``otp-py run``: trees declared in TOML or Python, run by the console script."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import psutil

from tests.cli.clitools import Cli, run, wait_until

PY = json.dumps(sys.executable)  # a TOML string holding this interpreter's path
STUBBORN = json.dumps(
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)")

TREE = f"""
id = "root"
strategy = "one_for_one"
intensity = {{ max_restarts = 10, period = 5 }}

[[children]]
id = "proc"
start = "tests.cli.targets:forever"
backend = "process"
shutdown = 2

[[children]]
id = "flaky"
start = "tests.cli.targets:crash_after"
args = [0.3]
backend = "thread"

[[children]]
id = "pool"
strategy = "one_for_all"
intensity = {{ max_restarts = 5, period = 5, backoff = {{ initial = 0.05, maximum = 0.5 }} }}

  [[children.children]]
  id = "task"
  start = "tests.cli.targets:task_forever"

  [[children.children]]
  id = "cmd"
  command = [{PY}, "-c", "import time; time.sleep(60)"]
  stop_signal = "SIGTERM"
  shutdown = 2
"""


def test_run_a_toml_tree(tmp_path: Path, runtime: Path) -> None:
    tree = tmp_path / "tree.toml"
    tree.write_text(TREE)
    result = run(["run", str(tree), "--duration", "2", "--view", "plain", "--interval", "0.5"],
                 runtime)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for line in ("root: started proc", "root: started flaky", "root/pool: started task",
                 "root/pool: started cmd", "root: started pool", "root: supervisor started",
                 "root: flaky exited: RuntimeError: crashed after 0.3 s; restart",
                 "root: started flaky (restart 1)", "root: terminated pool: shutdown",
                 "root: supervisor exited: shutdown"):
        assert line in out, f"{line!r} missing from:\n{out}"
    assert "root/pool/cmd" in out and "root/proc" in out  # the tree table
    assert "Traceback" not in result.stderr


def test_run_a_tree_declared_in_python(runtime: Path) -> None:
    for target in ("tests.cli.targets:TREE", "tests.cli.targets:make_tree()"):
        result = run(["run", target, "--duration", "0.5", "--view", "events"], runtime)
        assert result.returncode == 0, result.stderr
        assert "pytree: started task" in result.stdout
        assert "pytree: supervisor exited: shutdown" in result.stdout


def test_a_tree_that_gives_up_exits_non_zero_with_one_line(tmp_path: Path,
                                                           runtime: Path) -> None:
    tree = tmp_path / "doomed.toml"
    tree.write_text("""
id = "doomed"
intensity = { max_restarts = 2, period = 10 }

[[children]]
id = "crasher"
start = "tests.cli.targets:crash_after"
args = [0.05]
backend = "thread"
""")
    result = run(["run", str(tree), "--view", "events"], runtime)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == ["otp-py: error: supervisor 'doomed' gave up: 3 restarts within 10 s "
                      "(at most 2 allowed)"], result.stderr
    assert "Traceback" not in result.stderr
    assert "doomed: giving up after crasher failed" in result.stdout


def test_user_mistakes_are_one_line_and_exit_2(tmp_path: Path, runtime: Path) -> None:
    cases = {
        ("run", "no_such_module_xyz:tree"): "no module named 'no_such_module_xyz'",
        ("run", "tests.cli.targets:nope"): "has no attribute 'nope'",
        ("run", "tests.cli.targets:NOT_A_TREE"): "int, not an otp_py.SupervisorSpec",
        ("run", str(tmp_path / "missing.toml")): "missing.toml: no such file",
        ("run", "neither"): "neither a TOML file nor an import path",
        ("tree", "tests.cli.targets:forever"): "is a function, not a SupervisorSpec; if it "
                                               "returns the tree, write "
                                               "tests.cli.targets:forever()",
        ("tree", "tests.cli.targets:always_crash()"): "raised RuntimeError: crashes every time",
        ("demo", "--duration", "-1"): "expected a positive number of seconds",
        ("ctl", "restart"): "needs the PATH of a child",
        ("ctl", "fly"): "invalid choice",
    }
    for args, message in cases.items():
        result = run(list(args), runtime)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and message in lines[0], (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_sigterm_stops_in_order_and_a_second_ctrl_c_kills_at_once(
    tmp_path: Path, runtime: Path
) -> None:
    tree = tmp_path / "slow.toml"
    tree.write_text(f"""
id = "slow"

[[children]]
id = "stubborn"   # ignores SIGTERM, and may take forever to stop
command = [{PY}, "-c", {STUBBORN}]
shutdown = "infinity"

[[children]]
id = "proc"
start = "tests.cli.targets:forever"
backend = "process"
""")
    with Cli(["run", str(tree), "--view", "events"], runtime) as cli:
        cli.wait_for(r"slow: supervisor started$")
        family = psutil.Process(cli.proc.pid).children(recursive=True)
        cli.proc.send_signal(signal.SIGTERM)
        cli.wait_for(r"SIGTERM: stopping tree 'slow' in order")
        cli.wait_for(r"slow: terminated proc: shutdown$")  # now waiting on stubborn
        cli.proc.send_signal(signal.SIGINT)
        assert cli.wait() == 130
    assert "second Ctrl-C: killing the tree now" in cli.output
    wait_until(lambda: all(_gone(p) for p in family), what="the tree's processes gone")


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_run_prints_a_crash_loops_traceback_once_then_a_count(tmp_path: Path,
                                                               runtime: Path) -> None:
    path = tmp_path / "loop.toml"
    path.write_text('id = "loop"\nintensity = { max_restarts = 100, period = 5 }\n\n'
                    '[[children]]\nid = "w"\nstart = "tests.cli.targets:crash_after"\n'
                    'backend = "thread"\nargs = [0.1]\n')
    with Cli(["run", str(path), "--view", "events"], runtime) as cli:
        cli.wait_for(r"loop: w exited: .*; restart \(same traceback as before, 3 times\)$")
    lines = cli.lines
    crashes = [i for i, line in enumerate(lines) if " loop: w exited: " in line]
    first = crashes[0]
    assert lines[first].endswith(" loop: w exited: RuntimeError: crashed after 0.1 s; restart")
    assert lines[first + 1] == "    Traceback (most recent call last):"
    block = [line for line in lines[first + 1:crashes[1]] if line.startswith("    ")]
    assert block[-2].strip().startswith("raise RuntimeError")
    assert block[-3].endswith(", in crash_after")
    assert block[-1] == "    RuntimeError: crashed after 0.1 s"
    assert lines.count("    Traceback (most recent call last):") == 1
    assert lines[crashes[1]].endswith("; restart (same traceback as before, 2 times)")
