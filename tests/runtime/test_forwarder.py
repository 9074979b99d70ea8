"""The report forwarder of a subtree in a process of its own: reports reach the
parent in order, never block the subtree, and survive reasons that cannot travel."""

from __future__ import annotations

import pickle
import threading
from typing import Any

from otp_py import reasons
from otp_py import reports as rp
from otp_py.runtime.subtree import ReportForwarder

TIMEOUT = 10.0


def exited(child_id: str, reason: reasons.ExitReason | None = None) -> rp.ChildExited:
    return rp.ChildExited(("sub",), 1.0, child_id, reason or reasons.Normal(), "keep",
                          0.5, False)


class Pipe:
    """What the child's pipe does with a report: pickle it."""

    def __init__(self) -> None:
        self.sent: list[Any] = []  # the reports
        self.answers: list[tuple[Any, ...]] = []
        self.order: list[str] = []  # "report" or "reply", as sent
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, message: tuple[Any, ...]) -> None:
        self.gate.wait(TIMEOUT)
        kind, *rest = pickle.loads(pickle.dumps(message))
        self.order.append(kind)
        if kind == "report":
            self.sent.append(rest[0])
        else:  # ("reply", call id, ok, the answer pickled on its own)
            call_id, ok, payload = rest
            self.answers.append((kind, call_id, ok, pickle.loads(payload)))


def test_reports_are_sent_in_order_and_flushed_by_close() -> None:
    pipe = Pipe()
    forwarder = ReportForwarder(pipe)
    ready = threading.Event()
    for n in range(100):
        forwarder(exited(f"c{n}"))
    forwarder.then(lambda: ready.set() if len(pipe.sent) == 100 else None)
    assert ready.wait(TIMEOUT)  # ran after the 100 reports before it were sent
    forwarder(exited("last"))
    forwarder.close(timeout=TIMEOUT)
    assert [r.child_id for r in pipe.sent] == [f"c{n}" for n in range(100)] + ["last"]
    assert forwarder.dropped == 0
    assert not forwarder._thread.is_alive()


def test_a_stalled_parent_never_blocks_the_subtree() -> None:
    pipe = Pipe()
    pipe.gate.clear()  # the parent does not read
    forwarder = ReportForwarder(pipe, limit=10)
    for n in range(50):
        forwarder(exited(f"c{n}"))  # returns at once: queued or counted
    assert 39 <= forwarder.dropped <= 40  # (one may already be in the sender's hands)
    forwarder.answer(1, True, "answered")  # an answer is never dropped
    pipe.gate.set()
    forwarder.close(timeout=TIMEOUT)
    assert len(pipe.sent) + forwarder.dropped == 50
    assert pipe.answers == [("reply", 1, True, "answered")]


def test_answers_keep_their_place_and_unpicklable_ones_become_errors() -> None:
    pipe = Pipe()
    forwarder = ReportForwarder(pipe)
    forwarder(exited("a"))
    forwarder.answer(7, True, threading.Lock())  # cannot be pickled
    forwarder(exited("b"))
    forwarder.answer(8, False, LookupError("no such child"))
    forwarder.close(timeout=TIMEOUT)
    assert [r.child_id for r in pipe.sent] == ["a", "b"]
    assert pipe.order == ["report", "reply", "report", "reply"]
    (kind, call_id, ok, error), second = pipe.answers
    assert (kind, call_id, ok) == ("reply", 7, False)
    assert isinstance(error, TypeError)
    assert "could not be sent" in str(error)
    assert second[:3] == ("reply", 8, False)
    assert str(second[3]) == "no such child"


def test_a_reason_that_cannot_be_pickled_travels_as_text() -> None:
    pipe = Pipe()
    forwarder = ReportForwarder(pipe)
    term = threading.Lock()  # cannot be pickled
    forwarder(exited("c", reasons.Shutdown(term)))
    forwarder.close(timeout=TIMEOUT)
    [sent] = pipe.sent
    assert sent.child_id == "c"
    assert isinstance(sent.reason, reasons.Abnormal)
    assert "lock" in str(sent.reason)


def test_a_closed_pipe_ends_the_sender() -> None:
    def gone(report: Any) -> None:
        raise BrokenPipeError

    forwarder = ReportForwarder(gone)
    forwarder(exited("c"))
    forwarder._thread.join(TIMEOUT)
    assert not forwarder._thread.is_alive()
    forwarder.close(timeout=0.1)  # nothing left to wait for
