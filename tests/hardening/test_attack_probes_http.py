"""Attack: the HTTP server a liveness probe asks (the child's own: a hostile or
broken child controls it) answers with a status line whose reason phrase carries
terminal escapes and kilobytes of text.

Before the fix the phrase went verbatim into the probe's last result and the hung
reason (``HTTP 503 \\x1b]0;owned\\x07...``): into the log lines on the operator's
terminal, the JSON logs and the crash history. Now a probe's result is one
printable line, cut short, whatever produced it (the notify protocol's STATUS= and
an exec probe's output already were)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from otp_py._core.probes import Call, ProbeTracker
from tests.reports import Recorder

_ANSWER = b"HTTP/1.1 503 \x1b]0;owned\x07\x1b[2J\x9b31m" + b"A" * 6000 + b"\r\n\r\n"


@pytest.fixture
def hostile_http() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(4096)
                    conn.sendall(_ANSWER)
                except OSError:
                    pass

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(5)
        listener.close()


def test_an_http_reason_phrase_with_escapes_reaches_no_report_verbatim(
        hostile_http: int) -> None:
    async def forever() -> None:
        await asyncio.sleep(3600)

    recorder = Recorder()
    child = otp.ChildSpec(id="w", start=forever, backend="asyncio", liveness=otp.probes.Http(
        f"http://127.0.0.1:{hostile_http}/", interval=0.05, timeout=2, failure_threshold=1))
    spec = otp.SupervisorSpec(id="root", children=[child],
                              intensity=otp.SlidingWindow(max_restarts=100, period=10))
    with otp.start(spec, on_report=recorder):
        [exited] = recorder.wait_kind(rp.ChildExited, "w", timeout=20)[:1]
    assert isinstance(exited.reason, reasons.Hung)
    detail = exited.reason.detail
    assert "HTTP 503" in detail
    assert detail.isprintable(), detail[:120]
    assert len(detail) < 600


def test_the_tracker_keeps_one_printable_line() -> None:
    tracker = ProbeTracker(Call(lambda: True), "liveness")
    tracker.record(False, "line one\nline two\x1b[2J" + "x" * 5000, 0.0, 0.1)
    assert tracker.last is not None
    assert tracker.last.detail.isprintable() and len(tracker.last.detail) <= 300
