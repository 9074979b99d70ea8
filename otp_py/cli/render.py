"""Text for people: the running tree as a table, the declared tree as text or a
Mermaid diagram. Pure functions of snapshot data (see :mod:`otp_py.cli.snapshot`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Final

from otp_py.cli.snapshot import Node, flatten

__all__ = [
    "COLUMNS",
    "age",
    "cells",
    "child_detail",
    "clip",
    "declared_text",
    "duration",
    "exit_lines",
    "fit_rows",
    "fit_widths",
    "json_ready",
    "kind_of",
    "mermaid",
    "printable",
    "probe_state",
    "table_lines",
]

COLUMNS: Final = ("PATH", "KIND", "STATE", "RESTARTS", "PID", "UP", "LAST EXIT")

LAST_EXIT_WIDTH: Final = 60
STATUS_WIDTH: Final = 40
"""A notify child's STATUS= is clipped to this in the table (in full in ``status PATH``)."""


def duration(seconds: float) -> str:
    """``0.4s``, ``12s``, ``3m05s``, ``2h07m``, ``3d04h``."""
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def age(at: float | None, now: float) -> str:
    return "" if at is None else duration(now - at)


_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str, *, lines: bool = False) -> str:
    """``text`` with its control characters (and lone surrogates) written as escapes
    (``\\x1b``): an exit reason, a traceback or a stderr tail is a child's text, and a
    hostile or broken child must not move the operator's cursor, retitle the terminal
    or break a table's row in two. ``lines`` keeps newlines (a traceback's)."""
    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if lines and char == "\n":
            return char
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNPRINTABLE.sub(escape, text)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


ELLIPSIS: Final = "\u2026"


def clip(text: str, width: int, *, left: bool = False) -> str:
    """``text`` cut to ``width`` characters with an ellipsis (at the start with
    ``left``: a path keeps its last, most telling part)."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return ELLIPSIS
    return ELLIPSIS + text[len(text) - width + 1:] if left else text[: width - 1] + ELLIPSIS


LIVE_CAPS: Final = (40, 18, 10, 8, 8, 6)
"""The widest each column but the last (LAST EXIT) may be in the live view; LAST EXIT
gets the rest of the terminal's width."""
LIVE_MINS: Final = (12, 6, 7, 3, 5, 4)
"""The narrowest they shrink to, PATH first, when the terminal is narrow."""


