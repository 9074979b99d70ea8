"""Nested supervisors: inline (on the parent's loop) three levels deep, and a subtree in
an OS process of its own."""

from __future__ import annotations

import os
import signal
import threading

import psutil
import pytest
import targets
from kit import info, pid_of, read_pid, tree, wait_gone

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.reports import Recorder

ROOT = ("root",)
A = ("root", "a")
B = ("root", "a", "b")


def three_levels(**b_flags: object) -> otp.SupervisorSpec:
    """root: [p (process), a: [t (thread), b: [worker (process), c (command),
    k (task)]], tail (task)]"""
    b_flags.setdefault("intensity", otp.SlidingWindow(0, 5))  # gives up at once
    b = otp.SupervisorSpec(
        id="b",
        children=[
            otp.ChildSpec.process("worker", targets.ready_then_run, ready=True),
            otp.ChildSpec.command("c", ["sleep", "3600"]),
            otp.ChildSpec.task("k", targets.task_forever),
        ],
        **b_flags,  # type: ignore[arg-type]
    )
    a = otp.SupervisorSpec(
        id="a",
        intensity=otp.SlidingWindow(10, 5),
        children=[otp.ChildSpec.thread("t", targets.thread_until_stopped), b],
    )
    return tree(
        otp.ChildSpec.process("p", targets.ready_then_run, ready=True),
        a,
        otp.ChildSpec.task("tail", targets.task_forever),
    )


def test_a_nested_tree_starts_in_order_and_stops_in_reverse_at_every_level() -> None:
    recorder = Recorder()
    sup = otp.start(three_levels(), on_report=recorder)
    started = [(r.path, r.child_id) for r in recorder.of(rp.ChildStarted)]
    assert started == [
        (ROOT, "p"), (A, "t"), (B, "worker"), (B, "c"), (B, "k"), (A, "b"), (ROOT, "a"),
        (ROOT, "tail"),
    ]
    assert sup.stop(30) == reasons.Shutdown()
    terminated = [(r.path, r.child_id, r.reason) for r in recorder.of(rp.ChildTerminated)]
    shutdown = reasons.Shutdown()
    assert terminated == [
        (ROOT, "tail", shutdown),
        (B, "k", shutdown), (B, "c", shutdown), (B, "worker", shutdown),
        (A, "b", shutdown),
        (A, "t", shutdown),
        (ROOT, "a", shutdown),
        (ROOT, "p", shutdown),
    ]
    exited = [r.path for r in recorder.of(rp.SupervisorExited)]
    assert exited == [B, A, ROOT]


def test_the_innermost_supervisor_escalates_and_its_parent_restarts_it() -> None:
    recorder = Recorder()
    with otp.start(three_levels(), on_report=recorder) as sup:
        worker = pid_of(sup, "a/b/worker")
        command = pid_of(sup, "a/b/c")
        os.kill(worker, signal.SIGKILL)
        gave_up = recorder.wait_kind(rp.IntensityExceeded, "worker")[0]
        assert gave_up.path == B
        assert [(cid, rec.reason) for cid, rec in gave_up.history] == [
            ("worker", reasons.Signaled(signal.SIGKILL))
        ]
        escalated = recorder.wait_kind(rp.ChildExited, "b")[0]
        assert escalated.path == A
        assert escalated.is_supervisor
        assert escalated.reason == reasons.Shutdown()
        assert escalated.outcome == "restart"  # b is permanent
        again = recorder.wait_kind(rp.ChildStarted, "b", count=2)[1]
        assert again.path == A and again.restarts == 1
        # b stopped its other children before it exited; all of them are new
        assert [(r.path, r.child_id) for r in recorder.of(rp.ChildTerminated)] == [
            (B, "k"), (B, "c")
        ]
        wait_gone([worker, command], timeout=5)
        assert pid_of(sup, "a/b/worker") != worker
        assert [c.state for c in sup.which_children("a/b")] == ["running"] * 3
        # the levels above were not touched
        assert recorder.of(rp.ChildExited, "t") == []
        assert len(recorder.of(rp.ChildStarted, "p")) == 1
        assert len(recorder.of(rp.ChildStarted, "a")) == 1


def test_child_paths_and_at_address_nested_supervisors() -> None:
    with otp.start(three_levels()) as sup:
        b = sup.at("a/b")
        assert [c.id for c in b.which_children()] == ["worker", "c", "k"]
        assert [c.id for c in sup.which_children("a/b")] == ["worker", "c", "k"]
        assert [c.id for c in sup.at("a").which_children()] == ["t", "b"]
        assert info(sup.which_children("a"), "b").is_supervisor
        assert sup.count_children("a") == otp.ChildCounts(specs=2, active=2, supervisors=1,
                                                          workers=1)
        assert b.count_children() == otp.ChildCounts(specs=3, active=3, supervisors=0, workers=3)
        assert sup.get_childspec("a/b/worker").id == "worker"
        assert sup.at("a").get_childspec("b").is_supervisor

        # terminate and restart through a path from the root ...
        old = pid_of(sup, "a/b/worker")
        sup.terminate_child("a/b/worker")
        assert info(b.which_children(), "worker").state == "stopped"
        wait_gone([old], timeout=5)
        assert sup.restart_child("a/b/worker") == "worker"
        assert pid_of(sup, "a/b/worker") != old

        # ... and through handles on the levels below
        sup.at("a").terminate_child("b/c")
        assert info(b.which_children(), "c").state == "stopped"
        assert b.restart_child("c") == "c"
        assert info(b.which_children(), "c").state == "running"

        b.terminate_child("k")
        sup.delete_child("a/b/k")
        assert [c.id for c in b.which_children()] == ["worker", "c"]

        # a whole nested supervisor is a child like any other
        sup.terminate_child("a/b")
        assert info(sup.which_children("a"), "b").state == "stopped"
        with pytest.raises(otp.SupervisorNotRunningError):
            b.which_children()
        sup.restart_child("a/b")
        # as in OTP, a restarted supervisor starts from its spec: k is back
        assert [c.id for c in b.which_children()] == ["worker", "c", "k"]

        with pytest.raises(otp.ChildNotFoundError):
            sup.terminate_child("a/b/nope")
        with pytest.raises(otp.ChildRunningError):
            sup.restart_child("a/b/worker")
        with pytest.raises(otp.SupervisorNotRunningError):
            sup.at("a/nope").which_children()


# ------------------------------------------------------------- a subtree in a process


def _process_subtree(pid_file: str) -> otp.SupervisorSpec:
    sub = otp.SupervisorSpec(
        id="sub",
        backend="process",
        intensity=otp.SlidingWindow(0, 5),
        shutdown=10.0,
        children=[
            otp.ChildSpec.process("worker", targets.write_pid_ready, args=(pid_file,),
                                  ready=True),
            otp.ChildSpec.thread("t", targets.thread_until_stopped),
            otp.ChildSpec.task("k", targets.task_forever),
        ],
    )
    return tree(otp.ChildSpec.thread("before", targets.thread_until_stopped), sub)


def test_a_process_subtree_runs_its_children_and_escalates_as_a_child_exit(
    tmp_path: object,
) -> None:
    recorder = Recorder()
    pid_file = os.path.join(str(tmp_path), "worker.pid")
    sup = otp.start(_process_subtree(pid_file), on_report=recorder)
    try:
        started = recorder.wait_kind(rp.ChildStarted, "sub")[0]
        assert started.is_supervisor
        sub_pid = pid_of(sup, "sub")
        worker = read_pid(pid_file)
        # the worker runs under the subtree's process, not ours
        assert worker in {p.pid for p in psutil.Process(sub_pid).children(recursive=True)}
        assert worker not in {p.pid for p in psutil.Process().children()}

        os.remove(pid_file)
        os.kill(worker, signal.SIGKILL)  # the subtree gives up on its first failure
        exited = recorder.wait_kind(rp.ChildExited, "sub")[0]
        assert exited.path == ROOT
        assert exited.reason == reasons.Shutdown()  # a supervisor that gave up
        assert exited.outcome == "restart"
        # The subtree's own reports reached our listener, placed in our tree, and
        # before the subtree's exit: what the subtree decided, and why.
        inner = recorder.of(rp.ChildExited, "worker")[0]
        assert inner.path == (*ROOT, "sub")
        assert inner.outcome == "give_up"
        assert inner.reason == reasons.Signaled(signal.SIGKILL)
        gave_up = recorder.of(rp.IntensityExceeded)[0]
        assert gave_up.path == (*ROOT, "sub")
        assert recorder.reports.index(gave_up) < recorder.reports.index(exited)
        recorder.wait_kind(rp.ChildStarted, "sub", count=2)
        wait_gone([sub_pid, worker], timeout=5)
        assert pid_of(sup, "sub") != sub_pid
        assert read_pid(pid_file) != worker
        assert recorder.of(rp.ChildExited, "before") == []
    finally:
        final = sup.stop(30)
    assert final == reasons.Shutdown()
    ours = [r for r in recorder.of(rp.ChildTerminated) if r.path == ROOT]
    assert [r.child_id for r in ours] == ["sub", "before"]
    assert recorder.of(rp.ChildTerminated, "sub")[0].reason == reasons.Shutdown()
    # The subtree stopped its children, in reverse order, before it ended.
    inner = [r for r in recorder.of(rp.ChildTerminated) if r.path == (*ROOT, "sub")]
    assert [r.child_id for r in inner][-3:] == ["k", "t", "worker"]
    assert recorder.reports.index(inner[-1]) < recorder.reports.index(ours[0])
    # Every started child of the subtree was announced before the subtree itself.
    first_sub = recorder.of(rp.ChildStarted, "sub")[0]
    inner_started = [r for r in recorder.of(rp.ChildStarted) if r.path == (*ROOT, "sub")]
    assert [r.child_id for r in inner_started][:3] == ["worker", "t", "k"]
    assert recorder.reports.index(inner_started[2]) < recorder.reports.index(first_sub)


