"""The live view of a running tree: each supervisor and child, its state, restart
count, uptime and last exit reason, and the events as they happen.

Two renderings of the same data:

* :class:`PlainView`: lines on stdout, for pipes, logs and tests. Each event is one
  line (``12:00:01.234 demo: flaky exited: RuntimeError: ...; restart``), a crash's
  traceback indented under it the first time that child crashes so (then a count);
  the tree table is printed when it has changed, at most once per refresh interval.
* :class:`RichView`: with ``rich`` installed (``pip install 'otp_py[cli]'``) and a
  terminal on stdout, a table redrawn in place under the scrolling events.

Notes about the command itself (starting, stopping) go to stderr in plain mode.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final, TextIO

import otp_py as otp
from otp_py.cli.errors import EXIT_USAGE, CliError
from otp_py.cli.render import (
    COLUMNS,
    age,
    cells,
    clip,
    fit_rows,
    fit_widths,
    printable,
    table_lines,
)
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
        self._crashes = CrashNotes()

    def _print(self, stream: TextIO, text: str) -> None:
        # A closed pipe (the reader has left) or a terminal that hung up (EIO, after
        # the SIGHUP that stops the tree in order) must not stop the tree, nor
        # turn the orderly end of that stop into a failure.
        with contextlib.suppress(OSError, ValueError):
            print(text, file=stream, flush=True)

    def note(self, text: str) -> None:
        self._print(self._err, f"otp-py: {text}")

    def event(self, at: float, report: otp.reports.Report) -> None:
        suffix, traceback = self._crashes.lines(report)
        # (a child's exception text goes to the operator's terminal: escaped)
        self._print(self._out, "\n".join([f"{clock(at)} {printable(report.describe())}{suffix}",
                                          *(printable(line) for line in traceback)]))

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
    """The tree redrawn in place (``rich.live.Live``), events scrolling above it.

    Sized to the terminal at every frame, so it works in any terminal: each row is one
    line (columns shrink, text is cut with an ellipsis, LAST EXIT gets the rest of the
    width); the frame leaves :data:`EVENT_LINES` lines of the screen to the events
    above it; a tree taller than that shows fewer children per supervisor (counting
    the rest) and, if it must, counts the rows it leaves out. Under the table: the
    last crash, with the end of its traceback. After the tree ends the final frame
    shows every child stopped."""

    wants_events_refresh = True

    def __init__(self, *, max_children: int | None = 20, hint: str = "") -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console()
        self._live = Live(console=self._console, auto_refresh=False, transient=False,
                          vertical_overflow="crop")
        self._max_children = max_children
        self._hint = hint
        self._crashes = CrashNotes()
        self._last_crash: tuple[str, float, str, list[str]] | None = None
        self._root: Node | None = None
        self._closed = False
        self._live.start()

    def note(self, text: str) -> None:
        from rich.text import Text

        with contextlib.suppress(OSError):  # a terminal that hung up: see PlainView
            self._console.print(Text.assemble(("otp-py: ", "dim"), text), no_wrap=True,
                                overflow="ellipsis")

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
        suffix, traceback = self._crashes.lines(report)
        crash = crash_of(report)
        if crash is not None:
            path, why, text = crash
            self._last_crash = (path, at, why, (text or "").rstrip().splitlines())
        with contextlib.suppress(OSError):
            self._console.print(Text.assemble((clock(at) + " ", "dim"),
                                              (printable(report.describe()) + suffix,
                                               style)),
                                no_wrap=True, overflow="ellipsis")
            for line in traceback:
                self._console.print(Text(printable(line), style="dim"), no_wrap=True,
                                    overflow="ellipsis")

    def show(self, root: Node, now: float) -> None:
        self._root = root
        if self._closed:
            return
        with contextlib.suppress(OSError):
            self._live.update(self._frame(root, now), refresh=True)

    def _frame(self, root: Node, now: float, *, ended: bool = False) -> Any:
        from rich.console import Group
        from rich.text import Text

        width = max(self._console.width, 20)
        height = max(self._console.height, 8)
        crash_lines = self._crash_lines(now, width)
        hint = [Text(clip(self._hint, width), style="dim")] if self._hint and not ended else []
        # title + header + rows + crash + hint, and EVENT_LINES left for the events
        budget = height - EVENT_LINES - 2 - len(crash_lines) - len(hint) - 1
        rows = fit_rows(root, max(budget, 1), max_children=self._max_children)
        table = [COLUMNS, *(cells(r, now) for r in rows)]
        widths = fit_widths(table, width)
        state = "stopped" if ended else f"up {age(root.get('started_at'), now)}"
        title = Text.assemble((root["id"], "bold"), f"  {state}  {summary(root)}")
        title.truncate(width, overflow="ellipsis")
        lines = [title, self._line(COLUMNS, widths, "bold")]
        for row, values in zip(rows, table[1:], strict=True):
            lines.append(self._row(row, values, widths))
        return Group(*lines, *crash_lines, *hint)

    @staticmethod
    def _line(values: Sequence[str], widths: Sequence[int], style: str = "") -> Any:
        from rich.text import Text

        parts = [clip(v, w, left=i == 0).rjust(w) if i == 3 else clip(v, w, left=i == 0)
                 .ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return Text(" ".join(parts).rstrip(), style=style, no_wrap=True, overflow="ellipsis")

    def _row(self, row: Node, values: Sequence[str], widths: Sequence[int]) -> Any:
        from rich.text import Text

        if "more" in row:  # one cell across the row: "... 23 more (20 running)"
            noun = "rows" if row.get("rows") else "more"
            more = f"{'  ' * row['depth']}... {row['more']} {noun} ({row['running']} running)"
            return Text(clip(more, sum(widths) + len(widths) - 1), style="dim",
                        no_wrap=True, overflow="ellipsis")
        styles = ["", "", _STATE_STYLES.get(str(row.get("state")), ""),
                  "yellow" if row.get("restarts") else "", "", "",
                  "red" if (row.get("last_exit") or {}).get("abnormal") else "dim"]
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (value, w) in enumerate(zip(values, widths, strict=True)):
            cell = clip(value, w, left=i == 0)
            cell = cell.rjust(w) if i == 3 else (cell if i == len(values) - 1 else cell.ljust(w))
            if i == 0:
                parent, _, name = cell.rpartition("/")
                text.append(parent + "/" if parent else "", "dim")
                text.append(name, "bold")
            else:
                text.append(cell, styles[i])
            if i < len(values) - 1:
                text.append(" ")
        text.rstrip()
        return text

    def _crash_lines(self, now: float, width: int) -> list[Any]:
        """The last crash: which child, when, why, and where (the traceback's last
        frame)."""
        from rich.text import Text

        if self._last_crash is None:
            return [Text("no crash yet", style="dim")]
        path, at, reason, traceback = self._last_crash
        head = Text(clip(f"last crash: {path} {age(at, now)} ago: {reason}", width),
                    style="red")
        frames = [line for line in traceback if line.startswith("  File ")]
        where = [Text(clip(frames[-1].strip(), width - 2), style="dim")] if frames else []
        return [head, *(Text("  ") + w for w in where)]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            if self._root is not None:
                self._live.update(self._frame(stopped(self._root), time.time(), ended=True),
                                  refresh=True)
            self._live.stop()


EVENT_LINES: Final = 6
"""Lines of the terminal the live view leaves to the events scrolling above it."""


def stopped(root: Node) -> Node:
    """The tree as it is once it has ended: every node stopped, with no pid."""
    def visit(node: Node) -> Node:
        copy = {**node, "state": "stopped", "pid": None, "started_at": None}
        if node.get("children"):
            copy["children"] = [visit(c) for c in node["children"]]
        return copy

    return visit(root)


def crash_of(report: otp.reports.Report) -> tuple[str, str, str | None] | None:
    """(child path, reason, traceback) of a report of an abnormal exit, else None."""
    rp = otp.reports
    if not isinstance(report, rp.ChildExited | rp.ChildStartFailed):
        return None
    reason = report.reason
    if reason is None or not reason.is_abnormal:
        return None
    traceback = getattr(reason, "traceback", None)
    return (f"{report.where}/{report.child_id}", str(reason),
            traceback if isinstance(traceback, str) else None)


class CrashNotes:
    """What to print under a crash event: its traceback the first time that child
    crashes with that traceback, and only a count after (a crash loop repeats the same
    traceback). Remembers at most ``limit`` (child, traceback) pairs."""

    def __init__(self, limit: int = 1000) -> None:
        self._limit = limit
        self._seen: OrderedDict[tuple[str, str], int] = OrderedDict()

    def lines(self, report: otp.reports.Report) -> tuple[str, list[str]]:
        """(a suffix for the event's line, the lines to print under it)."""
        crash = crash_of(report)
        if crash is None or not crash[2]:
            return "", []
        path, _, traceback = crash
        assert traceback is not None
        key = (path, traceback)
        count = self._seen.get(key, 0) + 1
        self._seen[key] = count
        self._seen.move_to_end(key)
        while len(self._seen) > self._limit:
            self._seen.popitem(last=False)
        if count > 1:
            return f" (same traceback as before, {count} times)", []
        return "", ["    " + line for line in traceback.rstrip().splitlines()]


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
