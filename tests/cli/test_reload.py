"""Reloading a tree that ``otp-py run`` runs: SIGHUP and ``otp-py ctl reload``.

The tree file is edited while the tree runs (one child's args changed, one child
added, one removed); after the reload the unchanged child has the same pid, the
changed one a new pid, the added one runs, the removed one is gone. A file that no
longer loads changes nothing and says why; a tree declared in Python is not reloaded
and runs on.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.cli.clitools import Cli, run, wait_until

TREE = """
id = "rltree"
intensity = { max_restarts = 10, period = 5 }

[[children]]
id = "keep"
start = "tests.cli.targets:forever"
backend = "process"
shutdown = 2

[[children]]
id = "change"
start = "tests.cli.targets:crash_after"
args = [3600]
backend = "process"
shutdown = 2

[[children]]
id = "gone"
command = ["sleep", "300"]
"""

EDITED = """
id = "rltree"
intensity = { max_restarts = 10, period = 5 }

[[children]]
id = "keep"
start = "tests.cli.targets:forever"
backend = "process"
shutdown = 2

[[children]]
id = "added"
command = ["sleep", "301"]

[[children]]
id = "change"
start = "tests.cli.targets:crash_after"
args = [3601]
backend = "process"
shutdown = 2
"""


@pytest.fixture
def tree(tmp_path: Path, runtime: Path) -> Iterator[tuple[Cli, Path]]:
    """``otp-py run`` on TREE, up and listening: (the command, its tree file)."""
    path = tmp_path / "tree.toml"
    path.write_text(TREE)
    with Cli(["run", str(path), "--view", "events"], runtime) as cli:
        cli.wait_for(r"control socket ")
        yield cli, path


def children(runtime: Path) -> dict[str, dict[str, Any]]:
    """The root's children in the running tree, by id, in its order."""
    result = run(["status", "--json"], runtime)
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    return {n["id"]: n for n in reply["root"]["children"]}


def test_sighup_applies_the_edited_tree_file(tree: tuple[Cli, Path], runtime: Path) -> None:
    cli, path = tree
    before = children(runtime)
    assert list(before) == ["keep", "change", "gone"]
    assert all(n["state"] == "running" and n["pid"] for n in before.values())
    path.write_text(EDITED)
    cli.proc.send_signal(signal.SIGHUP)
    cli.wait_for(r"^otp-py: SIGHUP: reloaded tree 'rltree' from tree\.toml: 1 added, "
                 r"1 removed, 1 changed, 1 unchanged$")
    after = children(runtime)
    assert list(after) == ["keep", "added", "change"]  # the file's order
    assert after["keep"]["pid"] == before["keep"]["pid"]
    assert after["change"]["pid"] not in (None, before["change"]["pid"])
    assert after["added"]["state"] == "running" and psutil.pid_exists(after["added"]["pid"])
    wait_until(lambda: not psutil.pid_exists(before["gone"]["pid"]), timeout=10,
               what="the removed child gone")
    cli.wait_for(r"^otp-py: SIGHUP:   changed:   rltree/change \(args\)$")
    assert cli.proc.poll() is None  # the tree runs on
    cli.proc.send_signal(signal.SIGTERM)
    assert cli.wait() == 0, cli.output


def test_ctl_reload_dry_run_prints_the_plan_and_changes_nothing(
    tree: tuple[Cli, Path], runtime: Path
) -> None:
    _, path = tree
    before = children(runtime)
    path.write_text(EDITED)
    result = run(["ctl", "reload", "--dry-run"], runtime)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "reload plan for tree 'rltree' from tree.toml (dry run: nothing changed)",
        "  added:     rltree/added",
        "  removed:   rltree/gone",
        "  changed:   rltree/change (args)",
        "  unchanged: rltree/keep",
    ]
    assert {k: n["pid"] for k, n in children(runtime).items()} == \
        {k: n["pid"] for k, n in before.items()}
    result = run(["ctl", "reload"], runtime)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == ("reloaded tree 'rltree' from tree.toml: 1 added, "
                                             "1 removed, 1 changed, 1 unchanged")
    assert list(children(runtime)) == ["keep", "added", "change"]
    again = run(["ctl", "reload"], runtime)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout


@pytest.mark.parametrize("text, why", [
    ('id = "rltree"\n[[children]]\nid = "x"\ncommand = ["true"]\nrestart = "sometimes"\n',
     "tree.toml:5: children[0]: child 'x': field 'restart'"),
    ('id = "other"\n', "keeps the root's id"),
    ("id = [", "tree.toml"),
])
def test_a_reload_that_cannot_apply_changes_nothing_and_says_why(
    tree: tuple[Cli, Path], runtime: Path, text: str, why: str
) -> None:
    cli, path = tree
    before = children(runtime)
    path.write_text(text)
    result = run(["ctl", "reload"], runtime)
    assert result.returncode == 1
    assert result.stderr.startswith("otp-py: error: reload refused, nothing changed:")
    assert why in result.stderr, result.stderr
    cli.proc.send_signal(signal.SIGHUP)
    cli.wait_for(r"^otp-py: SIGHUP: reload refused, nothing changed:$")
    assert {k: n["pid"] for k, n in children(runtime).items()} == \
        {k: n["pid"] for k, n in before.items()}
    assert cli.proc.poll() is None


def test_a_tree_declared_in_python_is_not_reloaded_and_runs_on(runtime: Path) -> None:
    with Cli(["run", "tests.cli.targets:TREE", "--view", "events"], runtime) as cli:
        cli.wait_for(r"control socket ")
        cli.proc.send_signal(signal.SIGHUP)
        line = cli.wait_for(r"SIGHUP: ")
        assert line == "otp-py: SIGHUP: reload refused, nothing changed:"
        cli.wait_for(r"cannot reload a tree declared in Python \(tests\.cli\.targets:TREE\)")
        result = run(["ctl", "reload"], runtime)
        assert result.returncode == 1
        assert "cannot reload a tree declared in Python" in result.stderr
        assert run(["status"], runtime).returncode == 0  # still running
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.wait() == 0, cli.output


def test_ctl_reload_takes_no_path(runtime: Path) -> None:
    result = run(["ctl", "reload", "pool"], runtime)
    assert result.returncode == 2 and "takes no PATH" in result.stderr
    result = run(["ctl", "stop", "--dry-run"], runtime)
    assert result.returncode == 2 and "--dry-run is for 'ctl reload'" in result.stderr
