"""The systemd unit the docs ship (examples/otp-py.service) and the tree it runs
(examples/production_service.toml, with examples/production_server.py): its settings
are the ones the docs name, and its ExecStart, run as systemd would run it (a
listening NOTIFY_SOCKET, WATCHDOG_USEC, SIGTERM to the main process), gets the
service ready, pinged and stopped within TimeoutStopSec. ``otp-py status`` shows
the server's STATUS= meanwhile."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otp_py.cli.toml_spec import load_file
from otp_py.runtime.systemd import shutdown_bound
from tests.cli.clitools import Cli, environment, run, runtime_dir, script
from tests.notify.test_tree_systemd import Manager

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
UNIT = EXAMPLES / "otp-py.service"
TREE = EXAMPLES / "production_service.toml"


def _unit() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_the_unit_has_the_settings_the_docs_name() -> None:
    service = _unit()
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert service["KillMode"] == "mixed"
    assert float(service["WatchdogSec"]) > 0
    bound = shutdown_bound(load_file(str(TREE)))
    assert bound == 14  # what the tree file's comment and the unit's say
    assert float(service["TimeoutStopSec"]) >= bound
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "otp-py" and argv[1] == "run"
    assert (Path(service["WorkingDirectory"]) / argv[-1]).name == TREE.name


@pytest.fixture
def runtime() -> Iterator[Path]:
    with runtime_dir() as path:
        yield path


def test_the_units_exec_start_runs_as_systemd_would(runtime: Path) -> None:
    service = _unit()
    argv = shlex.split(service["ExecStart"])
    argv[0] = script()  # (the otp-py installed here; the unit names /usr/local/bin's)
    manager = Manager()
    # systemd sets WATCHDOG_USEC from WatchdogSec; scaled down here to see pings soon
    env = environment(runtime) | {"NOTIFY_SOCKET": manager.address, "WATCHDOG_USEC": "400000"}
    try:
        with Cli([], runtime, argv=argv, env=env, cwd=EXAMPLES) as cli:
            manager.wait_for("READY=1", timeout=60)
            assert manager.lines("STATUS=running: 2 children running")
            manager.wait_for("WATCHDOG=1", count=3)
            table = run(["status"], runtime)
            assert table.returncode == 0, table.stderr
            assert "running (serving)" in table.stdout
            detail = run(["status", "service/server"], runtime)
            assert re.search(r"^  status +serving$", detail.stdout, re.MULTILINE), detail.stdout
            data = json.loads(run(["status", "--json"], runtime).stdout)
            server = next(c for c in data["root"]["children"] if c["id"] == "server")
            assert server["status"] == "serving"
            began = time.monotonic()
            cli.proc.send_signal(signal.SIGTERM)  # KillMode=mixed: the main process
            manager.wait_for("STOPPING=1")
            assert cli.wait(float(service["TimeoutStopSec"])) == 0
            assert time.monotonic() - began < float(service["TimeoutStopSec"])
    finally:
        manager.close()
