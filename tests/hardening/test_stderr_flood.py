"""A child flooding its standard error cannot freeze its tree, and loses nothing
while the supervisor's standard error keeps up.

Each test runs a tree in a subprocess (``stderr_flood_tree.py``) whose command child
and process child write a lot to their standard error, which the supervisor copies to
its own:

* its standard error is a pipe nobody reads: once the pipe is full, a blocking copy
  froze the event loop, and with it every call. ``which_children()`` must answer
  within 100 ms all along, and the bytes that could not be copied be reported;
* its standard error is a pipe read slowly: the copy keeps pace with the reader, so
  nothing is lost, and calls are still answered within 100 ms (a blocking copy made
  them wait for the reader);
* its standard error is a file: the lines of the two children arrive whole (a copy
  of each chunk as read cut lines and mixed the children's in one line).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from otp_py.backends import stderr as copy
from tests.faults.helpers import MARK, marked

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stderr_flood_tree.py")
FLOOD = 100_000_000
"""Bytes each child writes in the flood."""

ANSWER_WITHIN = 0.1
"""The bound on a call while the flood runs (the issue's)."""

FROZEN = 10.0
"""No answer for this long: the loop is frozen (generous for a loaded machine)."""

SLOW_READ = 0.1
"""The slow reader reads at most 64 KiB this often."""

CHILDREN = ("cmd", "proc")
LINE = re.compile(rb"(cmd|proc) (\d{9}) x+")


def run_tree(total: int, stderr: int) -> tuple[list[float], dict[str, Any]]:
    """Run the script with ``stderr`` as its standard error (a descriptor, closed here
    once the script has it) until it has said everything: the times its calls took,
    and its summary. Fails if it goes silent for :data:`FROZEN` seconds. The script is
    killed on the way out, with anything left of it."""
    token = uuid.uuid4().hex
    try:
        proc = subprocess.Popen([sys.executable, SCRIPT, str(total)],
                                stdout=subprocess.PIPE, stderr=stderr,
                                env={**os.environ, MARK: token}, bufsize=0)
    finally:
        os.close(stderr)
    try:
        assert next_message(proc, 60.0) == {"started": True}
        latencies = []
        while "latency" in (message := next_message(proc, FROZEN)):
            latencies.append(message["latency"])
        assert proc.wait(60.0) == 0
        assert message["done"], "the children did not finish writing in time"
        return latencies, message
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        for pid in marked(token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def next_message(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if readable else b""
    if not line:
        raise AssertionError(f"the tree said nothing for {timeout} s (status "
                             f"{proc.poll()}): its event loop is frozen")
    message: dict[str, Any] = json.loads(line)
    return message


def assert_answered(latencies: list[float]) -> None:
    slow = [t for t in latencies if t >= ANSWER_WITHIN]
    assert not slow, (f"which_children() took {max(slow):.3f} s ({len(slow)} of "
                      f"{len(latencies)} calls over {ANSWER_WITHIN} s)")
    assert len(latencies) >= 10  # (enough calls, all along the writing, to mean something)


def assert_lines(data: bytes, total: int) -> None:
    """Every line of both children is there, whole, once, in order."""
    seen: dict[bytes, list[int]] = {b"cmd": [], b"proc": []}
    for line in data.splitlines():
        match = LINE.fullmatch(line)
        assert match is not None and len(line) == 99, f"a line cut or mixed: {line[:200]!r}"
        seen[match[1]].append(int(match[2]))
    for child, numbers in seen.items():
        assert numbers == list(range(total // 100)), f"{child!r}: lines lost or out of order"


def test_a_flood_into_a_full_pipe_leaves_calls_answered() -> None:
    read_end, write_end = os.pipe()  # the supervisor's stderr: never read
    try:
        latencies, summary = run_tree(FLOOD, write_end)
    finally:
        os.close(read_end)
    assert_answered(latencies)
    # Everything was dropped but what the buffers hold (their room, one pipe's worth).
    room = copy.FINAL_BYTES + copy.BUFFER_BYTES + (1 << 20)
    for child in CHILDREN:
        assert FLOOD - room <= summary["dropped"][child] <= FLOOD
    # At most one report per child per second (and one at its end), each saying how
    # much, adding up to the total.
    for child in CHILDREN:
        reports = [r for r in summary["reports"] if r[0] == child]
        times = [r[1] for r in reports]
        assert all(later - earlier >= 0.9
                   for earlier, later in itertools.pairwise(times[:-1])), times
        assert sum(r[2] for r in reports) == reports[-1][3] == summary["dropped"][child]
        assert all(f"bytes of the stderr of {child} dropped" in r[4] for r in reports)


class SlowReader(threading.Thread):
    """Reads a pipe slowly, but never stops: a target that keeps up, barely."""

    def __init__(self, fd: int) -> None:
        super().__init__(name="slow-reader", daemon=True)
        self.fd = fd
        self.data = bytearray()

    def run(self) -> None:
        while chunk := os.read(self.fd, 65536):
            self.data += chunk
            time.sleep(SLOW_READ)


def test_a_slow_reader_loses_nothing_and_calls_are_answered() -> None:
    total = 1_000_000  # per child: with the reader's pace, a few seconds
    read_end, write_end = os.pipe()
    reader = SlowReader(read_end)
    reader.start()
    try:
        latencies, summary = run_tree(total, write_end)
    finally:
        reader.join(60.0)
        os.close(read_end)
    assert not reader.is_alive()
    assert_answered(latencies)
    assert summary["dropped"] == {} and summary["reports"] == []
    assert_lines(bytes(reader.data), total)


def test_the_lines_of_two_children_stay_whole(tmp_path: Any) -> None:
    total = 4_000_000
    path = tmp_path / "stderr"
    _, summary = run_tree(total, os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    assert summary["dropped"] == {} and summary["reports"] == []
    assert_lines(path.read_bytes(), total)
