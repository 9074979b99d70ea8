"""A hostile command child that leaves the process group the tree made it lead (for
the tree's own): the tree must still stop it, in either containment mode."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reports import DEFAULT_TIMEOUT

SCRIPT = Path(__file__).with_name("group_leaver_tree.py")
ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("cgroups", ["0", ""])
def test_a_command_that_left_its_group_is_stopped_gracefully(cgroups: str) -> None:
    env = dict(os.environ, OTP_PY_CGROUPS=cgroups, PYTHONPATH=str(ROOT))
    # a session (and group) of its own: the child joins the tree's group, not the test's
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "30"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=DEFAULT_TIMEOUT + 20)
    except subprocess.TimeoutExpired:
        out = "(the tree did not end)"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group the test made, and the child
        proc.communicate()  # (reaps it, closes its pipe)
    assert proc.returncode == 0, out
    # stopped by its SIGTERM, well before the shutdown timeout of 30 s
    seconds = float(out.split()[-1])
    assert seconds < 20, out
