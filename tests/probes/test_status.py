"""``otp-py status PATH`` shows a child's probes: what they probe, their timing, and
their counts and last result; a tree file declares them (otp-py run)."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.clitools import Cli, run, runtime_dir

PY = sys.executable


@pytest.fixture
def runtime() -> Iterator[Path]:
    with runtime_dir() as path:
        yield path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_status_shows_the_probes_and_their_last_results(tmp_path: Path, runtime: Path) -> None:
    port = _free_port()
    tree = tmp_path / "tree.toml"
    tree.write_text(f"""
id = "probed"

[[children]]
id = "web"
command = ["{PY}", "-m", "http.server", "--bind", "127.0.0.1", "{port}"]
cwd = "{tmp_path}"
readiness = {{ http = "http://127.0.0.1:{port}/", interval = 0.05 }}
liveness = {{ tcp = {port}, interval = 0.1 }}
""")
    with Cli(["run", str(tree), "--view", "events"], runtime) as cli:
        cli.wait_for(r"control socket ")
        cli.wait_for(r"started web")
        result = run(["status", "--json", "web"], runtime)
        assert result.returncode == 0, result.stderr
        probes = json.loads(result.stdout)["probes"]
        assert probes["readiness"]["probe"] == f"http GET http://127.0.0.1:{port}/"
        assert probes["readiness"]["verdict"] == "ready"
        assert probes["readiness"]["last"]["detail"] == "HTTP 200 OK"
        assert probes["liveness"]["probe"] == f"tcp 127.0.0.1:{port}"
        assert probes["liveness"]["timing"].startswith("every 0.1 s, timeout 1 s")
        text = run(["status", "web"], runtime)
        assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    [readiness] = [i for i, line in enumerate(lines) if line.strip().startswith("readiness")]
    assert f"http GET http://127.0.0.1:{port}/ (every 0.05 s" in lines[readiness]
    assert "ready after" in lines[readiness + 1]
    assert "last: passed in" in lines[readiness + 1]
    assert lines[readiness + 1].endswith(": HTTP 200 OK")
    assert any(line.strip().startswith(f"liveness   tcp 127.0.0.1:{port}") for line in lines), \
        lines
