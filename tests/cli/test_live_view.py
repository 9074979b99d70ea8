"""The live view in a real pseudo-terminal, rendered by a terminal emulator (pyte):
at 80x24 every row fits on one line, a tree taller than the screen is collapsed with a
count, the events stay visible, the last crash is shown, and after Ctrl-C the final
frame says stopped; at 200x50 the whole tree is shown."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.clitools import ROOT, TIMEOUT, _kill_tree, environment, script

pyte = pytest.importorskip("pyte")

LONG = "a-child-whose-name-is-much-too-long-for-any-terminal"
POOL = 30

CONTROLLING_TTY = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                   "os.execvp(sys.argv[1], sys.argv[1:])")
"""Make fd 0 (the terminal) the controlling terminal of this new session, then exec:
Ctrl-C typed on it then sends SIGINT, as in a real terminal."""


def tree_file(tmp_path: Path) -> Path:
    lines = ['id = "lv"', "intensity = { max_restarts = 1000, period = 5 }", "",
             "[[children]]", 'id = "crasher"', 'start = "tests.cli.targets:crash_after"',
             'backend = "thread"', "args = [0.5]", "",
             "[[children]]", f'id = "{LONG}"', 'start = "tests.cli.targets:task_forever"', "",
             "[[children]]", 'id = "pool"']
    for i in range(POOL):
        lines += ["  [[children.children]]", f'  id = "worker-{i:02d}"',
                  '  start = "tests.cli.targets:task_forever"', ""]
    path = tmp_path / "tree.toml"
    path.write_text("\n".join(lines))
    return path


class Terminal:
    """``otp-py ARGS`` on a pseudo-terminal of ``columns`` x ``rows``, its output fed
    to a terminal emulator whose screen the test reads."""

    def __init__(self, args: list[str], runtime: Path, columns: int, rows: int) -> None:
        self.screen = pyte.Screen(columns, rows)
        self._stream = pyte.ByteStream(self.screen)
        self._lock = threading.Lock()
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = environment(runtime)
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        env["TERM"] = "xterm-256color"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CONTROLLING_TTY, script(), *args],
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True, cwd=ROOT,
            env=env)
        os.close(slave)
        self._reading = True
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while self._reading:
            if not select.select([self.master], [], [], 0.1)[0]:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._stream.feed(data)

    def lines(self) -> list[str]:
        with self._lock:
            return [line.rstrip() for line in self.screen.display]

    def wait_for(self, predicate: Callable[[list[str]], bool], what: str,
                 timeout: float = TIMEOUT) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            ended = not self._reader.is_alive()  # (read everything the command wrote)
            lines = self.lines()
            if predicate(lines):
                return lines
            if ended or time.monotonic() > deadline:
                raise AssertionError(f"{what}: not on the screen within {timeout} s:\n"
                                     + "\n".join(lines))
            time.sleep(0.05)

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(2)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                _kill_tree(self.proc.pid)
                self.proc.wait(5)
        self._reading = False
        self._reader.join(5)
        os.close(self.master)


@pytest.fixture
def terminal(request: pytest.FixtureRequest, tmp_path: Path,
             runtime: Path) -> Iterator[Terminal]:
    columns, rows = request.param
    term = Terminal(["run", str(tree_file(tmp_path)), "--view", "live", "--interval", "0.5"],
                    runtime, columns, rows)
    try:
        yield term
    finally:
        term.close()


def _header(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if re.match(r"PATH +KIND +STATE", line))


def _table(lines: list[str]) -> list[str]:
    """The rows between the header and the last-crash line."""
    start = _header(lines) + 1
    end = next(i for i in range(start, len(lines))
               if lines[i].startswith(("last crash: ", "no crash yet")))
    return lines[start:end]


def _events(lines: list[str]) -> list[str]:
    return [line for line in lines if re.match(r"\d\d:\d\d:\d\d\.\d{3} ", line)]


def _ready(lines: list[str]) -> bool:
    """The table, the last crash, and (once the first crash's traceback has scrolled
    up) a few events."""
    return any(line.startswith("last crash: lv/crasher") for line in lines) and any(
        re.match(r"PATH +KIND +STATE", line) for line in lines) and len(_events(lines)) >= 3


@pytest.mark.parametrize("terminal", [(80, 24)], indirect=True)
def test_the_live_view_fits_80_by_24(terminal: Terminal) -> None:
    lines = terminal.wait_for(_ready, "the table and the last crash")
    rows = _table(lines)
    header = lines[_header(lines)]
    assert header.split() == ["PATH", "KIND", "STATE", "RESTARTS", "PID", "UP", "LAST", "EXIT"]
    # Every row on one line of its own: each starts with a path (or a count of the
    # rows left out), none is the wrapped tail of the row above.
    for row in rows:
        assert re.match(r"(lv|\u2026|\s+\.\.\. \d+ more)", row), (row, lines)
    assert rows[0].startswith("lv ")
    crasher = next(row for row in rows if row.startswith("lv/crasher"))
    assert re.search(r"thread +(running|restarting) +\d+ ", crasher), crasher
    assert "RuntimeError" in crasher and crasher.endswith("\u2026")  # cut, not wrapped
    assert len(crasher) == 80
    long_row = next(row for row in rows if re.match(r"\u2026\S*terminal ", row))
    assert long_row.startswith("\u2026") and "asyncio" in long_row  # the path cut at its start
    # The pool does not fit: fewer of its children, and a count of the others.
    assert any(re.match(r"\s+\.\.\. \d+ more", row) for row in rows), rows
    assert len(rows) < POOL
    # The events stay visible above the table, and the last crash below it.
    title = _header(lines) - 1
    assert lines[title].startswith("lv  up ")
    assert len(_events(lines[:title])) >= 3, lines
    # a repeated crash: one line (cut to the width), its traceback not printed again
    assert any(line.endswith("lv: crasher exited: RuntimeError: crashed after 0.5 s; "
                             "restart (sa\u2026") for line in lines), lines
    crash = next(line for line in lines if line.startswith("last crash: "))
    assert "lv/crasher" in crash and "RuntimeError: crashed after 0.5 s" in crash
    assert any(re.match(r"\s+File \".*targets.py\", line \d+, in crash_after", line)
               for line in lines[lines.index(crash):]), lines

    terminal.type(b"\x03")  # Ctrl-C, typed on the terminal
    assert terminal.proc.wait(TIMEOUT) == 0
    lines = terminal.wait_for(lambda ls: any(line.startswith("lv  stopped") for line in ls),
                              "the final frame")
    rows = _table(lines)
    states = [row.split()[2] for row in rows if not re.match(r"\s+\.\.\.", row)]
    assert states and set(states) == {"stopped"}, lines
    assert not any(" running " in row for row in rows)


@pytest.mark.parametrize("terminal", [(200, 50)], indirect=True)
def test_the_live_view_at_200_by_50_shows_the_whole_tree(terminal: Terminal) -> None:
    lines = terminal.wait_for(_ready, "the table and the last crash")
    rows = _table(lines)
    assert [row.split()[0] for row in rows] == [  # --max-children's 20 per supervisor
        "lv", "lv/crasher", f"lv/{LONG}", "lv/pool",
        *(f"lv/pool/worker-{i:02d}" for i in range(20)), "..."]
    assert rows[-1] == "    ... 10 more (10 running)"
    crasher = next(row for row in rows if row.startswith("lv/crasher"))
    assert re.search(r"RuntimeError: crashed after 0\.5 s \(\d", crasher), crasher
    terminal.type(b"\x03")
    assert terminal.proc.wait(TIMEOUT) == 0
    lines = terminal.wait_for(lambda ls: any(line.startswith("lv  stopped") for line in ls),
                              "the final frame")
    rows = _table(lines)
    assert {row.split()[2] for row in rows[:-1]} == {"stopped"}
    assert rows[-1] == "    ... 10 more (0 running)"
