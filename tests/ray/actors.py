"""Actor classes the Ray tests supervise (a module of their own: Ray's workers
import it by name, as they would an application's)."""

from __future__ import annotations

import os
import time

import otp_py as otp


class Forever:
    """Runs until asked to stop."""

    def __init__(self, *args: object) -> None:
        self.args = args

    def run(self) -> None:
        otp.wait_for_stop()

    def where(self) -> int:
        return os.getpid()


class Once:
    """Ends its first run as told (``how``: ``"return"`` or ``"raise"``), then runs
    until asked to stop: a marker file counts the runs."""

    def __init__(self, marker: str, how: str) -> None:
        self.marker = marker
        self.how = how

    def run(self) -> None:
        first = not os.path.exists(self.marker)
        with open(self.marker, "a") as f:
            f.write("run\n")
        if first:
            if self.how == "raise":
                raise ValueError("boom")
            return
        otp.wait_for_stop()


class Deaf:
    """Ignores its stop token: only a kill ends it."""

    def run(self) -> None:
        while True:
            time.sleep(3600)


class FailsInit:
    """Every start fails in ``__init__``."""

    def __init__(self) -> None:
        raise RuntimeError("cannot start")

    def run(self) -> None:  # pragma: no cover - never reached
        pass


class NeverReady:
    """Waits to be stopped without ever calling notify_ready."""

    def run(self) -> None:
        otp.wait_for_stop()


class NotifiesLater:
    """Becomes ready from its run method, after a moment."""

    def run(self) -> None:
        time.sleep(0.2)
        otp.notify_ready()
        otp.wait_for_stop()


def sleeper() -> None:
    """A process child of a Ray-hosted subtree (module level: the subtree's fork
    server pickles it by name)."""
    while not otp.wait_for_stop(3600):
        pass


def waiter() -> None:
    """A thread child of a Ray-hosted subtree."""
    otp.wait_for_stop()
