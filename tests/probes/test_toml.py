"""Probes declared in a TOML tree file (otp-py run/check): one table per probe, checked
by the ChildSpec, each problem reported at its line and naming the child and field."""

from __future__ import annotations

from pathlib import Path

import pytest

import otp_py as otp
from otp_py import probes
from otp_py.cli.toml_spec import parse
from tests.probes import targets


def load(text: str) -> otp.SupervisorSpec:
    spec, problems = parse(text, "t.toml")
    assert not problems, [p.describe() for p in problems]
    assert spec is not None
    return spec


def problems(text: str) -> list[str]:
    spec, found = parse(text, "t.toml")
    assert spec is None
    return [p.describe() for p in found]


def test_every_kind_of_probe_and_every_timing_key() -> None:
    spec = load("""
[[children]]
id = "web"
command = "python -m http.server --bind 127.0.0.1 8000"
readiness = { http = "http://127.0.0.1:8000/", headers = { X-Probe = "1" }, interval = 0.2 }
liveness = { tcp = 8000, interval = 2, timeout = 0.5, failure_threshold = 4, initial_delay = 1 }

[[children]]
id = "db"
command = "sleep 60"
readiness = { exec = ["test", "-e", "/tmp"], success_threshold = 2 }
liveness = { tcp = "[::1]:5432" }

[[children]]
id = "cache"
command = "sleep 60"

[children.liveness]
call = "tests.probes.targets:alive"
timeout = 3
""")
    web, db, cache = spec.children
    assert isinstance(web, otp.ChildSpec)
    assert isinstance(db, otp.ChildSpec)
    assert isinstance(cache, otp.ChildSpec)
    assert web.readiness == probes.Http("http://127.0.0.1:8000/", headers={"X-Probe": "1"},
                                        interval=0.2)
    assert web.liveness == probes.Tcp(8000, interval=2, timeout=0.5, failure_threshold=4,
                                      initial_delay=1)
    assert db.readiness == probes.Exec(["test", "-e", "/tmp"], success_threshold=2)
    assert db.liveness == probes.Tcp(5432, host="::1")
    assert cache.liveness == probes.Call(targets.alive, timeout=3)
    assert load('[[children]]\nid = "a"\ncommand = "ls"\nliveness = { tcp = '
                '"localhost:80" }\n').children[0].liveness == probes.Tcp(80, host="localhost")


@pytest.mark.parametrize(("text", "line", "says"), [
    pytest.param('[[children]]\nid = "web"\ncommand = "ls"\n\nreadiness = { http = '
                 '"http://x/", timeout = -1 }\n', 5,
                 "child 'web': field 'readiness.timeout': expected a number of seconds",
                 id="bad-timing-inline"),
    pytest.param('[[children]]\nid = "web"\ncommand = "ls"\n\n[children.liveness]\ntcp = 80\n'
                 '\nfailure_threshold = 0\n', 8,
                 "child 'web': field 'liveness.failure_threshold'", id="bad-timing-sub-table"),
    pytest.param('[[children]]\nid = "web"\ncommand = "ls"\nreadiness = { http = "ftp://x/" }\n',
                 4, "field 'readiness.url'", id="not-http"),
    pytest.param('[[children]]\nid = "web"\ncommand = "ls"\nliveness = { tcp = 80, http = '
                 '"http://x/" }\n', 4, "exactly one of exec, tcp, http, call", id="two-kinds"),
    pytest.param('[[children]]\nid = "web"\ncommand = "ls"\nliveness = { interval = 1 }\n',
                 4, "exactly one of", id="no-kind"),
    pytest.param('[[children]]\nid = "web"\ncommand = "ls"\nliveness = { tcp = 80, '
                 'period = 1 }\n', 4, "unknown key 'period'", id="unknown-key"),
    pytest.param('[[children]]\nid = "web"\ncommand = "ls"\nliveness = { http = "http://x/", '
                 'host = "y" }\n', 4, "'host' is a key of a tcp probe", id="host-for-http"),
    pytest.param('[[children]]\nid = "web"\ncommand = "ls"\nliveness = { call = "nope" }\n',
                 4, "import path", id="call-not-a-path"),
    pytest.param('[[children]]\nid = "web"\ncommand = "ls"\nliveness = "tcp 80"\n',
                 4, "expected a table", id="not-a-table"),
])
def test_probe_problems_are_reported_at_their_line(text: str, line: int, says: str) -> None:
    [problem] = problems(text)
    assert problem.startswith(f"t.toml:{line}: "), problem
    assert says in problem, problem


def test_the_documented_tree_file_declares_its_probes() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "production_probes.toml"
    spec = load(path.read_text())
    db, web = spec.children
    assert isinstance(db, otp.ChildSpec)
    assert isinstance(web, otp.ChildSpec)
    assert db.readiness == probes.Tcp(6390, interval=0.1)
    assert db.liveness == probes.Exec(["redis-cli", "-p", "6390", "ping"], interval=5, timeout=2)
    assert web.readiness == probes.Http("http://127.0.0.1:8000/", interval=0.2)
    assert web.liveness == probes.Http("http://127.0.0.1:8000/", headers={"X-Probe": "otp-py"},
                                       interval=2, timeout=1, failure_threshold=3,
                                       initial_delay=5)
