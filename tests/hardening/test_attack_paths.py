"""Hostile ids against the layout of the log directory: no child's log file (or one
of its rotated backups), and no tree log, may be a directory another child's files
need, whatever the ids (each is a file-name component of its own once encoded)."""

from __future__ import annotations

import os

import pytest

import otp_py as otp

BACKUPS = 3


def files(capture: otp.OutputCapture, path: tuple[str, ...]) -> set[str]:
    """Every file the child at ``path`` may write: each stream's log and its backups."""
    found = set()
    for stream in ("stdout", "stderr"):
        name = capture.log_file(path, stream)
        found.add(name)
        found.update(f"{name}.{number}" for number in range(1, BACKUPS + 1))
    return found


def directories(name: str, top: str) -> set[str]:
    """The directories between ``top`` and the file ``name``."""
    found = set()
    here = os.path.dirname(name)
    while here != top:
        found.add(here)
        here = os.path.dirname(here)
    return found


@pytest.mark.parametrize(("supervisor", "child"), [
    ("tree.log", "tree"),  # a supervisor's directory where the tree's log is
    ("a.stdout.log", "a"),  # where its sibling "a" writes its stdout
    ("a.stderr.log.2", "a"),  # where "a"'s stderr's second backup goes
    ("a.stdout.log.1", "x"),  # (no sibling needed: backups of a child "a" elsewhere)
])
def test_no_file_is_a_directory_another_child_needs(supervisor: str, child: str,
                                                    tmp_path: object) -> None:
    capture = otp.OutputCapture(dir=str(tmp_path)).completed("root")
    assert capture.dir is not None
    written = files(capture, (child,)) | files(capture, ("a",)) | {capture.tree_log}
    below = files(capture, (supervisor, "w"))
    needed = set().union(*(directories(name, capture.dir) for name in below))
    assert not needed & written, f"{sorted(needed & written)} is both a file and a directory"
    assert not below & written
