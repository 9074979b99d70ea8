"""What a new user sees on a first run: the tree's reports on stderr when the
application configured no logging (and nothing added once it has), and a clear error
for a script that starts its tree without an ``if __name__ == "__main__":`` guard."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CRASH_LOOP = """
import logging, sys
import otp_py as otp

def boom():
    raise ValueError("boom")

tree = otp.SupervisorSpec(id="t", intensity=otp.SlidingWindow(2, 5),
                          children=[otp.ChildSpec.thread("w", boom)])
if sys.argv[1:] == ["configured"]:
    logging.basicConfig(level=logging.WARNING, format="app: %(message)s")
listen = (lambda report: print(report.describe())) if sys.argv[1:] == ["listens"] else None
try:
    if sys.argv[1:] == ["start"]:
        otp.start(tree).wait()
    else:
        otp.run(tree, on_report=listen)
except otp.IntensityExceededError:
    pass
logger = logging.getLogger("otp_py")
print("after:", [type(h).__name__ for h in logger.handlers], logger.level)
"""

NO_GUARD = """
import time
import otp_py as otp

def work():
    time.sleep(30)

tree = otp.SupervisorSpec(id="ng", intensity=otp.SlidingWindow(1, 5),
                          children=[otp.ChildSpec.process("w", work)])
otp.run(tree)
"""


def _python(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True,
                          text=True, timeout=60, cwd=script.parent, check=False)


def test_run_and_start_show_reports_when_nothing_is_configured(tmp_path: Path) -> None:
    script = tmp_path / "loop.py"
    script.write_text(CRASH_LOOP)
    for mode in ("run", "start"):
        result = _python(script, mode)
        assert result.returncode == 0, result.stderr
        lines = result.stderr.splitlines()
        messages = [line.split(" otp_py: ", 1)[1] for line in lines if " otp_py: " in line]
        assert messages == [
            "t: supervisor starting (one_for_one)",
            "t: started w",
            "t: supervisor started",
            "t: w exited: ValueError: boom; restart",
            "t: started w (restart 1)",
            "t: w exited: ValueError: boom; restart (same traceback as before, 2 times)",
            "t: started w (restart 2)",
            "t: w exited: ValueError: boom; give_up (same traceback as before, 3 times)",
            "t: giving up after w failed: 3 restarts within 5 s (at most 2 allowed)",
            "t: supervisor exited: shutdown",
        ], result.stderr
        assert " ERROR otp_py: t: w exited: ValueError: boom; restart" in lines[3]
        # the first crash carries its traceback, once
        assert lines[4] == "Traceback (most recent call last):"
        assert result.stderr.count("Traceback (most recent call last):") == 1
        assert 'raise ValueError("boom")' in result.stderr
        # and the handler is gone when the tree has ended; the library's NullHandler stays
        assert result.stdout == "after: ['NullHandler'] 0\n"


def test_an_application_that_configured_logging_keeps_its_own(tmp_path: Path) -> None:
    script = tmp_path / "loop.py"
    script.write_text(CRASH_LOOP)
    result = _python(script, "configured")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "app: t: w exited: ValueError: boom; restart",
        "app: t: w exited: ValueError: boom; restart",
        "app: t: w exited: ValueError: boom; give_up",
        "app: t: giving up after w failed: 3 restarts within 5 s (at most 2 allowed)",
    ]


def test_an_application_that_listens_to_reports_shows_them_its_own_way(
    tmp_path: Path,
) -> None:
    script = tmp_path / "loop.py"
    script.write_text(CRASH_LOOP)
    result = _python(script, "listens")
    assert (result.returncode, result.stderr) == (0, "")
    assert "t: w exited: ValueError: boom; restart" in result.stdout.splitlines()


def test_a_script_without_a_main_guard_is_told_the_cause_and_the_fix(tmp_path: Path) -> None:
    script = tmp_path / "noguard.py"
    script.write_text(NO_GUARD)
    result = _python(script)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("otp_py._errors.SupervisorExitError: supervisor 'ng' failed to "
                           "start: ")
    assert f"importing {script} to find the target of a process child failed" in last
    assert 'the script has no if __name__ == "__main__": guard' in last
    assert 'put the code that starts the tree under if __name__ == "__main__":' in last
    assert result.stderr.count("supervisor 'ng' failed to start") <= 3  # no recursion


def test_one_name_for_the_asyncio_backend(tmp_path: Path) -> None:
    """The API, TOML and the command line's KIND column say the same word."""
    import otp_py as otp
    from otp_py.cli.render import kind_of
    from otp_py.cli.snapshot import declared
    from otp_py.cli.toml_spec import parse
    from tests.cli.targets import task_forever

    spec = otp.ChildSpec.asyncio("poll", task_forever)
    assert spec.backend == "asyncio"
    tree, problems = parse('id = "t"\n[[children]]\nid = "poll"\n'
                           'start = "tests.cli.targets:task_forever"\nbackend = "asyncio"\n')
    assert problems == [] and tree is not None
    [child] = tree.children
    assert child.backend == "asyncio"
    assert kind_of(declared(child)) == "asyncio"
