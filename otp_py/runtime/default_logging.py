"""What :func:`otp_py.run` and :func:`otp_py.start` show when the application has
configured no logging.

A library must not configure logging for its application, so the ``otp_py`` logger
keeps its ``NullHandler`` and stays silent once the application sets up logging of its
own. But a first run of a tree that says nothing while its children crash hides the
very thing a supervisor is for. So while a tree started by ``run()`` or ``start()``
runs, and only if the root logger has no handler (the application configured no
logging) and no ``on_report`` listener was given (an application that listens shows
the reports its own way: the tutorial's scripts print them, and would see each one
twice), a handler on the ``otp_py`` logger prints the tree's reports to stderr at
INFO: each start, exit, restart and give-up, a crash with its traceback (once per
distinct traceback of a child, then a count, so a crash loop does not flood the
terminal). It is removed when the tree ends.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import OrderedDict
from typing import Final

from otp_py._core import reports as rp

__all__ = ["install", "uninstall"]

_LOGGER: Final = logging.getLogger("otp_py")
_SEEN_LIMIT: Final = 1000
"""Distinct (child, traceback) pairs remembered per handler; the oldest go first."""


class _ReportFormatter(logging.Formatter):
    """One line per report; under a crash, its traceback the first time it is seen
    for that child, then ``(same traceback as before, N times)``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._seen: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._lock = threading.Lock()  # several trees may log through one handler

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        report = getattr(record, "otp_report", None)
        if not isinstance(report, rp.ChildExited | rp.ChildStartFailed):
            return text
        traceback = getattr(report.reason, "traceback", None)
        if not isinstance(traceback, str) or not traceback:
            return text
        key = (f"{report.where}/{report.child_id}", traceback)
        with self._lock:
            count = self._seen.get(key, 0) + 1
            self._seen[key] = count
            self._seen.move_to_end(key)
            while len(self._seen) > _SEEN_LIMIT:
                self._seen.popitem(last=False)
        if count > 1:
            return f"{text} (same traceback as before, {count} times)"
        return f"{text}\n{traceback.rstrip()}"


class _DefaultHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (callers and tests swap it),
    and to nothing when it is closed."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(_ReportFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr
        if stream is None:
            return
        self.stream = stream
        super().emit(record)


_state_lock = threading.Lock()
_users = 0
_handler: _DefaultHandler | None = None
_saved_level = logging.NOTSET


def install() -> bool:
    """Put the default handler on the ``otp_py`` logger if the application configured
    no logging (the root logger has no handler). Returns whether this call counts as a
    user of it: pass the result to :func:`uninstall` when the tree ends."""
    global _users, _handler, _saved_level
    with _state_lock:
        if _handler is None:
            if logging.getLogger().handlers:
                return False
            _handler = _DefaultHandler()
            _saved_level = _LOGGER.level
            if _LOGGER.getEffectiveLevel() > logging.INFO:
                _LOGGER.setLevel(logging.INFO)
            _LOGGER.addHandler(_handler)
        _users += 1
        return True


def uninstall(installed: bool) -> None:
    """Undo one :func:`install` that returned true; the last user removes the handler
    and restores the logger's level."""
    global _users, _handler
    if not installed:
        return
    with _state_lock:
        _users -= 1
        if _users == 0 and _handler is not None:
            _LOGGER.removeHandler(_handler)
            _LOGGER.setLevel(_saved_level)
            _handler = None
