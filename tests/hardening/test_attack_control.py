"""A hostile child against the control socket's commands: what it does to itself
must not turn an operator's command against the tree (or the operator's shell)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.clitools import Cli, run, runtime_dir, script

JOINER = ("import os, time\n"
          "os.setpgid(0, os.getsid(0))  # into the group of its session's leader: the tree's\n"
          "print('joined', os.getpgrp(), flush=True)\n"
          "time.sleep(600)\n")

TREE = """
id = "hx"

[[children]]
id = "joiner"
command = [{python}, "-c", {script}]
"""


@pytest.fixture
def runtime() -> Iterator[Path]:
    with runtime_dir() as path:
        yield path


def test_signal_group_of_a_child_in_the_trees_own_group_is_refused(
        tmp_path: Path, runtime: Path) -> None:
    path = tmp_path / "tree.toml"
    path.write_text(TREE.format(python=json.dumps(sys.executable),
                                script=json.dumps(JOINER)))
    # setsid: the tree leads a session and a group of its own (not the test's), and
    # the child, in that session, can join its group
    argv = ["setsid", script(), "run", str(path), "--view", "events", "--no-capture"]
    with Cli([], runtime, argv=argv) as cli:
        cli.wait_for(r"control socket ")
        line = cli.wait_for(r"^joined \d+$")
        assert int(line.split()[1]) == cli.proc.pid  # it is in the tree's group now
        result = run(["signal", "--group", "TERM", "joiner"], runtime)
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert "has left the process group it was started in" in result.stderr
        assert cli.proc.poll() is None  # the tree did not get the signal
        alone = run(["signal", "TERM", "joiner"], runtime)
        assert alone.returncode == 0, (alone.stdout, alone.stderr)
        cli.wait_for(r"hx: started joiner \(restart 1\)$")
        assert run(["status"], runtime).returncode == 0
