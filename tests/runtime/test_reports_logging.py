"""Every decision becomes a typed report: delivered to the listeners, and logged on the
``otp_py`` logger with the report attached."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator

import pytest
import targets
from kit import PROCESS, THREAD, tree

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.reports import Recorder


@pytest.fixture
def release_threads() -> Iterator[None]:
    targets.RELEASE.clear()
    yield
    targets.RELEASE.set()


def _logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "otp_py" and hasattr(r, "otp_report")]


def test_a_trees_life_is_reported_and_logged_in_order(
    caplog: pytest.LogCaptureFixture, tmp_path: object
) -> None:
    caplog.set_level(logging.DEBUG, logger="otp_py")
    recorder = Recorder()
    spec = tree(
        PROCESS.once("w", os.path.join(str(tmp_path), "m"), "raise"),
        THREAD.forever("t"),
    )
    with otp.start(spec, on_report=recorder):
        recorder.wait_kind(rp.ChildStarted, "w", count=2)
    kinds = [(type(r).__name__, getattr(r, "child_id", None)) for r in recorder.reports]
    assert kinds == [
        ("SupervisorStarting", None),
        ("ChildStarted", "w"),
        ("ChildStarted", "t"),
        ("SupervisorStarted", None),
        ("ChildExited", "w"),
        ("ChildStarted", "w"),
        ("ChildTerminated", "t"),
        ("ChildTerminated", "w"),
        ("SupervisorExited", None),
    ]
    assert all(r.path == ("root",) for r in recorder.reports)
    times = [r.time for r in recorder.reports]
    assert times == sorted(times)

    # the same reports, the same objects, in the same order, on the logger
    logged = _logged(caplog)
    assert [r.otp_report for r in logged] == recorder.reports  # type: ignore[attr-defined]
    assert all(a.otp_report is b for a, b in zip(logged, recorder.reports, strict=True))  # type: ignore[attr-defined]
    assert [r.getMessage() for r in logged] == [r.describe() for r in recorder.reports]
    levels = {type(r.otp_report).__name__: r.levelno for r in logged}  # type: ignore[attr-defined]
    assert levels["ChildExited"] == logging.ERROR  # a crash
    assert levels["ChildStarted"] == logging.INFO
    assert levels["SupervisorExited"] == logging.INFO  # a requested stop
    crash = next(r for r in logged if isinstance(r.otp_report, rp.ChildExited))  # type: ignore[attr-defined]
    assert "w exited: ValueError: boom; restart" in crash.getMessage()


def test_giving_up_is_reported_with_its_history(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="otp_py")
    recorder = Recorder()
    spec = tree(otp.ChildSpec.thread("crasher", targets.thread_raise),
                intensity=otp.SlidingWindow(1, 30))
    sup = otp.start(spec, on_report=recorder)
    with pytest.raises(otp.IntensityExceededError):
        sup.wait(20)
    gave_up = recorder.of(rp.IntensityExceeded)
    assert len(gave_up) == 1
    assert gave_up[0].child_id == "crasher"
    assert "2 restarts within 30 s" in gave_up[0].why
    assert [child for child, _ in gave_up[0].history] == ["crasher", "crasher"]
    record = next(r for r in _logged(caplog) if isinstance(r.otp_report, rp.IntensityExceeded))  # type: ignore[attr-defined]
    assert record.levelno == logging.ERROR
    assert recorder.of(rp.SupervisorExited)[-1].reason == reasons.Shutdown()


def test_a_backoff_is_reported_as_a_warning(caplog: pytest.LogCaptureFixture,
                                            tmp_path: object) -> None:
    caplog.set_level(logging.INFO, logger="otp_py")
    recorder = Recorder()
    policy = otp.SlidingWindow(5, 30) & otp.ExponentialBackoff(initial=0.1, jitter=0.0)
    spec = tree(THREAD.once("w", os.path.join(str(tmp_path), "m"), "raise"), intensity=policy)
    with otp.start(spec, on_report=recorder):
        recorder.wait_kind(rp.ChildStarted, "w", count=2)
    scheduled = recorder.of(rp.RestartScheduled, "w")
    assert [r.delay for r in scheduled] == [pytest.approx(0.1)]
    restarted = recorder.of(rp.ChildStarted, "w")[1]
    assert restarted.time - scheduled[0].time >= 0.09
    record = next(r for r in _logged(caplog) if isinstance(r.otp_report, rp.RestartScheduled))  # type: ignore[attr-defined]
    assert record.levelno == logging.WARNING


def test_failed_starts_and_unstoppable_threads_are_errors(
    caplog: pytest.LogCaptureFixture, release_threads: None
) -> None:
    caplog.set_level(logging.INFO, logger="otp_py")
    recorder = Recorder()
    spec = tree(THREAD.spec("stubborn", targets.thread_ignore_stop, ready=True,
                            shutdown=otp.BRUTAL_KILL))
    with otp.start(spec, on_report=recorder) as sup:
        with pytest.raises(otp.StartChildError):
            sup.start_child(THREAD.spec("bad", targets.thread_fail_before_ready, ready=True))
        sup.terminate_child("stubborn")
    targets.RELEASE.set()
    levels = {type(r.otp_report).__name__: r.levelno for r in _logged(caplog)}  # type: ignore[attr-defined]
    assert levels["ChildStartFailed"] == logging.ERROR
    assert levels["ChildUnstoppable"] == logging.ERROR
    assert [type(r).__name__ for r in recorder.reports if getattr(r, "child_id", "") in
            ("bad", "stubborn")][-3:] == ["ChildStartFailed", "ChildUnstoppable",
                                          "ChildTerminated"]


def test_nested_reports_carry_their_supervisors_path() -> None:
    recorder = Recorder()
    inner = otp.SupervisorSpec(id="inner", children=[THREAD.forever("t")])
    with otp.start(tree(inner), on_report=recorder):
        pass
    where = [(r.where, type(r).__name__) for r in recorder.reports]
    assert where == [
        ("root", "SupervisorStarting"),
        ("root/inner", "SupervisorStarting"),
        ("root/inner", "ChildStarted"),
        ("root/inner", "SupervisorStarted"),
        ("root", "ChildStarted"),
        ("root", "SupervisorStarted"),
        ("root/inner", "ChildTerminated"),
        ("root/inner", "SupervisorExited"),
        ("root", "ChildTerminated"),
        ("root", "SupervisorExited"),
    ]
    assert recorder.of(rp.ChildStarted, "inner")[0].is_supervisor


def test_a_failing_listener_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="otp_py")
    recorder = Recorder()
    calls = []

    def broken(report: rp.Report) -> None:
        calls.append(report)
        raise RuntimeError("listener bug")

    with otp.start(tree(THREAD.forever("t")), on_report=broken) as sup:
        sup.add_listener(recorder)
        sup.terminate_child("t")
        sup.restart_child("t")
    assert [type(r).__name__ for r in recorder.reports] == [
        "ChildTerminated", "ChildStarted", "ChildTerminated", "SupervisorExited"
    ]
    assert len(calls) == 3 + len(recorder.reports)  # it heard the start-up too
    failures = [r for r in caplog.records if "listener" in r.getMessage()
                and r.levelno == logging.ERROR]
    assert len(failures) == len(calls)
    assert failures[0].exc_info is not None
    assert "listener bug" in str(failures[0].exc_info[1])


def test_listeners_run_on_the_trees_thread() -> None:
    threads = set()
    with otp.start(tree(THREAD.forever("t")),
                   on_report=lambda r: threads.add(threading.current_thread().name)):
        pass
    assert threads == {"otp_py-tree"}
