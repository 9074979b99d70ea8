"""Stopping a tree: reverse start order, within the children's shutdown timeouts, even
when children ignore their graceful stop."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import targets
from kit import PY, TASK, THREAD, fifo, pid_of, tree, wait_gone

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.reports import Recorder

SHUTDOWN = 0.4


@pytest.fixture
def release_threads() -> Iterator[None]:
    targets.RELEASE.clear()
    yield
    targets.RELEASE.set()


def _stubborn_command(child_id: str, fifo_path: str) -> otp.ChildSpec:
    """A shell that ignores SIGTERM (as does the sleep it runs), then says so."""
    script = 'trap "" TERM; echo up > "$1"; while :; do sleep 1; done'
    return otp.ChildSpec.command(child_id, ["sh", "-c", script, "sh", fifo_path],
                                 shutdown=SHUTDOWN)


def test_stop_waits_each_stubborn_child_out_in_reverse_order(
    tmp_path: object, release_threads: None
) -> None:
    recorder = Recorder()
    with fifo(tmp_path) as up:
        spec = tree(
            otp.ChildSpec.process("p_ok", targets.ready_then_run, ready=True),
            otp.ChildSpec.process("p_stubborn", targets.ignore_sigterm, ready=True,
                                  shutdown=SHUTDOWN),
            otp.ChildSpec.thread("t_ok", targets.thread_until_stopped),
            _stubborn_command("c_stubborn", up.path),
            otp.ChildSpec.task("a_ok", targets.task_forever),
            otp.ChildSpec.task("a_stubborn", targets.task_ignore_cancel, ready=True,
                               shutdown=SHUTDOWN),
            otp.ChildSpec.command("c_ok", ["sleep", "3600"]),
            otp.ChildSpec.thread("t_stubborn", targets.thread_ignore_stop, ready=True,
                                 shutdown=SHUTDOWN),
        )
        sup = otp.start(spec, on_report=recorder)
        up.wait_line()
        pids = [pid_of(sup, c) for c in ("p_ok", "p_stubborn", "c_stubborn", "c_ok")]
        began = time.monotonic()
        assert sup.stop(30) == reasons.Shutdown()
        took = time.monotonic() - began
    wait_gone(pids, timeout=2)
    terminated = [(r.child_id, r.reason) for r in recorder.of(rp.ChildTerminated)]
    assert terminated == [
        ("t_stubborn", reasons.Unstoppable(SHUTDOWN)),
        ("c_ok", reasons.Shutdown()),
        ("a_stubborn", reasons.Killed()),
        ("a_ok", reasons.Shutdown()),
        ("c_stubborn", reasons.Killed()),
        ("t_ok", reasons.Shutdown()),
        ("p_stubborn", reasons.Killed()),
        ("p_ok", reasons.Shutdown()),
    ]
    assert [r.child_id for r in recorder.of(rp.ChildUnstoppable)] == ["t_stubborn"]
    # one timeout per stubborn child, one after the other; a generous upper bound
    assert took >= 4 * SHUTDOWN * 0.9
    assert took < 4 * SHUTDOWN + 5.0
    assert recorder.of(rp.SupervisorExited)[-1].reason == reasons.Shutdown()


def test_a_tree_of_well_behaved_children_stops_at_once() -> None:
    recorder = Recorder()
    spec = tree(*(kind.forever(f"{kind}{i}") for i in range(3)
                  for kind in (THREAD, TASK)),
                otp.ChildSpec.process("p", targets.ready_then_run, ready=True),
                otp.ChildSpec.command("c", ["sleep", "3600"]))
    sup = otp.start(spec, on_report=recorder)
    began = time.monotonic()
    assert sup.stop(30) == reasons.Shutdown()
    assert time.monotonic() - began < 3.0  # no child waited out its 5 s timeout
    assert all(r.reason == reasons.Shutdown() for r in recorder.of(rp.ChildTerminated))
    assert len(recorder.of(rp.ChildTerminated)) == 8


def test_a_process_childs_finally_runs_on_a_graceful_stop(tmp_path: object) -> None:
    recorder = Recorder()
    path = f"{tmp_path}/cleaned"
    spec = tree(otp.ChildSpec.process("w", targets.clean_up_on_stop, args=(path,),
                                      ready=True))
    with otp.start(spec, on_report=recorder):
        pass
    assert recorder.of(rp.ChildTerminated, "w")[0].reason == reasons.Shutdown()
    with open(path) as f:
        assert f.read() == "cleaned"


def test_stop_is_idempotent_and_later_calls_say_the_tree_is_gone() -> None:
    sup = otp.start(tree(THREAD.forever("t")))
    assert sup.stop() == reasons.Shutdown()
    assert sup.stop() == reasons.Shutdown()
    assert not sup.running
    with pytest.raises(otp.SupervisorNotRunningError):
        sup.which_children()


def test_a_command_stop_signal_is_the_one_sent(tmp_path: object) -> None:
    """stop_signal: a command that only ends on SIGINT stops gracefully with it."""
    recorder = Recorder()
    with fifo(tmp_path) as up:
        code = (
            "import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            # not open().write(): a KeyboardInterrupt raised while a finalizer closes
            # the file would be swallowed as unraisable
            "with open(sys.argv[1], 'w') as f:\n"
            "    f.write('up\\n')\n"
            "time.sleep(3600)\n"
        )
        spec = tree(otp.ChildSpec.command("c", [PY, "-c", code, up.path],
                                          stop_signal=2, shutdown=10))
        sup = otp.start(spec, on_report=recorder)
        up.wait_line()
        began = time.monotonic()
        sup.stop(30)
    assert time.monotonic() - began < 5.0
    assert recorder.of(rp.ChildTerminated, "c")[0].reason == reasons.Shutdown()
