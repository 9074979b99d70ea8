"""A hostile local user against a log directory others can write (a shared path
under /tmp): a symbolic link planted where a child's log file goes must not make the
tree append the child's output to the file it points to; a link the tree's own user
made there is still followed."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

import otp_py as otp
from otp_py.backends import output
from tests.reports import DEFAULT_TIMEOUT

NOBODY = 65534


def run_printer(log_dir: Path) -> None:
    command = otp.ChildSpec.command("cmd", [sys.executable, "-c", "print('pwned')"],
                                    restart="temporary")
    spec = otp.SupervisorSpec(id="root", output=otp.OutputCapture(dir=str(log_dir)),
                              children=[command])
    with otp.start(spec) as sup:
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        while sup.which_children():  # (temporary: gone once it has ended)
            assert time.monotonic() < deadline, "the command did not end"
            time.sleep(0.02)
    output.flush()


@pytest.mark.skipif(os.geteuid() != 0, reason="planting another user's link needs root")
def test_a_link_another_user_planted_in_a_shared_log_dir_is_not_followed(
        tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # as /tmp is
    victim = tmp_path / "victim"
    victim.write_text("mine\n")
    link = shared / "cmd.stdout.log"
    link.symlink_to(victim)
    os.lchown(link, NOBODY, NOBODY)
    run_printer(shared)
    assert victim.read_text() == "mine\n"


def test_a_link_of_the_trees_own_user_is_followed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    target = tmp_path / "elsewhere.log"
    (logs / "cmd.stdout.log").symlink_to(target)
    run_printer(logs)
    assert "pwned" in target.read_text()
