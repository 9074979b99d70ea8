"""Output capture in the library: process and command children's stdout and stderr
in rotated files per child, configured on the specs (``otp.OutputCapture``), written
by threads so that the tree's loop never waits on a disk or a pipe."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import tree

import otp_py as otp
from otp_py import reports as rp
from otp_py.backends import output
from tests.reports import DEFAULT_TIMEOUT

PY = sys.executable
PRINTER = ("import os, sys\n"
           "for i in range(3):\n"
           "    print(os.getpid(), 'out', i, flush=True)\n"
           "    print(os.getpid(), 'err', i, file=sys.stderr, flush=True)\n"
           "sys.exit(2)\n")
MARKER = re.compile(r"^--- otp-py: started pid (\d+)(?: \(restart (\d+)\))? at ", re.M)


def talk_and_crash(count_file: str) -> None:
    """A process child: a line on each stream (print, unflushed), then a crash at
    its first two starts; at its third it stays up."""
    print("proc out", os.getpid())
    print("proc err", os.getpid(), file=sys.stderr)
    with open(count_file, "a+") as file:
        file.write("x")
        file.seek(0)
        runs = len(file.read())
    if runs < 3:
        raise RuntimeError("talked")
    otp.wait_for_stop()
    time.sleep(600)


def wait_until(predicate: object, what: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout} s")
        time.sleep(0.02)


def text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def starts(path: Path) -> list[tuple[int, int]]:
    """(pid, restart) of each start marker in the file at ``path``."""
    return [(int(pid), int(again or 0)) for pid, again in MARKER.findall(text(path))]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's state directory, in the test's own."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


def test_capture_is_off_by_default_and_on_where_the_specs_say(state: Path,
                                                             tmp_path: Path) -> None:
    command = otp.ChildSpec.command("cmd", [PY, "-c", PRINTER], restart="temporary")
    with otp.start(tree(command)) as sup:
        wait_until(lambda: not any(c.state == "running" for c in sup.which_children()),
                   "the command's end")
    assert not state.exists() and not (tmp_path / "home").exists()  # the library default

    spec = tree(
        command,
        otp.ChildSpec.process("proc", talk_and_crash, args=(str(tmp_path / "runs"),)),
        otp.ChildSpec.command("quiet", [PY, "-c", PRINTER], restart="temporary",
                              output=otp.OutputCapture(enabled=False)),
        otp.SupervisorSpec(id="pool", output=otp.OutputCapture(dir=str(tmp_path / "pool")),
                           children=[otp.ChildSpec.command("w", [PY, "-c", PRINTER],
                                                           restart="temporary")]),
        output=otp.OutputCapture(),
    )
    directory = state / "otp-py" / "root"  # the default directory
    with otp.start(spec) as sup:
        wait_until(lambda: len(starts(directory / "proc.stdout.log")) == 3
                   and "proc out" in text(directory / "proc.stdout.log").splitlines()[-1]
                   and "out 2" in text(tmp_path / "pool" / "pool" / "w.stdout.log"),
                   "three starts of proc, and pool/w's lines")
        history = sup.child_history("proc")
    output.flush(10)  # (the writer thread may still be writing the last lines)
    out = text(directory / "cmd.stdout.log").splitlines()
    [(pid, restart)] = starts(directory / "cmd.stdout.log")
    assert restart == 0
    assert out[1:] == [f"{pid} out {i}" for i in range(3)] + [
        out[-1]] and out[-1].startswith(f"--- otp-py: pid {pid} ended: exited with status 2")
    assert [line for line in text(directory / "cmd.stderr.log").splitlines()
            if not line.startswith("---")] == [f"{pid} err {i}" for i in range(3)]
    # each start of a restarted child is marked, its lines after it (print included)
    marks = starts(directory / "proc.stdout.log")
    assert [again for _, again in marks] == [0, 1, 2]
    for proc_pid, _ in marks:
        assert f"proc out {proc_pid}" in text(directory / "proc.stdout.log")
    # the crash history keeps the tail of stderr as before
    assert all(r.stderr is not None and "proc err" in r.stderr for r in history), history
    # turned off for one child; another directory for a subtree
    assert not (directory / "quiet.stdout.log").exists()
    assert "out 2" in text(tmp_path / "pool" / "pool" / "w.stdout.log")
    # the tree's events
    events = text(directory / "tree.log")
    assert re.search(r"^\S+ root: started proc$", events, re.M), events
    assert events.splitlines()[-1].endswith("--- otp-py: tree ended: shutdown")


def test_rotation_keeps_whole_lines_and_the_backups(tmp_path: Path) -> None:
    lines = ("import sys\nfor i in range(300):\n    print('%05d' % i + ' ' + 'x' * 20)\n"
             "sys.stdout.flush()\n")
    capture = otp.OutputCapture(dir=str(tmp_path), max_bytes=500, backups=2)
    spec = tree(otp.ChildSpec.command("cmd", [PY, "-c", lines], restart="temporary"),
                output=capture)
    with otp.start(spec):
        wait_until(lambda: "ended" in text(tmp_path / "cmd.stdout.log"), "the end marker")
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("cmd.stdout"))
    assert names == ["cmd.stdout.log", "cmd.stdout.log.1", "cmd.stdout.log.2"]
    numbers = []
    for name in ("cmd.stdout.log.2", "cmd.stdout.log.1", "cmd.stdout.log"):
        content = (tmp_path / name).read_bytes()
        assert len(content) <= 500 and content.endswith(b"\n"), name
        numbers += [int(line[:5]) for line in content.decode().splitlines()
                    if not line.startswith("---")]
    assert numbers == list(range(numbers[0], 300)), numbers  # whole, in order, newest kept


def test_passthrough_prefixes_each_line_with_the_childs_path(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    spec = tree(otp.SupervisorSpec(id="pool", children=[
        otp.ChildSpec.command("cmd", [PY, "-c", PRINTER], restart="temporary")]),
        output=otp.OutputCapture(dir=str(tmp_path), passthrough=True))
    with otp.start(spec):
        wait_until(lambda: "ended" in text(tmp_path / "pool" / "cmd.stderr.log"), "the end")
    output.flush(10)
    captured = capfd.readouterr()
    [(pid, _)] = starts(tmp_path / "pool" / "cmd.stdout.log")
    assert [line for line in captured.out.splitlines() if " | " in line] == [
        f"root/pool/cmd | {pid} out {i}" for i in range(3)]
    assert [line for line in captured.err.splitlines() if " | " in line] == [
        f"root/pool/cmd | {pid} err {i}" for i in range(3)]


def test_thread_and_task_children_output_cannot_be_captured() -> None:
    async def task() -> None:
        pass

    for make in (lambda: otp.ChildSpec.thread("t", time.sleep, args=(1,),
                                              output=otp.OutputCapture()),
                 lambda: otp.ChildSpec.task("a", task, output=otp.OutputCapture())):
        with pytest.raises(otp.SpecError, match=r"field 'output'.*cannot be captured"):
            make()
    with pytest.raises(otp.SpecError, match="field 'max_bytes'"):
        otp.OutputCapture(max_bytes=-1)
    assert otp.OutputCapture(max_bytes="2MB").max_bytes == 2 << 20
    # inherited by a thread child: nothing to capture, nothing refused
    otp.SupervisorSpec(id="r", output=otp.OutputCapture(),
                       children=[otp.ChildSpec.thread("t", time.sleep, args=(1,))])


@contextlib.contextmanager
def drained_at_the_end(fifo: Path) -> Iterator[None]:
    """Open ``fifo`` for reading at the end, and read it until the log writer thread
    has given up on it (so that it does not stay blocked in its ``open``)."""
    try:
        yield
    finally:
        done = threading.Event()
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)

        def drain() -> None:
            while not done.is_set():
                with contextlib.suppress(BlockingIOError):
                    if not os.read(fd, 1 << 16):
                        time.sleep(0.01)

        reader = threading.Thread(target=drain)
        reader.start()
        try:
            wait_until(lambda: not any(t.name == "otp:files-copy"
                                       for t in threading.enumerate()), "the writer's end")
        finally:
            done.set()
            reader.join()
            os.close(fd)


def test_a_log_file_that_never_drains_does_not_block_the_loop(tmp_path: Path) -> None:
    """The log file is a FIFO nobody opens: the writer thread blocks in ``open`` for
    ever. The tree's calls must still be answered at once, the flood keep running
    (dropped, and reported as dropped), and the stderr tail kept."""
    fifo = tmp_path / "flood.stdout.log"
    os.mkfifo(fifo)
    flood = ("import sys, time\nline = 'x' * 99 + '\\n'\nsys.stderr.write('last words\\n')\n"
             "sys.stderr.flush()\nend = time.monotonic() + 4\nwhile time.monotonic() < end:\n"
             "    sys.stdout.write(line)\n")
    reports: list[rp.Report] = []
    spec = tree(otp.ChildSpec.command("flood", [PY, "-c", flood], restart="transient"),
                output=otp.OutputCapture(dir=str(tmp_path)))
    with drained_at_the_end(fifo), otp.start(spec, on_report=reports.append) as sup:
        wait_until(lambda: any(isinstance(r, rp.OutputDropped) for r in reports),
                   "an OutputDropped report")
        worst = 0.0
        while True:  # (until the flood ends by itself, after 4 s)
            began = time.monotonic()
            [row] = sup.which_children()
            worst = max(worst, time.monotonic() - began)
            if row.state != "running":
                break
        # (generous for a loaded machine: a blocked loop would not answer at all)
        assert worst < 1.0, worst
        dropped = [r for r in reports if isinstance(r, rp.OutputDropped)]
        assert dropped[0].stream == "stdout" and str(fifo) in dropped[0].target
        assert str(fifo) in dropped[0].describe()
        [record] = sup.child_history("flood")
    assert record.stderr is not None and "last words" in record.stderr
    assert text(tmp_path / "flood.stderr.log").splitlines()[1] == "last words"
