"""Drive the real ``otp-py`` console script in a subprocess, and read what it says
without sleeping and hoping: output lines are collected by reader threads and waited
for with deadlines."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

import psutil

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0


def script() -> str:
    """The ``otp-py`` console script installed next to this interpreter."""
    path = Path(sys.executable).with_name("otp-py")
    assert path.exists(), f"{path} is missing: install the project with pip install -e ."
    return str(path)


@contextlib.contextmanager
def runtime_dir() -> Iterator[Path]:
    """A short private directory (Unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="otpcli-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def environment(runtime: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OTP_PY_SOCKET", None)
    env["XDG_RUNTIME_DIR"] = str(runtime)
    env["XDG_STATE_HOME"] = str(runtime / "state")  # where `otp-py run` keeps its logs
    env["COLUMNS"] = "200"
    return env


def run(args: Sequence[str], runtime: Path, *, timeout: float = TIMEOUT,
        cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``otp-py ARGS`` to completion."""
    return subprocess.run([script(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=environment(runtime), check=False)


class Cli:
    """``otp-py ARGS`` running in the background; its stdout and stderr lines are
    collected as they come."""

    def __init__(self, args: Sequence[str], runtime: Path, *, cwd: Path = ROOT,
                 argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
                 ) -> None:
        """``argv`` replaces the command (``otp-py ARGS``), e.g. to run it through a
        shell that closes a stream; ``env`` replaces the environment made from
        ``runtime``."""
        self.proc = subprocess.Popen(
            list(argv) if argv is not None else [script(), *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=cwd,
            env=dict(env) if env is not None else environment(runtime))
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.proc.stdout, self.proc.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _drain(self, timeout: float) -> bool:
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            return False
        if line is not None:
            self.lines.append(line)
        return True

    def wait_for(self, pattern: str, timeout: float = TIMEOUT, *, nth: int = 1) -> str:
        """The first (or ``nth``) output line, so far or to come, matching ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        matched = 0
        while True:
            for line in self.lines[seen:]:
                if regex.search(line):
                    matched += 1
                    if matched == nth:
                        return line
            seen = len(self.lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s; "
                                     f"output so far:\n" + "\n".join(self.lines))
            if not self._drain(min(remaining, 0.5)) and self.proc.poll() is not None \
                    and self._queue.empty() and not any(r.is_alive() for r in self._readers):
                raise AssertionError(f"otp-py exited ({self.proc.returncode}) before printing "
                                     f"{pattern!r}; output:\n" + "\n".join(self.lines))

    def wait(self, timeout: float = TIMEOUT) -> int:
        """Wait for the command to end; collect the rest of its output."""
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        while self._drain(0):
            pass
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def close(self) -> None:
        """Make sure the command and everything it started are gone."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                _kill_tree(self.proc.pid)
                self.proc.wait(5)
        for reader in self._readers:
            reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Cli:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _kill_tree(pid: int) -> None:
    try:
        parent = psutil.Process(pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for proc in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


def wait_until(predicate: Callable[[], object], timeout: float = TIMEOUT,
               what: str = "condition") -> None:
    """Poll ``predicate()`` until true (for things with no event to wait on, such as a
    socket file appearing), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.02)
