"""Output capture, the runtime's side: which child's output goes where, and the
tree's own event log.

A tree resolves each supervisor's :class:`~otp_py.OutputCapture` once, when the
supervisor is created (its parent's, overridden field by field by its own), and each
child's at each start (its supervisor's, overridden by the child's): a process or
command child whose resolved capture is enabled gets a
:class:`~otp_py.backends.output.Capture` naming its two log files, and the number of
this start, for the marker line its log gets. The writing itself is the backends'
(:mod:`otp_py.backends.output`), on writer threads: nothing here touches a file.

A tree whose root captures also writes every report, one line each, to
``tree.log`` in the root's directory (supervisorctl's ``maintail``).
"""

from __future__ import annotations

from typing import Any

from otp_py import reports as rp
from otp_py.backends.output import Capture, TreeLog
from otp_py.spec import OutputCapture

__all__ = ["TreeOutput", "inherit"]

_CAPTURED_BACKENDS = ("process", "command")


def inherit(above: OutputCapture | None, spec: Any) -> OutputCapture | None:
    """The capture of ``spec`` (a supervisor's or a child's): ``above``, its
    supervisor's, overridden by its own ``output``."""
    own = getattr(spec, "output", None)
    if above is None:
        return own
    return above.merged(own)


class TreeOutput:
    """One tree's output capture: the starts of each captured child (for the
    markers) and, for a tree whose root captures, its event log."""

    def __init__(self) -> None:
        self._starts: dict[tuple[str, ...], int] = {}
        self._log: TreeLog | None = None

    def capture(self, above: OutputCapture | None, spec: Any,
                path: tuple[str, ...]) -> Capture | None:
        """Where the output of this start of the child ``spec`` at ``path`` goes
        (None: not captured), ``above`` being its supervisor's capture."""
        if spec.backend not in _CAPTURED_BACKENDS:
            return None  # (a thread or task shares the supervisor's streams)
        resolved = inherit(above, spec)
        if resolved is None or not resolved.enabled:
            return None
        full = resolved.completed(path[0])
        below = path[1:]
        start = self._starts.get(path, 0) + 1
        if len(self._starts) < 100_000 or path in self._starts:
            self._starts[path] = start
        return Capture(
            stdout=full.log_file(below, "stdout"), stderr=full.log_file(below, "stderr"),
            max_bytes=full.max_bytes or 0, backups=full.backups or 0,
            passthrough=bool(full.passthrough), start=start)

    def open_log(self, root: OutputCapture | None, tree_id: str) -> None:
        """Open the tree's event log, if the root captures."""
        if root is None or not root.enabled:
            return
        full = root.completed(tree_id)
        self._log = TreeLog(full.tree_log, full.max_bytes or 0, full.backups or 0)
        self._log.line(f"--- otp-py: tree {tree_id!r} starting")

    def listener(self, report: rp.Report) -> None:
        """A report listener writing each report to the event log."""
        if self._log is not None:
            self._log.line(report.describe())

    @property
    def logging(self) -> bool:
        return self._log is not None

    def close(self, reason: Any) -> None:
        """The tree has ended (``reason``): close its event log."""
        if self._log is not None:
            self._log.line(f"--- otp-py: tree ended: {reason}")
            self._log.close()
            self._log = None