def fit_widths(rows: Sequence[Sequence[str]], width: int, *, last_min: int = 28) -> list[int]:
    """Column widths for :data:`COLUMNS` rows on a line of ``width`` characters, one
    space between columns: each column as wide as its widest cell up to
    :data:`LIVE_CAPS`; when that does not leave LAST EXIT ``last_min`` characters, the
    other columns shrink (PATH first, then KIND and STATE) down to :data:`LIVE_MINS`.
    The widths and separators never add up to more than ``width``."""
    count = len(COLUMNS)
    natural = [max([len(r[i]) for r in rows] or [0]) for i in range(count)]
    caps = [max(LIVE_CAPS[0], width // 3), *LIVE_CAPS[1:]]  # a wide terminal: long paths
    widths = [min(natural[i], caps[i]) for i in range(count - 1)]
    room = width - (count - 1)
    for i in (0, 1, 2, 5, 4, 3):
        short = last_min - (room - sum(widths))
        if short <= 0:
            break
        widths[i] -= min(short, max(widths[i] - LIVE_MINS[i], 0))
    last = max(room - sum(widths), 0)
    overflow = sum(widths) + last - room
    if overflow > 0:  # narrower than the minimums: PATH gives what is missing
        widths[0] = max(widths[0] - overflow, 1)
    return [*widths, min(last, max(natural[-1], 0)) if natural[-1] < last else last]


def fit_rows(root: Node, max_rows: int, *, max_children: int | None = None) -> list[Node]:
    """At most ``max_rows`` rows of the running tree: fewer children per supervisor
    (the rest summed up in a ``... N more`` row per supervisor) until the tree fits,
    then, if it still does not, the first rows and one row counting the rest."""
    rows = flatten(root, max_children=max_children)
    if len(rows) > max_rows:
        widest = max(len(n.get("children") or []) for n in rows)
        low, high = 1, min(widest, max_children or widest)
        while low < high:  # the largest per-supervisor limit that still fits
            middle = (low + high + 1) // 2
            if len(flatten(root, max_children=middle)) <= max_rows:
                low = middle
            else:
                high = middle - 1
        rows = flatten(root, max_children=low)
    if len(rows) > max(max_rows, 1):
        keep = max(max_rows - 1, 0)
        hidden = rows[keep:]
        running = sum(r["running"] if "more" in r else r.get("state") == "running"
                      for r in hidden)
        more = sum(r.get("more", 1) for r in hidden)
        rows = [*rows[:keep], {"more": more, "running": running, "depth": 0,
                               "path": root["path"], "rows": True}]
    return rows


def kind_of(node: Node) -> str:
    """``supervisor`` (or ``supervisor/process`` for a subtree in its own process),
    else the worker's backend."""
    if node.get("kind") == "supervisor":
        return "supervisor" if node.get("backend") == "inline" else "supervisor/process"
    return str(node.get("backend", ""))


def cells(row: Node, now: float) -> tuple[str, ...]:
    """One row of the table, as strings in :data:`COLUMNS` order."""
    if "more" in row:
        return (f"{'  ' * row['depth']}... {row['more']} more", "", f"{row['running']} running",
                "", "", "", "")
    restarts = "-" if row.get("restarts") is None else str(row["restarts"])
    pid = "" if row.get("pid") is None else str(row["pid"])
    if row.get("node"):  # a Ray actor: its worker's pid on its node
        pid = f"{row.get('worker_pid') or '?'}@{str(row['node'])[:8]}"
    last = row.get("last_exit")
    exit_text = ""
    if last:
        exit_text = _clip(f"{printable(str(last['reason']))} ({age(last['at'], now)} ago)",
                          LAST_EXIT_WIDTH)
    state = str(row.get("state", ""))
    if row.get("note"):
        state += "*"
    if row.get("status"):  # (a notify child's STATUS=)
        state += f" ({_clip(printable(str(row['status'])), STATUS_WIDTH)})"
    return (str(row["path"]), kind_of(row), state, restarts, pid,
            age(row.get("started_at"), now), exit_text)


def _align(rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = set(right)
    lines = []
    for r in rows:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                 enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
    return lines


def _indent(text: str, prefix: str) -> list[str]:
    return [prefix + line for line in text.rstrip("\n").splitlines()]


def exit_lines(record: Node, now: float, *, prefix: str = "  ") -> list[str]:
    """One exit of a crash history: when, why, then its traceback or stderr tail."""
    import time as _time

    at = float(record["at"])
    when = _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(at))
    extra = []
    if record.get("uptime") is not None:
        extra.append(f"after {duration(float(record['uptime']))} up")
    if record.get("delay"):
        extra.append(f"restarted after {float(record['delay']):.3g} s")
    tail = f" ({', '.join(extra)})" if extra else ""
    reason = printable(str(record["reason"]))
    lines = [f"{prefix}{when} ({age(at, now)} ago): {reason}{tail}"]
    if record.get("traceback"):
        lines += _indent(printable(str(record["traceback"]), lines=True), prefix + "    ")
    if record.get("stderr"):
        lines.append(f"{prefix}    last lines of stderr:")
        lines += _indent(printable(str(record["stderr"]), lines=True), prefix + "      ")
    return lines


def probe_state(probe: Node) -> str:
    """A probe's counts and last result: ``ready after 3 attempts; last: passed in
    8 ms: HTTP 200 OK``."""
    attempts = int(probe.get("attempts") or 0)
    plural = "s" if attempts != 1 else ""
    verdict = probe.get("verdict")
    if verdict == "ready":
        text = f"ready after {attempts} attempt{plural}"
    elif verdict == "hung":
        text = f"hung after {attempts} attempt{plural}"
    elif attempts:
        text = f"{attempts} attempt{plural}, {probe.get('failures', 0)} failed in a row"
    else:
        return "no attempt yet"
    last = probe.get("last")
    if isinstance(last, dict):
        took = float(last.get("took") or 0.0)
        took_text = f"{took * 1000:.0f} ms" if took < 1 else f"{took:.3g} s"
        text += (f"; last: {'passed' if last.get('ok') else 'failed'} in {took_text}: "
                 f"{last.get('detail')}")
    return text


def child_detail(node: Node, now: float) -> list[str]:
    """One child in full, for ``otp-py status PATH``: its spec, state, pid, uptime,
    restarts, and its crash history (oldest first) with tracebacks and stderr tails."""
    lines = [f"{node['path']}  ({node['kind']}, {kind_of(node)})"]
    spec = []
    if node.get("target"):
        spec.append(("target", str(node["target"])))
    if node.get("strategy"):
        spec.append(("strategy", f"{node['strategy']}, {node.get('intensity', '')}"))
    spec.append(("restart", f"{node['restart']}, shutdown {node['shutdown']}"
                 + (", significant" if node.get("significant") else "")))
    state = str(node.get("state", "?"))
    spec.append(("state", state))
    if node.get("status"):
        spec.append(("status", printable(str(node["status"]))))
    spec.append(("pid", "-" if node.get("pid") is None else str(node["pid"])))
    if node.get("node"):  # a Ray actor: where it runs
        spec.append(("ray node", f"{node['node']} ({node.get('node_ip') or '?'}), "
                     f"worker pid {node.get('worker_pid') or '?'}"))
    spec.append(("uptime", age(node.get("started_at"), now) or "-"))
    spec.append(("restarts", "-" if node.get("restarts") is None else str(node["restarts"])))
    for role, probe in (node.get("probes") or {}).items():
        spec.append((role, printable(f"{probe['probe']} ({probe['timing']})")))
        spec.append(("", printable(probe_state(probe))))
    width = max(len(k) for k, _ in spec)
    lines += [f"  {k.ljust(width)}  {v}" for k, v in spec]
    history = node.get("history") or []
    if not history:
        lines.append("  no exits yet")
    else:
        lines.append(f"  last {len(history)} exit{'s' if len(history) != 1 else ''} "
                     "(oldest first):")
        for record in history:
            lines += exit_lines(record, now, prefix="    ")
    return lines


def table_lines(root: Node, now: float, *, max_children: int | None = None) -> list[str]:
    """The running tree as an aligned table (header first), then one line per note
    (``*`` marks a supervisor whose children are not shown)."""
    rows = flatten(root, max_children=max_children)
    lines = _align([COLUMNS, *(cells(r, now) for r in rows)], right=(3,))
    lines += [f"  * {r['path']}: {r['note']}" for r in rows if r.get("note")]
    return lines


# ------------------------------------------------------------- the declared tree


def _summary(node: Node) -> str:
    if node["kind"] == "supervisor":
        parts = [node["strategy"], node["intensity"]]
        if node.get("backend") != "inline":
            parts.append(f"in its own {node['backend']}")
        if node.get("auto_shutdown"):
            parts.append(f"auto_shutdown {node['auto_shutdown']}")
    else:
        parts = [node["backend"], node["target"]]
    parts.append(node["restart"])
    parts.append(f"shutdown {node['shutdown']}")
    if node.get("significant"):
        parts.append("significant")
    return ", ".join(parts)


def declared_text(root: Node) -> list[str]:
    """The declared tree, drawn with guides::

        root  supervisor: one_for_one, at most 1 restart in 5 s, permanent, ...
        ├── web  worker: command, python -m http.server, permanent, shutdown 5 s
        └── jobs  supervisor: one_for_all, ...
            └── worker  worker: process, myapp.jobs:work, ...
    """
    lines: list[str] = []

    def visit(node: Node, prefix: str, connector: str, child_prefix: str) -> None:
        lines.append(f"{prefix}{connector}{node['id']}  {node['kind']}: {_summary(node)}")
        children = node.get("children") or []
        for i, child in enumerate(children):
            last = i == len(children) - 1
            visit(child, prefix + child_prefix, "└── " if last else "├── ",
                  "    " if last else "│   ")

    visit(root, "", "", "")
    return lines


_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_]")


def _mermaid_label(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "#quot;").replace("<", "&lt;").replace(
        ">", "&gt;")


def mermaid(root: Node) -> list[str]:
    """The declared tree as a Mermaid flowchart (for docs): supervisors as rounded
    boxes, workers as rectangles, edges from each supervisor to its children in start
    order."""
    lines = ["flowchart TD"]
    ids: dict[str, str] = {}

    def node_id(path: str) -> str:
        if path not in ids:
            ids[path] = f"n{len(ids)}_{_UNSAFE.sub('_', path.rsplit('/', 1)[-1])}"
        return ids[path]

    def visit(node: Node) -> None:
        me = node_id(node["path"])
        label = _mermaid_label(node["id"])
        if node["kind"] == "supervisor":
            detail = _mermaid_label(node["strategy"])
            lines.append(f'    {me}("{label}<br/>{detail}")')
        else:
            detail = _mermaid_label(f"{node['backend']}, {node['restart']}")
            lines.append(f'    {me}["{label}<br/>{detail}"]')
        for child in node.get("children") or []:
            visit(child)
            lines.append(f"    {me} --> {node_id(child['path'])}")

    visit(root)
    return lines


def json_ready(value: Any) -> Any:
    """``value`` with anything JSON cannot hold turned into a string."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
