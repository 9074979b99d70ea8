"""Nothing is orphaned: when the process running a tree is SIGKILLed, every process
the tree started (children, their pools and subprocesses, a subtree's own children)
dies with it; and a child that ends by itself leaves no zombie and no grandchild."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import uuid

import psutil
import pytest
import targets
from kit import COMMAND, PROCESS, Kind, gone, tree, wait_gone

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.reports import DEFAULT_TIMEOUT, Recorder

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "orphan_tree.py")
MARK = "OTP_PY_ORPHAN_TEST"


def _marked(token: str) -> list[int]:
    """Every live process on the machine whose environment carries ``token``: the
    tree's process and everything descended from it, wherever it was reparented."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(MARK) == token and not gone(p.pid):
                found.append(p.pid)
        except psutil.Error:
            pass
    return found


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    if not readable:
        raise AssertionError(f"the tree script said nothing within {timeout} s")
    return proc.stdout.readline()


def test_killing_the_supervising_process_leaves_no_descendant(tmp_path: object) -> None:
    token = uuid.uuid4().hex
    fifo = os.path.join(str(tmp_path), "fifo")
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, fifo],
        stdout=subprocess.PIPE,
        env={**os.environ, MARK: token},
    )
    try:
        line = _read_line(proc, DEFAULT_TIMEOUT)
        assert line, f"the tree script ended with status {proc.wait()}"
        descendants = json.loads(line)
        alive = _marked(token)
        assert set(descendants) <= set(alive)
        # pool: child + 2 workers; sleepers: child + 2; plain; forked: child + 1;
        # cmd: sh + sleep; sub: its process + inner + 1; plus the helpers
        assert len(descendants) >= 15, descendants
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        wait_gone(alive, timeout=2.0)
        assert _marked(token) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("kind", [PROCESS, COMMAND], ids=str)
def test_no_zombie_or_grandchild_is_left_after_a_child_ends_by_itself(
    kind: Kind, tmp_path: object
) -> None:
    recorder = Recorder()
    pids = os.path.join(str(tmp_path), "pids")  # "<child pid> <grandchild pid>"
    if kind is COMMAND:
        script = 'sleep 3600 & echo "$$ $!" > "$1.tmp"; mv "$1.tmp" "$1"'
        child = COMMAND.spec("w", ["sh", "-c", script, "sh", pids], restart="temporary")
    else:
        child = PROCESS.spec("w", targets.spawn_sleeper_and_return, args=(pids,),
                             restart="temporary")
    with otp.start(tree(child), on_report=recorder):
        exited = recorder.wait_kind(rp.ChildExited, "w")[0]
        assert exited.reason == reasons.Normal()
        with open(pids) as f:
            pid, grandchild = map(int, f.read().split())
        assert not psutil.pid_exists(pid)  # reaped before it was reported
        zombies = [p.pid for p in psutil.Process().children(recursive=True)
                   if p.status() == psutil.STATUS_ZOMBIE]
        assert zombies == []
        wait_gone([grandchild], timeout=5)
