"""The live view of a running tree: each supervisor and child, its state, restart
count, uptime and last exit reason, and the events as they happen.

Two renderings of the same data:

* :class:`PlainView`: lines on stdout, for pipes, logs and tests. Each event is one
  line (``12:00:01.234 demo: flaky exited: RuntimeError: ...; restart``); the tree
  table is printed when it has changed, at most once per refresh interval.
* :class:`RichView`: with ``rich`` installed (``pip install 'otp_py[cli]'``) and a
  terminal on stdout, a table redrawn in place under the scrolling events.

Notes about the command itself (starting, stopping) go to stderr in plain mode.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Final, TextIO

import otp_py as otp
from otp_py.cli.errors import EXIT_USAGE, CliError
from otp_py.cli.render import COLUMNS, age, cells, table_lines
from otp_py.cli.snapshot import Node, flatten

__all__ = ["VIEW_MODES", "PlainView", "RichView", "View", "make_view"]

VIEW_MODES: Final = ("auto", "live", "plain", "events", "quiet")


def clock(at: float) -> str:
    """``HH:MM:SS.mmm`` local time."""
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"


def summary(root: Node) -> str:
    """``5/6 running, 7 restarts``."""
    rows = flatten(root)[1:]
    running = sum(1 for r in rows if r.get("state") == "running")
    restarts = sum(r.get("restarts") or 0 for r in rows)
    noun = "restart" if restarts == 1 else "restarts"
    return f"{running}/{len(rows)} running, {restarts} {noun}"


class View:
    """What the runner tells a view. The base class shows nothing."""

    wants_events_refresh = False
    """Whether a report should trigger a new snapshot at once (not only at the next
    refresh tick)."""

    def note(self, text: str) -> None:
        """A message about the command itself."""

    def event(self, at: float, report: otp.reports.Report) -> None:
        """A report from the tree, received at wall time ``at``."""

    def show(self, root: Node, now: float) -> None:
        """A fresh snapshot of the tree."""

    def close(self) -> None:
        """The tree has ended; release the terminal."""


class PlainView(View):
    """Events and tree tables as plain lines. ``tables=False`` shows events only."""

    def __init__(self, out: TextIO, err: TextIO, *, tables: bool = True,
                 max_children: int | None = 20) -> None:
        self._out = out
        self._err = err
        self._tables = tables
        self._max_children = max_children
        self._last: Any = None

    def _print(self, stream: TextIO, text: str) -> None:
        # A closed pipe (the reader has left) or a terminal that hung up (EIO, after
        # the SIGHUP that stops the tree in order) must not stop the tree, nor
        # turn the orderly end of that stop into a failure.
        with contextlib.suppress(OSError, ValueError):
            print(text, file=stream, flush=True)

    def note(self, text: str) -> None:
        self._print(self._err, f"otp-py: {text}")

    def event(self, at: float, report: otp.reports.Report) -> None:
        self._print(self._out, f"{clock(at)} {report.describe()}")

    def show(self, root: Node, now: float) -> None:
        if not self._tables:
            return
        key = [(r.get("path"), r.get("state"), r.get("restarts"), r.get("pid"),
                (r.get("last_exit") or {}).get("at"), r.get("more"), r.get("note"))
               for r in flatten(root, max_children=self._max_children)]
        if key == self._last:
            return
        self._last = key
        lines = [f"--- tree {root['id']} at {clock(now)}: {summary(root)} ---",
                 *table_lines(root, now, max_children=self._max_children)]
        self._print(self._out, "\n".join(lines))


_STATE_STYLES: Final = {
    "running": "green",
    "restarting": "bold yellow",
    "starting": "cyan",
    "stopping": "yellow",
    "stopped": "red",
    "ignored": "dim",
}


class RichView(View):
    """A table redrawn in place (``rich.live.Live``), events scrolling above it."""

    wants_events_refresh = True

    def __init__(self, *, max_children: int | None = 20, hint: str = "") -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console()
        self._live = Live(console=self._console, auto_refresh=False, transient=False)
        self._max_children = max_children
        self._hint = hint
        self._live.start()

    def note(self, text: str) -> None:
        from rich.text import Text

        with contextlib.suppress(OSError):  # a terminal that hung up: see PlainView
            self._console.print(Text.assemble(("otp-py: ", "dim"), text))

    def event(self, at: float, report: otp.reports.Report) -> None:
        from rich.text import Text

        rp = otp.reports
        style = ""
        if isinstance(report, rp.IntensityExceeded):
            style = "bold red"
        elif isinstance(report, rp.ChildExited | rp.ChildStartFailed):
            reason = report.reason
            style = "red" if reason is not None and reason.is_abnormal else ""
        elif isinstance(report, rp.RestartScheduled) or (
                isinstance(report, rp.ChildStarted) and report.restarts):
            style = "yellow"
        elif isinstance(report, rp.SupervisorStarting | rp.SupervisorStarted
                        | rp.SupervisorExited):
            style = "cyan"
        with contextlib.suppress(OSError):
            self._console.print(Text.assemble((clock(at) + " ", "dim"),
                                              (report.describe(), style)))

    def show(self, root: Node, now: float) -> None:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        up = age(root.get("started_at"), now)
        table = Table(
            box=box.SIMPLE_HEAD,
            title=Text.assemble((root["id"], "bold"), f"  up {up}  {summary(root)}"),
            caption=self._hint or None,
            caption_justify="left",
        )
        for name in COLUMNS:
            table.add_column(name, justify="right" if name == "RESTARTS" else "left",
                             no_wrap=name != "LAST EXIT", overflow="ellipsis")
        for row in flatten(root, max_children=self._max_children):
            values = cells(row, now)
            if "more" in row:
                table.add_row(Text(values[0], style="dim"), "", Text(values[2], style="dim"))
                continue
            parent, _, name = str(row["path"]).rpartition("/")
            path = Text.assemble((parent + "/" if parent else "", "dim"), (name, "bold"))
            state = Text(values[2], style=_STATE_STYLES.get(str(row.get("state")), ""))
            restarts = Text(values[3], style="yellow" if row.get("restarts") else "")
            last = row.get("last_exit") or {}
            exit_style = "red" if last.get("abnormal") else "dim"
            table.add_row(path, values[1], state, restarts, values[4], values[5],
                          Text(values[6], style=exit_style))
        with contextlib.suppress(OSError):
            self._live.update(table, refresh=True)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._live.stop()


def _rich_available() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def make_view(mode: str, *, max_children: int | None = 20, hint: str = "") -> View:
    """The view for ``mode`` (one of :data:`VIEW_MODES`). ``auto`` is ``live`` when
    stdout is a terminal and ``rich`` is installed, else ``plain``."""
    if mode == "auto":
        mode = "live" if sys.stdout.isatty() and _rich_available() else "plain"
    if mode == "live":
        if not _rich_available():
            raise CliError("the live view needs rich: pip install 'otp_py[cli]' "
                           "(or use --view plain)", code=EXIT_USAGE)
        return RichView(max_children=max_children, hint=hint)
    if mode == "quiet":
        return View()
    return PlainView(sys.stdout, sys.stderr, tables=mode == "plain", max_children=max_children)
