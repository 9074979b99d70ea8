"""``otp-py check`` and ``otp-py tree``: a tree file validated and drawn without
running it."""

from __future__ import annotations

from pathlib import Path

from otp_py.cli.toml_spec import WORKER_KEYS
from tests.cli.clitools import run

GOOD = """
id = "root"
intensity = { max_restarts = 3, period = 5 }

[[children]]
id = "web"
command = "python3 -m http.server 8000"

[[children]]
id = "jobs"
strategy = "one_for_all"

  [[children.children]]
  id = "worker"
  start = "tests.cli.targets:forever"
  backend = "process"
"""


def test_check_a_valid_file(tmp_path: Path, runtime: Path) -> None:
    tree = tmp_path / "tree.toml"
    tree.write_text(GOOD)
    result = run(["check", str(tree)], runtime)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{tree}: ok: tree 'root' with 2 supervisors and 2 workers\n"


def test_check_a_broken_file_prints_one_located_line(tmp_path: Path, runtime: Path) -> None:
    tree = tmp_path / "tree.toml"
    tree.write_text(GOOD.replace('  backend = "process"', '  backend = "process"\n'
                                 '  shutdown = "soon"'))
    result = run(["check", str(tree)], runtime)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{tree}:17: children[1].children[0]: child 'worker': field 'shutdown': expected "
        "seconds (a number), INFINITY or BRUTAL_KILL; got 'soon'"
    ]


def test_check_reports_every_problem_with_its_place(tmp_path: Path, runtime: Path) -> None:
    tree = tmp_path / "tree.toml"
    tree.write_text("""\
id = "root"
intensity = { max_restarts = 3, period = 0 }

[[children]]
id = "web"
command = ["python3"]
colour = "blue"

[[children]]
id = "jobs"
children = [
  { id = "a", start = "tests.cli.targets:nope" },
]
""")
    result = run(["check", str(tree)], runtime)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{tree}:2: (root table): supervisor 'root': field 'intensity': "
        "SlidingWindow.period must be > 0; got 0",
        f"{tree}:7: children[0]: child 'web': unknown key 'colour' for a worker; expected "
        f"{', '.join(WORKER_KEYS)}",
        f"{tree}:11: children[1].children[0]: child 'a': field 'start': cannot import "
        "'tests.cli.targets:nope': 'tests.cli.targets' has no attribute 'nope'",
    ]


def test_check_a_file_that_is_not_toml(tmp_path: Path, runtime: Path) -> None:
    tree = tmp_path / "tree.toml"
    tree.write_text('id = "root"\n[[children]\n')
    result = run(["check", str(tree)], runtime)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{tree}:2: invalid TOML: ")
    assert "Traceback" not in result.stderr


def test_tree_prints_the_declared_tree(tmp_path: Path, runtime: Path) -> None:
    tree = tmp_path / "tree.toml"
    tree.write_text(GOOD)
    result = run(["tree", str(tree)], runtime)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "root  supervisor: one_for_one, at most 3 restarts in 5 s, permanent, shutdown infinity",
        "├── web  worker: command, python3 -m http.server 8000, permanent, shutdown 5 s",
        "└── jobs  supervisor: one_for_all, at most 1 restart in 5 s, permanent, "
        "shutdown infinity",
        "    └── worker  worker: process, tests.cli.targets:forever, permanent, shutdown 5 s",
    ]


def test_tree_prints_mermaid(runtime: Path) -> None:
    result = run(["tree", "tests.cli.targets:TREE", "--mermaid"], runtime)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "flowchart TD",
        '    n0_pytree("pytree<br/>one_for_one")',
        '    n1_task["task<br/>asyncio, permanent"]',
        "    n0_pytree --> n1_task",
        '    n2_thread["thread<br/>thread, permanent"]',
        "    n0_pytree --> n2_thread",
    ]


STARTS_BADLY = """
id = "late"

[[children]]
id = "tool"
command = ["no-such-program-otp-py-test", "--serve"]

[[children]]
id = "here"
command = ["sleep", "1"]
cwd = "{missing}"

[[children]]
id = "local"
command = ["./bin/tool"]

[[children]]
id = "fine"
command = ["sleep", "1"]
env = {{ PATH = "/usr/bin:/bin" }}
"""


def test_check_finds_what_would_fail_at_start(tmp_path: Path, runtime: Path) -> None:
    tree = tmp_path / "tree.toml"
    tree.write_text(STARTS_BADLY.format(missing=tmp_path / "nowhere"))
    result = run(["check", str(tree)], runtime, cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr
    assert lines[0].startswith(f"{tree}:6: children[0]: child 'tool': field 'command': "
                               "'no-such-program-otp-py-test' is not found on PATH (")
    assert lines[1] == (f"{tree}:11: children[1]: child 'here': field 'cwd': no such "
                        f"directory: '{tmp_path / 'nowhere'}'")
    assert lines[2] == f"{tree}:15: children[2]: child 'local': field 'command': " \
                       "'./bin/tool': no such file"
    # what the tree will really find is fine: the run would start
    (tmp_path / "nowhere").mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "tool").chmod(0o755)
    tree.write_text(STARTS_BADLY.format(missing=tmp_path / "nowhere")
                    .replace("no-such-program-otp-py-test", "sh"))
    result = run(["check", str(tree)], runtime, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr

