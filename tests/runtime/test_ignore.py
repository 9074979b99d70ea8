"""A child that raises otp.Ignore before it is up declines its start (OTP's ignore),
on every backend that can signal readiness: the supervisor keeps it with no process
and goes on. After it is up, Ignore is an ordinary abnormal exit that says why."""

from __future__ import annotations

import ignore_targets as it
import pytest
from kit import PROCESS, TASK, THREAD, Kind, info, tree

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.reports import Recorder

_IGNORE = {"process": it.proc_ignore, "thread": it.thread_ignore, "asyncio": it.task_ignore}


@pytest.mark.parametrize("kind", [PROCESS, THREAD, TASK], ids=str)
def test_a_child_that_ignores_before_it_is_ready_is_kept_not_running(kind: Kind) -> None:
    recorder = Recorder()
    spec = tree(kind.spec("opt", _IGNORE[kind.backend], ready=True),
                THREAD.forever("main"))
    with otp.start(spec, on_report=recorder) as sup:
        opt = info(sup.which_children(), "opt")
        assert (opt.state, opt.pid) == ("ignored", None)
        assert info(sup.which_children(), "main").state == "running"
        assert sup.count_children() == otp.ChildCounts(specs=2, active=1, supervisors=0,
                                                       workers=2)
        ignored = [r for r in recorder.reports if isinstance(r, rp.ChildIgnored)]
        assert [(r.child_id, r.kept) for r in ignored] == [("opt", True)]
        assert "ignored its start" in ignored[0].describe()
        assert not any(isinstance(r, rp.ChildStartFailed) for r in recorder.reports)
        with pytest.raises(otp.AlreadyPresentError):
            sup.start_child(kind.spec("opt", _IGNORE[kind.backend], ready=True))


def test_start_child_and_restart_child_answer_none_for_a_start_that_ignores() -> None:
    with otp.start(tree(THREAD.forever("main"))) as sup:
        assert sup.start_child(THREAD.spec("opt", it.thread_ignore, ready=True)) is None
        assert info(sup.which_children(), "opt").state == "ignored"
        assert sup.restart_child("opt") is None
        temporary = THREAD.spec("tmp", it.thread_ignore, ready=True, restart="temporary")
        assert sup.start_child(temporary) is None
        assert [c.id for c in sup.which_children()] == ["main", "opt"]


def test_a_dynamic_child_that_ignores_is_not_kept() -> None:
    template = TASK.spec("w", it.task_ignore, ready=True)
    with otp.start(tree(template, strategy="simple_one_for_one")) as sup:
        assert sup.start_child(args=()) is None
        assert sup.which_children() == []
        assert sup.count_children().workers == 0


def test_ignore_after_the_child_is_up_is_an_abnormal_exit(request: pytest.FixtureRequest) -> None:
    recorder = Recorder()
    spec = tree(THREAD.spec("late", it.thread_ignore_after_up, args=(request.node.name,)))
    with otp.start(spec, on_report=recorder) as sup:
        recorder.wait_for(lambda r: isinstance(r, rp.ChildStarted) and r.restarts == 1)
        assert info(sup.which_children(), "late").state == "running"
    exits = [r for r in recorder.reports if isinstance(r, rp.ChildExited)]
    reason = exits[0].reason
    assert isinstance(reason, reasons.Ignored) and reason.is_abnormal
    assert exits[0].outcome == "restart"
    assert "after the child was up" in str(reason)