def test_a_process_subtree_that_fails_to_start_fails_its_parents_start() -> None:
    sub = otp.SupervisorSpec(
        id="sub",
        backend="process",
        children=[otp.ChildSpec.process("w", targets.fail_before_ready, ready=True)],
    )
    recorder = Recorder()
    with pytest.raises(otp.SupervisorExitError) as caught:
        otp.start(tree(sub), on_report=recorder)
    failed = recorder.of(rp.ChildStartFailed, "sub")
    assert len(failed) == 1
    assert caught.value.reason == reasons.Shutdown(
        reasons.FailedToStartChild("sub", failed[0].reason)
    )
    assert "cannot start" in str(failed[0].reason)
    # What failed inside the subtree reached us too, with its reason.
    inner = [r for r in recorder.of(rp.ChildStartFailed, "w") if r.path == (*ROOT, "sub")]
    assert len(inner) == 1
    assert "cannot start" in str(inner[0].reason)


def test_reports_cross_two_process_boundaries_with_their_tracebacks(
    tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    marker = os.path.join(str(tmp_path), "crashed")
    inner = otp.SupervisorSpec(id="inner", backend="process", children=[
        otp.ChildSpec.task("k", targets.task_once, args=(marker, "raise")),
    ])
    outer = otp.SupervisorSpec(id="outer", backend="process", children=[inner])
    recorder = Recorder()
    caplog.set_level("INFO", logger="otp_py")
    sup = otp.start(tree(outer), on_report=recorder)
    try:
        crashed = recorder.wait_kind(rp.ChildExited, "k")[0]
        assert crashed.path == (*ROOT, "outer", "inner")
        assert crashed.outcome == "restart"
        assert isinstance(crashed.reason, reasons.Crashed)
        assert crashed.reason.error_type == "ValueError"
        assert "_act" in crashed.reason.traceback  # formatted where it was raised
        restarted = recorder.wait_kind(rp.ChildStarted, "k", count=2)[1]
        assert restarted.path == (*ROOT, "outer", "inner")
        assert restarted.restarts == 1
    finally:
        assert sup.stop(30) == reasons.Shutdown()
    # logged once, by the process the application runs in, under its place in the tree
    lines = [r.getMessage() for r in caplog.records if r.name == "otp_py"]
    assert lines.count("root/outer/inner: k exited: ValueError: boom; restart") == 1


# ------------------------------------------- the handle reaches into a subtree's process


def _remote_tree(marker: str) -> otp.SupervisorSpec:
    """root: [sub (process): [w (process), t (thread), deep (process): [k (task)]]]"""
    deep = otp.SupervisorSpec(id="deep", backend="process", children=[
        otp.ChildSpec.task("k", targets.task_forever),
    ])
    sub = otp.SupervisorSpec(id="sub", backend="process", children=[
        otp.ChildSpec.process("w", targets.proc_once, args=(marker, "return"),
                              restart=otp.Restart.TRANSIENT),
        otp.ChildSpec.thread("t", targets.thread_until_stopped),
        deep,
    ])
    return tree(sub)


def test_the_handle_reaches_every_supervisor_inside_a_subtrees_process(
    tmp_path: object,
) -> None:
    marker = os.path.join(str(tmp_path), "marker")
    recorder = Recorder()
    sup = otp.start(_remote_tree(marker), on_report=recorder)
    try:
        sub = sup.at("sub")
        recorder.wait_kind(rp.ChildExited, "w")  # returned at once the first time
        rows = sub.which_children()
        assert [(r.id, r.state, r.is_supervisor) for r in rows] == [
            ("w", "stopped", False), ("t", "running", False), ("deep", "running", True)]
        deep_pid = rows[2].pid
        assert deep_pid in {p.pid for p in
                            psutil.Process(pid_of(sup, "sub")).children(recursive=True)}
        assert sup.count_children("sub/deep") == otp.ChildCounts(1, 1, 0, 1)
        assert [r.id for r in sup.which_children("sub/deep")] == ["k"]

        # OTP's calls, answered by the subtree's own supervisor
        assert sup.restart_child("sub/w") is not None  # the once-target now runs
        recorder.wait_kind(rp.ChildStarted, "w", count=2)
        w = info(sub.which_children(), "w")
        assert w.state == "running" and w.pid is not None
        sub.terminate_child("t")
        assert info(sub.which_children(), "t").state == "stopped"
        terminated = recorder.of(rp.ChildTerminated, "t")[0]
        assert terminated.path == (*ROOT, "sub")  # its report came before the answer
        sub.delete_child("t")
        assert [r.id for r in sub.which_children()] == ["w", "deep"]
        assert sub.get_childspec("deep").id == "deep"

        # errors cross the boundary as themselves, naming paths in our tree
        with pytest.raises(otp.ChildNotFoundError, match="'root/sub'"):
            sub.terminate_child("nope")
        with pytest.raises(otp.ChildRunningError):
            sup.restart_child("sub/w")
        with pytest.raises(otp.SupervisorNotRunningError, match="'root/sub/nope'"):
            sup.which_children("sub/nope")
        with pytest.raises(otp.ChildNotFoundError, match="'root/sub/deep'"):
            sup.terminate_child("sub/deep/nope")
        with pytest.raises(TypeError, match="cannot send this call to the subtree"):
            sub.start_child(otp.ChildSpec.task("x", targets.task_once,
                                               args=(threading.Lock(), "run")))
        assert [r.id for r in sub.which_children()] == ["w", "deep"]  # unharmed

        # a terminated subtree is no longer reachable; a restarted one is again
        sup.terminate_child("sub")
        with pytest.raises(otp.SupervisorNotRunningError):
            sub.which_children()
        sup.restart_child("sub")
        assert [r.id for r in sub.which_children()] == ["w", "t", "deep"]
    finally:
        assert sup.stop(30) == reasons.Shutdown()


def test_what_cannot_be_unpickled_on_either_side_harms_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sub = otp.SupervisorSpec(id="sub", backend="process", children=[
        otp.ChildSpec.task("odd", targets.task_shutdown_unreadable,
                           restart=otp.Restart.TRANSIENT),
        otp.ChildSpec.task("k", targets.task_forever),
    ])
    recorder = Recorder()
    sup = otp.start(tree(sub), on_report=recorder)
    try:
        # The report of odd's exit cannot be rebuilt here: it is skipped and logged,
        # and the subtree's later reports and answers still arrive.
        sup.terminate_child("sub/k")
        assert recorder.wait_kind(rp.ChildTerminated, "k")[0].path == (*ROOT, "sub")
        assert recorder.of(rp.ChildExited, "odd") == []
        assert any("could not be handled" in r.getMessage() for r in caplog.records)
        # A call the subtree cannot read is answered with the error, not lost.
        with pytest.raises(TypeError):
            sup.start_child(otp.ChildSpec.task("x", targets.task_once,
                                               args=(targets.TwoArgs("a", 1), "run")),
                            supervisor="sub")
        assert [(r.id, r.state) for r in sup.which_children("sub")] == [
            ("odd", "stopped"), ("k", "stopped")]
    finally:
        assert sup.stop(30) == reasons.Shutdown()
