"""The notify protocol's parser and sender rule (otp_py._core.notify): pure, no
socket."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otp_py._core.notify import MAX_STATUS, NotifyMessage, parse, sender_allowed


def test_the_usual_messages() -> None:
    assert parse(b"READY=1") == NotifyMessage(ready=True)
    assert parse(b"READY=1\nSTATUS=Ready to accept connections\n") == NotifyMessage(
        ready=True, status="Ready to accept connections")
    assert parse(b"WATCHDOG=1") == NotifyMessage(watchdog=True)
    assert parse(b"WATCHDOG=trigger") == NotifyMessage(watchdog_trigger=True)
    assert parse(b"STOPPING=1\nERRNO=5") == NotifyMessage(stopping=True, errno=5)
    assert parse(b"MAINPID=4242") == NotifyMessage(main_pid=4242)
    assert parse(b"EXTEND_TIMEOUT_USEC=5000000") == NotifyMessage(extend_timeout_usec=5_000_000)
    assert parse(b"WATCHDOG_USEC=250000") == NotifyMessage(watchdog_usec=250_000)
    assert parse(b"RELOADING=1") == NotifyMessage(reloading=True)


@pytest.mark.parametrize("line", [
    b"READY=0", b"READY=yes", b"READY", b"=1", b"WATCHDOG=2", b"MAINPID=0", b"MAINPID=1",
    b"MAINPID=-5", b"MAINPID=12a", b"MAINPID=\xd9\xa3", b"ERRNO=-1", b"ERRNO=99999",
    b"EXTEND_TIMEOUT_USEC=0", b"WATCHDOG_USEC=1e6", b"FDSTORE=1", b"\xff\xfe=1",
    "MAINPID=\u0663".encode(),  # an Arabic-Indic digit: str.isdigit() says yes
])
def test_a_bad_line_is_ignored_and_counted(line: bytes) -> None:
    message = parse(line)
    assert message.empty
    assert message.ignored == 1


def test_a_bad_line_does_not_spoil_the_good_ones() -> None:
    assert parse(b"garbage\nREADY=1\n\xff\nSTATUS=up") == NotifyMessage(
        ready=True, status="up", ignored=2)


def test_the_last_assignment_wins() -> None:
    assert parse(b"STATUS=a\nSTATUS=b").status == "b"


def test_status_is_one_short_printable_line() -> None:
    status = parse(b"STATUS=\x1b]0;pwned\x07\x1b[2J" + b"x" * 1000).status
    assert status is not None
    assert status.isprintable()
    assert "\x1b" not in status
    assert len(status) == MAX_STATUS


@given(st.binary(max_size=600))
def test_parse_never_raises(data: bytes) -> None:
    message = parse(data)
    assert message.status is None or message.status.isprintable()


def test_who_may_send() -> None:
    never = lambda pid: False  # noqa: E731
    always = lambda pid: True  # noqa: E731
    assert sender_allowed(10, 10, "main", never)
    assert not sender_allowed(11, 10, "main", always)  # a descendant, without opt-in
    assert sender_allowed(11, 10, "all", always)
    assert not sender_allowed(11, 10, "all", never)  # a stranger, even with it
    assert not sender_allowed(None, 10, "all", always)  # no credentials
    assert not sender_allowed(0, 10, "all", always)
