"""JSON logs: a real tree's reports through ``otp.JsonFormatter`` on the ``otp_py``
logger, and ``otp-py run --log-format json``: one object a line, every documented
key in every object."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import otp_py as otp
from otp_py import reports as rp
from otp_py.observe import FIELDS, report_fields
from tests.observe.targets import crash_on_usr1
from tests.reports import Recorder

DOCS = Path(__file__).resolve().parents[2] / "docs" / "production.rst"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The ``otp_py`` logger writing JSON lines to a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(otp.JsonFormatter())
    logger = logging.getLogger("otp_py")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _objects(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    objects = [json.loads(line) for line in lines]  # each line is one whole object
    for obj in objects:
        assert list(obj) == list(FIELDS)
    return objects


def test_a_crash_logs_one_json_object_a_line_with_the_reports_fields(
        json_log: io.StringIO) -> None:
    recorder = Recorder()
    tree = otp.SupervisorSpec(id="root", children=[
        otp.ChildSpec(id="worker", start=crash_on_usr1, backend="process",
                        ready=True)])
    sup = otp.start(tree, on_report=recorder)
    try:
        [row] = sup.which_children()
        assert row.pid is not None
        os.kill(row.pid, signal.SIGUSR1)
        recorder.wait_for(lambda r: isinstance(r, rp.ChildStarted) and r.restarts == 1)
    finally:
        sup.stop()
    objects = _objects(json_log.getvalue())
    [exited] = [o for o in objects if o["event"] == "child_exited"
                and o["reason_kind"] == "error"]
    assert exited["tree"] == "root"
    assert exited["supervisor"] == "root"
    assert exited["child"] == "worker"
    assert exited["level"] == "error"
    assert exited["logger"] == "otp_py"
    assert exited["reason"] == "RuntimeError: asked to crash"
    assert exited["outcome"] == "restart"
    assert exited["pid"] == os.getpid()  # the process that logged: the supervisor's
    assert "raise RuntimeError" in exited["traceback"]
    assert "RuntimeError: asked to crash" in exited["traceback"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", exited["time"])
    assert exited["message"] == "root: worker exited: RuntimeError: asked to crash; restart"
    [again] = [o for o in objects if o["event"] == "child_started" and o["restarts"] == 1]
    assert again["child"] == "worker"
    assert again["reason"] is None and again["traceback"] is None
    assert any(o["event"] == "child_terminated" and o["reason_kind"] == "shutdown"
               for o in objects)
    assert objects[-1]["event"] == "supervisor_exited"


def test_records_without_a_report_have_the_same_keys() -> None:
    formatter = otp.JsonFormatter()
    logger = logging.getLogger("otp_py.test")
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logger.makeRecord("otp_py.test", logging.WARNING, __file__, 1,
                                   "value %s", ("x",), sys.exc_info())
    line = formatter.format(record)
    assert "\n" not in line
    [obj] = _objects(line)
    assert obj["message"] == "value x"
    assert obj["level"] == "warning"
    assert obj["event"] is None and obj["tree"] is None
    assert "ValueError: bad" in obj["traceback"]


def test_report_fields_of_each_kind_of_report() -> None:
    give_up = rp.IntensityExceeded(("root", "pool"), 1.0, child_id="db",
                                   why="4 restarts within 5 s (at most 3 allowed)")
    fields = report_fields(give_up, at=0.0)
    assert fields["event"] == "intensity_exceeded"
    assert fields["supervisor"] == "root/pool" and fields["tree"] == "root"
    assert fields["reason"] == "4 restarts within 5 s (at most 3 allowed)"
    assert fields["level"] == "error"
    assert fields["time"] == "1970-01-01T00:00:00.000Z"
    delayed = report_fields(rp.RestartScheduled(("root",), 1.0, child_id="db", delay=0.5))
    assert delayed["delay"] == 0.5 and delayed["level"] == "warning"
    failed = report_fields(rp.ChildStartFailed(("root",), 1.0, child_id="db",
                                               reason=otp.reasons.Exited(1)))
    assert failed["reason_kind"] == "start_failed"
    assert json.loads(json.dumps(failed)) == failed  # JSON types only


def test_the_keys_are_documented() -> None:
    text = DOCS.read_text()
    for key in FIELDS:
        assert f"``{key}``" in text, key


def test_otp_py_run_log_format_json(tmp_path: Path) -> None:
    from tests.cli.clitools import run, runtime_dir

    tree = tmp_path / "tree.toml"
    tree.write_text(
        'id = "root"\n'
        'intensity = { max_restarts = 100, period = 60 }\n'
        '[[children]]\n'
        'id = "flaky"\n'
        f'command = [{json.dumps(sys.executable)}, "-c", "import time; time.sleep(0.2); '
        'raise SystemExit(3)"]\n')
    with runtime_dir() as runtime:
        result = run(["run", str(tree), "--log-format", "json", "--no-control",
                      "--duration", "1.5"], runtime)
    assert result.returncode == 0, result.stderr
    events = _objects(result.stdout)
    notes = _objects(result.stderr)
    assert any(n["message"].startswith("starting tree 'root'") for n in notes)
    assert any(e["event"] == "child_exited" and e["child"] == "flaky"
               and e["reason"] == "exited with status 3" and e["reason_kind"] == "error"
               for e in events)
    assert any(e["event"] == "child_started" and e["restarts"] == 1 for e in events)
