"""Attack: the tree's environment says ``WATCHDOG_USEC=1`` (a unit's
``WatchdogSec=1us``, or a hand-made environment).

Before the fix the tree pinged at half of it, every half microsecond: its loop
sent ``WATCHDOG=1`` without pause and burned a whole core (measured: 2 s of CPU in
2 s), while the peer never read. Pings are now at most every
``MIN_PING`` (10 ms)."""

from __future__ import annotations

from otp_py.runtime.systemd import Notifier


def test_an_absurdly_short_watchdog_does_not_make_the_loop_ping_without_pause() -> None:
    for usec in ("1", "10", "1999"):
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": "@otp-test-x", "WATCHDOG_USEC": usec})
        assert notifier is not None
        try:
            assert notifier.watchdog is not None and notifier.watchdog >= 0.005
        finally:
            notifier.close()
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": "@otp-test-x", "WATCHDOG_USEC": "2000000"})
    assert notifier is not None and notifier.watchdog == 1.0
    notifier.close()
