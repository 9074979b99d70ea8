"""The README's example is the file examples/quickstart.py, and it runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_example_is_the_quickstart_file() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", readme, re.S)
    assert block is not None
    assert block.group(1) == (ROOT / "examples" / "quickstart.py").read_text()


def test_readme_commands_are_the_ones_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = "python -m pip install -e '.[test,ray]' && python -m pytest"
    assert test_command in readme
    assert test_command in ci


def test_readme_first_command_installs_and_runs_the_demo() -> None:
    """The main job is the console script's demo (tests/cli/test_demo.py runs it)."""
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^    (\S.*)$", readme, re.M)
    assert commands[0] == "python -m pip install -e '.[cli]' && otp-py demo"


def test_readme_docs_commands_name_extras_that_bring_their_tools() -> None:
    """A fresh machine can run the docs build the README gives: tox comes from the
    extra it installs, and sphinx and the theme from the docs extra."""
    import tomllib

    readme = (ROOT / "README.md").read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert "`python -m pip install -e '.[dev]' && tox -e docs`" in readme
    assert any(d.startswith("tox") for d in extras["dev"])
    assert "`python -m pip install -e '.[docs]' && sphinx-build -W -b html docs" in readme
    assert {d.split(">")[0] for d in extras["docs"]} >= {"sphinx", "furo"}
    conf = (ROOT / "docs" / "conf.py").read_text()
    assert 'html_theme = "furo"' in conf


def test_quickstart_kills_the_child_and_it_comes_back() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "root: worker exited: killed by signal SIGKILL (9); restart" in lines
    assert "root: started worker (restart 1)" in lines
    assert lines[-1] == "root: supervisor exited: shutdown"
