"""``otp-py demo``: the main job, run as a user runs it (the installed console script,
in a subprocess, without a terminal: the plain view)."""

from __future__ import annotations

import itertools
import re
import signal
from pathlib import Path

from tests.cli.clitools import Cli, run


def test_demo_shows_restarts_and_stops_by_itself(runtime: Path) -> None:
    result = run(["demo", "--duration", "4", "--interval", "0.5"], runtime)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    # Events as they happen: crashes, then restarts, in every kind of child.
    assert any(re.search(r"demo: flaky-proc exited: RuntimeError: .*; restart$", line)
               for line in out), result.stdout
    assert any(line.endswith("demo: started flaky-proc (restart 1)") for line in out)
    assert any(line.endswith("demo/pool: started conn (restart 1)") for line in out)
    # The tree table, with a restart count and the last exit reason.
    rows = [line for line in out if line.startswith("demo/flaky-proc ")]
    assert rows, result.stdout
    assert any(re.search(r"running\s+[1-9]\d*\s+\d+\s+\S+\s+RuntimeError", row) for row in rows)
    # A clean stop, in order, after --duration.
    assert "--duration 4 s is over" in result.stderr
    assert out[-1].endswith("demo: supervisor exited: shutdown")
    # A crash's traceback, indented under its event, the first time only; then a count.
    first = next(i for i, line in enumerate(out) if "demo: flaky-proc exited: " in line)
    assert out[first + 1] == "    Traceback (most recent call last):"
    block = list(itertools.takewhile(lambda line: line.startswith("    "), out[first + 1:]))
    assert block[-1] == "    RuntimeError: crashed on purpose after 2 s"
    assert "in flaky_process" in block[-3]
    again = [line for line in out if "demo: flaky-proc exited: " in line][1:]
    # (a crash that races the stop at --duration's end is reported with no "; restart")
    assert all(re.search(r"(; restart)? \(same traceback as before, "
                         rf"{n} times\)$", line) for n, line in enumerate(again, 2)), again
    assert out.count("    Traceback (most recent call last):") == 3  # proc, thread, task
    # and the command itself raised nothing
    assert not any(line.startswith("Traceback") for line in out + result.stderr.splitlines())


def test_demo_stops_in_order_on_ctrl_c(runtime: Path) -> None:
    with Cli(["demo", "--view", "events"], runtime) as cli:
        cli.wait_for(r"demo: supervisor started$")
        cli.proc.send_signal(signal.SIGINT)
        assert cli.wait() == 0, cli.output
    lines = cli.lines
    assert any("SIGINT: stopping tree 'demo' in order" in line for line in lines)
    stops = [line.split(": terminated ")[1].split(":")[0] for line in lines
             if re.search(r" demo: terminated ", line)]
    assert stops == ["pool", "batch", "flaky-thread", "flaky-proc", "steady", "clock"]
    assert "Traceback" not in cli.output


def test_python_dash_m_runs_the_same_command(runtime: Path) -> None:
    import subprocess
    import sys

    from tests.cli.clitools import ROOT, environment

    result = subprocess.run([sys.executable, "-m", "otp_py", "--version"], capture_output=True,
                            text=True, timeout=30, cwd=ROOT, env=environment(runtime),
                            check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("otp-py ")
