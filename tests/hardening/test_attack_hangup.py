"""A careless operator's SIGHUP storm (reload, reload, reload...) while the tree
gives up: ``otp-py run`` must still end with the status and the line that say it gave
up, not die of a SIGHUP that arrived once its handler was gone."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.clitools import Cli, runtime_dir, script

TREE = """
id = "storm"
intensity = {{ max_restarts = 1, period = 5 }}

[[children]]
id = "crasher"
command = ["sh", "-c", {script}]
"""


@pytest.fixture
def runtime() -> Iterator[Path]:
    with runtime_dir() as path:
        yield path


def test_sighup_storm_while_the_tree_gives_up(tmp_path: Path, runtime: Path) -> None:
    marker = tmp_path / "crash-now"
    crash = f"while [ ! -e {marker} ]; do sleep 0.05; done; exit 3"
    path = tmp_path / "tree.toml"
    path.write_text(TREE.format(script=json.dumps(crash)))
    argv = ["setsid", script(), "run", str(path), "--view", "events", "--no-capture"]
    with Cli([], runtime, argv=argv) as cli:
        cli.wait_for(r"control socket ")
        marker.touch()  # it crashes now, and again at once: the tree gives up
        deadline = time.monotonic() + 30
        while cli.proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(cli.proc.pid, signal.SIGHUP)
            time.sleep(0.002)
        code = cli.wait(30)
        assert code == 1, (code, cli.output)
        cli.wait_for(r"gave up")
