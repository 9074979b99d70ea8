"""Nothing a process or command child starts escapes its stop (issue 12, item 5).

Where a writable cgroup v2 hierarchy exists (this machine and CI run as root with one),
each process or command child runs in a cgroup of its own, so a descendant that
leaves the process group (``setsid``, a daemonising double fork) is still stopped
with it, and the cgroup is removed once its child has ended. Where none exists, the
descendants found under the child at a stop are taken along, and only a daemon
orphaned before the stop escapes, as the design page says.

The SIGKILLed-supervisor cases are in tests/faults/test_supervisor_death.py, the
orderly stop of each backend in the fault matrix (tests/faults/test_matrix.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator

import attrs
import pytest

RUNTIME_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "runtime")
if RUNTIME_TESTS not in sys.path:
    sys.path.insert(0, RUNTIME_TESTS)

from kit import PROCESS, gone, pid_of, tree, wait_gone  # noqa: E402

import otp_py as otp  # noqa: E402
from otp_py import reasons  # noqa: E402
from otp_py.backends.containment import cgroup2_mount, own_cgroup  # noqa: E402
from otp_py.runtime.containment import Containment  # noqa: E402
from otp_py.runtime.guardian import Guardian  # noqa: E402
from tests.faults import targets  # noqa: E402
from tests.faults.escape_tree import NAMES  # noqa: E402
from tests.faults.helpers import (  # noqa: E402
    Baseline,
    read_line,
    read_pids,
    script,
    wait_until,
)
from tests.faults.test_supervisor_death import SURVIVAL  # noqa: E402
from tests.reports import DEFAULT_TIMEOUT  # noqa: E402


def _cgroup_dir(pid: int) -> str:
    mount, path = cgroup2_mount(), own_cgroup(pid)
    assert mount is not None and path is not None
    return os.path.join(mount, path.lstrip("/"))


@pytest.fixture
def cgroup_mode() -> None:
    if Guardian.shared().containment.mode != "cgroup":
        pytest.skip("no writable cgroup v2 hierarchy here (root or a delegated subtree)")


@pytest.fixture
def process_group_mode() -> Iterator[None]:
    """Containment as on a machine where no cgroup can be written."""
    guardian = Guardian.shared()
    saved = guardian.containment
    without = Containment(guardian)
    without._decided = True  # decided: no cgroup
    guardian.containment = without
    try:
        yield
    finally:
        guardian.containment = saved


def _escaping(child_id: str, how: str, pid_file: str) -> otp.ChildSpec:
    if how.startswith("command"):
        command = (targets.command_setsid_grandchild if how.endswith("setsid")
                   else targets.command_daemonising)
        return otp.ChildSpec.command(child_id, command(pid_file))
    process = targets.setsid_grandchild if how.endswith("setsid") else targets.daemonising
    return PROCESS.spec(child_id, process, args=(pid_file,), ready=True)


HOWS = ["command-setsid", "command-daemonising", "process-setsid", "process-daemonising"]


def _wait_pids(path: str) -> list[int]:
    wait_until(lambda: os.path.exists(path), f"the pids in {path}")
    return read_pids(path)


@pytest.mark.usefixtures("cgroup_mode")
def test_each_child_has_a_cgroup_of_its_own_removed_when_it_ends(tmp_path: object) -> None:
    """Every process or command child, and all it starts, sits in a cgroup of its
    own under one directory per supervising process; a child's cgroup is removed
    once it has ended, the parent directory stays while the process lives."""
    leaks = Baseline()
    files = {how: os.path.join(str(tmp_path), how) for how in HOWS}
    with otp.start(tree(*[_escaping(how, how, files[how]) for how in HOWS])) as sup:
        pids = {how: _wait_pids(files[how]) for how in HOWS}
        dirs = {how: _cgroup_dir(pids[how][0]) for how in HOWS}
        assert len(set(dirs.values())) == len(HOWS)
        parents = {os.path.dirname(d) for d in dirs.values()}
        assert parents == {os.path.join(_cgroup_dir(os.getpid()), f"otp-py-{os.getpid()}")}
        for how in HOWS:
            # the descendant left the child's session, not its cgroup
            assert os.getsid(pids[how][1]) != os.getsid(pids[how][0])
            assert _cgroup_dir(pids[how][1]) == dirs[how]
        sup.terminate_child("command-daemonising")
        wait_gone(pids["command-daemonising"], timeout=1.0)
        wait_until(lambda: not os.path.exists(dirs["command-daemonising"]),
                   "the ended child's cgroup to be removed")
        assert all(os.path.isdir(dirs[how]) for how in HOWS if how != "command-daemonising")
    assert sup.wait(10) == reasons.Shutdown()
    wait_gone([pid for how in HOWS for pid in pids[how]], timeout=1.0)
    wait_until(lambda: not any(os.path.exists(d) for d in dirs.values()),
               "every child's cgroup to be removed")
    leaks.assert_clean()


@pytest.mark.usefixtures("cgroup_mode")
def test_a_brutal_kill_reaches_what_left_the_group(tmp_path: object) -> None:
    """``shutdown=BRUTAL_KILL``: the kill is a ``cgroup.kill``, which reaches the
    daemon and the ``setsid`` grandchild along with the child."""
    leaks = Baseline()
    files = {how: os.path.join(str(tmp_path), how) for how in HOWS}
    children = [attrs.evolve(_escaping(how, how, files[how]), shutdown=otp.BRUTAL_KILL)
                for how in HOWS]
    with otp.start(tree(*children)) as sup:
        pids = {how: _wait_pids(files[how]) for how in HOWS}
        for how in HOWS:
            sup.terminate_child(how)
            wait_gone(pids[how], timeout=1.0)
    assert sup.wait(10) == reasons.Shutdown()
    leaks.assert_clean()


@pytest.mark.usefixtures("cgroup_mode")
def test_a_subtree_in_a_process_of_its_own_is_contained_too(tmp_path: object) -> None:
    """A subtree running in a process of its own makes its children's cgroups under
    its own cgroup: stopping the tree reaches its children's daemons, and every
    cgroup, nested ones included, is removed."""
    leaks = Baseline()
    pid_file = os.path.join(str(tmp_path), "inner")
    inner = otp.SupervisorSpec(id="inner", backend="process", children=[
        otp.ChildSpec.command("daemon", targets.command_daemonising(pid_file))])
    with otp.start(tree(inner)) as sup:
        child, daemon = _wait_pids(pid_file)
        subtree_dir = _cgroup_dir(pid_of(sup, "inner"))
        assert _cgroup_dir(daemon).startswith(subtree_dir + "/")
    assert sup.wait(10) == reasons.Shutdown()
    wait_gone([child, daemon], timeout=1.0)
    wait_until(lambda: not os.path.exists(subtree_dir), "the subtree's cgroups removed")
    leaks.assert_clean()


@pytest.mark.usefixtures("process_group_mode")
def test_without_a_cgroup_a_setsid_grandchild_is_still_stopped_with_its_child(
    tmp_path: object,
) -> None:
    """No writable cgroup: a descendant that left the group while its parent lives
    is found under the child at the stop and killed once the child has ended."""
    leaks = Baseline()
    hows = ["command-setsid", "process-setsid"]
    files = {how: os.path.join(str(tmp_path), how) for how in hows}
    with otp.start(tree(*[_escaping(how, how, files[how]) for how in hows])) as sup:
        pids = {how: _wait_pids(files[how]) for how in hows}
        assert own_cgroup(pids["command-setsid"][0]) == own_cgroup(os.getpid())
        sup.terminate_child("command-setsid")
        wait_gone(pids["command-setsid"], timeout=1.0)
        assert not gone(pids["process-setsid"][1])
    assert sup.wait(10) == reasons.Shutdown()
    wait_gone([pid for how in hows for pid in pids[how]], timeout=1.0)
    leaks.assert_clean()


@pytest.mark.usefixtures("process_group_mode")
def test_without_a_cgroup_a_daemon_orphaned_before_the_stop_escapes(
    tmp_path: object,
) -> None:
    """What the design page says can escape where no cgroup is writable: a daemon
    whose parent died before the stop is linked to the child by nothing (neither
    group, session nor parentage). Pinned, so that the page stays true."""
    leaks = Baseline()
    pid_file = os.path.join(str(tmp_path), "daemon")
    daemon = None
    try:
        with otp.start(tree(_escaping("daemon", "command-daemonising", pid_file))) as sup:
            child, daemon = _wait_pids(pid_file)
        assert sup.wait(10) == reasons.Shutdown()
        wait_gone([child], timeout=1.0)
        assert not gone(daemon)
    finally:
        if daemon is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(daemon, signal.SIGKILL)
    leaks.assert_clean()


ESCAPE_TREE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "faults", "escape_tree.py")


def test_without_a_cgroup_a_sigkilled_supervisor_leaves_no_descendant_of_a_process_child(
    tmp_path: object,
) -> None:
    """No writable cgroup, and the supervisor is SIGKILLed: the fork server, a child
    subreaper, has adopted the daemon and (once it kills the child) the ``setsid``
    grandchild of each process child, and kills them before it exits. What a command
    child started outside its group escapes there, as the design page says."""
    with script(tmp_path, ESCAPE_TREE, str(tmp_path),
                env={"OTP_PY_CGROUPS": "0"}) as (proc, _token):
        ready = json.loads(read_line(proc, DEFAULT_TIMEOUT, tmp_path))
        # cmd-setsid, cmd-daemonising, proc-setsid, proc-daemonising: (child, descendant)
        pids = dict(zip(NAMES, zip(ready["pids"][::2], ready["pids"][1::2], strict=True),
                        strict=True))
        assert own_cgroup(pids["proc-daemonising"][1]) == own_cgroup(proc.pid)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        wait_gone([*pids["proc-setsid"], *pids["proc-daemonising"]], timeout=SURVIVAL)
        assert not gone(pids["cmd-daemonising"][1])
