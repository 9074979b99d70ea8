"""Attack: an exec probe's command starts a daemon that leaves its process group
(``setsid``) and keeps the probe's output pipe open, then exits 0.

The probe does not hang (its end is its main process's end, and the pipe is let
go). But before the fix each attempt left its daemon running, past the child's
stop and the tree's end: exec probes ran outside the cgroups that contain command
children. Now each attempt runs in a cgroup of its own, killed at its end."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

import otp_py as otp
from otp_py.runtime.guardian import Guardian


def _cgroup_mode() -> bool:
    guardian = Guardian.shared()
    guardian.ensure_started()
    cgroup = guardian.new_cgroup()
    if cgroup is None:
        return False
    guardian.release_cgroup(cgroup, True)
    return True


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not _cgroup_mode(), reason="no writable cgroup v2 hierarchy: a "
                    "daemon that leaves its group cannot be contained (process-group mode)")
def test_an_exec_probes_escaped_daemons_do_not_outlive_it(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = (f"setsid sh -c 'echo $$ >> {pids}; exec sleep 30' & "
              "sleep 0.1; exit 0")

    async def forever() -> None:
        await asyncio.sleep(3600)

    child = otp.ChildSpec(id="w", start=forever, backend="asyncio", liveness=otp.probes.Exec(
        ["sh", "-c", script], interval=0.1, timeout=5, failure_threshold=100))
    daemons: list[int] = []
    try:
        with otp.start(otp.SupervisorSpec(id="root", children=[child])) as sup:
            deadline = time.monotonic() + 20
            while True:
                [info] = sup.which_children()
                if info.details["probes"]["liveness"]["successes"] >= 3:
                    break
                assert time.monotonic() < deadline, "the probe never passed 3 times"
                time.sleep(0.02)
            daemons = [int(p) for p in pids.read_text().split()]
            assert daemons
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in daemons) and time.monotonic() < deadline:
            time.sleep(0.02)
        left = [p for p in daemons if _alive(p)]
        assert not left, f"{len(left)} of {len(daemons)} probe daemons outlived the tree"
    finally:
        for pid in [int(p) for p in pids.read_text().split()] if pids.exists() else []:
            if _alive(pid):
                os.kill(pid, 9)
