"""Waiting on reports: tests block on events with timeouts, never on sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from otp_py import reports as rp

DEFAULT_TIMEOUT = 20.0
"""Generous: a noisy 2-core machine can be slow; a passing test never waits this long."""


class Recorder:
    """A report listener that keeps every report and lets a test wait for one."""

    def __init__(self) -> None:
        self.reports: list[rp.Report] = []
        self._changed = threading.Condition()

    def __call__(self, report: rp.Report) -> None:
        with self._changed:
            self.reports.append(report)
            self._changed.notify_all()

    def wait_for(
        self,
        predicate: Callable[[rp.Report], bool],
        *,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[rp.Report]:
        """Block until ``count`` reports satisfy ``predicate``; return them all."""
        with self._changed:
            found: list[rp.Report] = []
            ok = self._changed.wait_for(
                lambda: len(found := [r for r in self.reports if predicate(r)]) >= count,
                timeout,
            )
            found = [r for r in self.reports if predicate(r)]
            if not ok:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {count} report(s); got:\n"
                    + "\n".join(r.describe() for r in self.reports)
                )
            return found

    def of(self, kind: type[Any], child_id: str | None = None) -> list[Any]:
        with self._changed:
            return [
                r for r in self.reports
                if isinstance(r, kind)
                and (child_id is None or getattr(r, "child_id", None) == child_id)
            ]

    def wait_kind(self, kind: type[Any], child_id: str | None = None, *, count: int = 1,
                  timeout: float = DEFAULT_TIMEOUT) -> list[Any]:
        return self.wait_for(
            lambda r: isinstance(r, kind)
            and (child_id is None or getattr(r, "child_id", None) == child_id),
            count=count, timeout=timeout,
        )

    def lines(self) -> list[str]:
        with self._changed:
            return [r.describe() for r in self.reports]
