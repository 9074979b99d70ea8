"""The pool example of "Coming from celery.supervisor" runs as written.

``examples/celery_pool.py`` is run as a program, the way the page tells readers to:
it prints, its pool's process is killed and comes back, SIGTERM stops it, and
nothing it started is left behind. Every wait is on its output, with a deadline.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any

import psutil

from tests.compat.harness import assert_all_gone
from tests.reports import DEFAULT_TIMEOUT

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "celery_pool.py"
TOKEN_VARIABLE = "OTP_PY_EXAMPLE_RUN"
"""Set in the example's environment, so every process it starts can be found."""


class Output:
    """The lines a program prints, read as they come."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._fd = stream.fileno()
        self._partial = b""
        self.lines: list[str] = []
        self._cursor = 0
        self.closed = False

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return
        chunk = os.read(self._fd, 65536)
        if not chunk:
            self.closed = True
            return
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        self.lines += [line.decode() for line in complete]

    def expect(self, pattern: str, timeout: float = DEFAULT_TIMEOUT) -> re.Match[str]:
        """The next line (after the last one expected) that matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self._cursor, len(self.lines)):
                match = re.fullmatch(pattern, self.lines[index])
                if match:
                    self._cursor = index + 1
                    return match
            self._cursor = len(self.lines)
            remaining = deadline - time.monotonic()
            if self.closed or remaining <= 0:
                raise AssertionError(f"no line matching {pattern!r}; got {self.lines}")
            self._read(remaining)


def processes_with(token: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(TOKEN_VARIABLE) == token:
                found.append(process)
        except psutil.Error:
            pass
    return found


def test_the_pool_example_runs_as_written(tmp_path: Any) -> None:
    token = uuid.uuid4().hex
    errors = tmp_path / "stderr.txt"
    with open(errors, "wb") as stderr:
        program = subprocess.Popen(
            [sys.executable, str(EXAMPLE)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, TOKEN_VARIABLE: token},
        )
    assert program.stdout is not None
    output = Output(program.stdout)
    try:
        first = int(output.expect(r"pool process (\d+) started")[1])
        output.expect(r"squares: \[0, 1, 4, 9, 16\]")
        assert len(psutil.Process(first).children()) == 2  # the pool's workers
        started = {p.pid for p in processes_with(token)}  # with otp_py's guardian

        os.kill(first, signal.SIGKILL)  # as the example's docstring suggests
        second = int(output.expect(r"pool process (\d+) started")[1])
        assert second != first
        output.expect(r"squares: \[0, 1, 4, 9, 16\]")
        everything = started | {p.pid for p in processes_with(token)}

        program.send_signal(signal.SIGTERM)
        output.expect("stopped")
        assert program.wait(DEFAULT_TIMEOUT) == 0, errors.read_text()
        assert_all_gone(everything)
        assert processes_with(token) == []
    finally:
        if program.poll() is None:
            program.kill()
            program.wait()
        program.stdout.close()
