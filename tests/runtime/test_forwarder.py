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
        self.sent: list[Any] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, report: Any) -> None:
        self.gate.wait(TIMEOUT)
        self.sent.append(pickle.loads(pickle.dumps(report)))


def test_reports_are_sent_in_order_and_flushed_by_close() -> None:
    pipe = Pipe()
    forwarder = ReportForwarder(pipe)
    ready = threading.Event()
    for n in range(100):
        forwarder(exited(f"c{n}"))
    forwarder.then(lambda: ready.set() if len(pipe.sent) == 100 else None)
    assert ready.wait(TIMEOUT)  # ran after the 100 reports before it were sent
    forwarder(exited("last"))
    forwarder.close()
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
    pipe.gate.set()
    forwarder.close()
    assert len(pipe.sent) + forwarder.dropped == 50


def test_a_reason_that_cannot_be_pickled_travels_as_text() -> None:
    pipe = Pipe()
    forwarder = ReportForwarder(pipe)
    term = threading.Lock()  # cannot be pickled
    forwarder(exited("c", reasons.Shutdown(term)))
    forwarder.close()
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
