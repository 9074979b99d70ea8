"""A hostile child's exception text, shown to the operator by ``otp-py status``: its
control characters (a terminal's escape sequences, a newline that splits a table row)
and lone surrogates must reach the terminal escaped, never as they are."""

from __future__ import annotations

import io

from otp_py.cli import render
from otp_py.cli.view import PlainView

HOSTILE = "RuntimeError: " + chr(0xDCFF) + "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\nsecond\rline"


def unsafe(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F
            or 0xD800 <= ord(c) <= 0xDFFF]


def test_status_table_row_is_one_printable_line() -> None:
    row = {"path": "t/bad", "kind": "worker", "backend": "thread", "state": "running",
           "restarts": 1, "pid": None, "started_at": 10.0,
           "last_exit": {"reason": HOSTILE, "at": 9.0}}
    line = "  ".join(render.cells(row, 12.0))
    assert "\n" not in line and not unsafe(line), repr(line)
    assert "\\x1b]0;pwned" in line


def test_status_path_history_is_printable_but_keeps_its_lines() -> None:
    record = {"at": 9.0, "reason": HOSTILE, "uptime": 1.0,
              "traceback": "Traceback (most recent call last):\n" + HOSTILE + "\n",
              "stderr": "\x1b[2Jwiped\n"}
    lines = render.exit_lines(record, 12.0)
    assert not any(unsafe(line) for line in lines), lines
    assert any("\\x1b[2Jwiped" in line for line in lines)
    assert any(line.strip() == "Traceback (most recent call last):" for line in lines)


class _Report:
    reason = None

    def describe(self) -> str:
        return "t: bad exited: " + HOSTILE


def test_run_event_lines_are_printable() -> None:
    out = io.StringIO()
    view = PlainView(out, io.StringIO(), tables=False)
    view.event(0.0, _Report())  # type: ignore[arg-type]
    assert not unsafe(out.getvalue().rstrip("\n")), repr(out.getvalue())
    assert out.getvalue().count("\n") == 1
