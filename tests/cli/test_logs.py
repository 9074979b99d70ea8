"""``otp-py logs`` against a running ``otp-py run``: real socket, real child processes.

``otp-py run`` captures each command and process child's stdout and stderr into files
of the tree's log directory (here ``$XDG_STATE_HOME/otp-py/<tree>``, the default,
under the test's private runtime directory), rotated by size, with a marker line at
each start; ``otp-py logs`` finds them through the control socket (or ``--log-dir``),
prints their end, and with ``-f`` follows them across rotations and restarts.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import time
from pathlib import Path

from tests.cli.clitools import Cli, run, wait_until

PY = json.dumps(sys.executable)

COUNTER = json.dumps(
    "import os, sys, time\n"
    "for i in range(LINES):\n"
    "    print(os.getpid(), 'out', i, flush=True)\n"
    "    print(os.getpid(), 'err', i, file=sys.stderr, flush=True)\n"
    "    time.sleep(PAUSE)\n"
    "time.sleep(STAY)\n"
    "sys.exit(1)\n")
"""A command child printing numbered lines (with its pid) to both streams, then
failing after a while, to be restarted."""

MARKER = re.compile(r"^--- otp-py: started pid (\d+)(?: \(restart (\d+)\))? at ")


def counter(lines: int, pause: float, stay: float) -> str:
    return (COUNTER.replace("LINES", str(lines)).replace("PAUSE", str(pause))
            .replace("STAY", str(stay)))


def tree_file(tmp_path: Path, body: str, name: str = "logtree") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'id = "{name}"\nintensity = {{ max_restarts = 1000, period = 1 }}\n'
                    + body)
    return path


def log_dir(runtime: Path, tree: str = "logtree") -> Path:
    """Where ``otp-py run`` keeps the tree's logs by default (see clitools)."""
    return runtime / "state" / "otp-py" / tree


def wait_for_file_line(path: Path, pattern: str, timeout: float = 30.0) -> None:
    regex = re.compile(pattern, re.MULTILINE)
    wait_until(lambda: path.exists() and regex.search(path.read_text()) is not None,
               timeout, what=f"{pattern!r} in {path}")


def test_logs_prints_the_end_of_a_childs_stdout_and_stderr_and_the_tree_log(
    tmp_path: Path, runtime: Path
) -> None:
    path = tree_file(tmp_path, f"""
[[children]]
id = "talker"
command = [{PY}, "-c", {counter(20, 0.0, 600)}]
""")
    with Cli(["run", str(path), "--view", "events"], runtime) as cli:
        cli.wait_for(r"control socket ")
        out = log_dir(runtime) / "talker.stdout.log"
        wait_for_file_line(out, r" out 19$")
        result = run(["logs", "talker", "-n", "3"], runtime)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert [line.split()[1:] for line in lines] == [["out", "17"], ["out", "18"],
                                                        ["out", "19"]], lines
        pid = lines[0].split()[0]
        # --stderr, and the root's id in the path as status shows it
        result = run(["logs", "logtree/talker", "--stderr", "-n", "2"], runtime)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [f"{pid} err 18", f"{pid} err 19"]
        # the whole file starts with the start marker
        result = run(["logs", "talker", "-n", "100"], runtime)
        first = result.stdout.splitlines()[0]
        assert MARKER.match(first) and MARKER.match(first).group(1) == pid, first  # type: ignore[union-attr]
        # no path: the tree's own events
        result = run(["logs", "-n", "50"], runtime)
        assert result.returncode == 0, result.stderr
        assert re.search(r"^\S+ logtree: started talker$", result.stdout, re.MULTILINE), \
            result.stdout
        # nothing else is written on the terminal: the output is in the files
        assert not any(" out " in line or " err " in line for line in cli.lines), cli.output
        assert "logs in " + str(log_dir(runtime)) in cli.output
        # a child that is not there, a stream that is not one
        result = run(["logs", "nobody"], runtime)
        assert result.returncode == 1
        assert "no child 'nobody' under 'logtree'" in result.stderr
    # the tree has stopped: --log-dir reads the files without a socket
    result = run(["logs", "talker", "-n", "1", "--log-dir", str(log_dir(runtime))], runtime)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("--- otp-py: pid ") and " ended: " in result.stdout


def test_rotation_at_a_small_max_bytes_keeps_the_backups(tmp_path: Path,
                                                        runtime: Path) -> None:
    path = tree_file(tmp_path, f"""
[[children]]
id = "talker"
command = [{PY}, "-c", {counter(200, 0.0, 600)}]
output = {{ max_bytes = 400, backups = 3 }}
""")
    with Cli(["run", str(path), "--view", "events"], runtime) as cli:
        cli.wait_for(r"control socket ")
        directory = log_dir(runtime)
        wait_for_file_line(directory / "talker.stdout.log", r" out 199$")
        wait_for_file_line(directory / "talker.stderr.log", r" err 199$")
        names = sorted(p.name for p in directory.iterdir() if p.name.startswith("talker.std"))
        assert names == sorted(f"talker.{stream}.log{suffix}" for stream in ("stdout", "stderr")
                               for suffix in ("", ".1", ".2", ".3")), names
        for file in directory.glob("talker.*"):
            assert 0 < file.stat().st_size <= 400, file
        # the newest lines, in order, whole, across the current file and its backups
        text = b"".join((directory / f"talker.stdout.log{s}").read_bytes()
                        for s in (".3", ".2", ".1", "")).decode()
        numbers = [int(line.split()[2]) for line in text.splitlines()]
        assert numbers == list(range(numbers[0], 200)) and numbers[0] > 0, numbers  # (older: gone)
        result = run(["logs", "talker", "-n", "30"], runtime)  # from the backups too
        assert [int(line.split()[2]) for line in result.stdout.splitlines()] == \
            list(range(170, 200)), result.stdout


def test_follow_across_rotations_and_restarts_shows_each_start(
    tmp_path: Path, runtime: Path
) -> None:
    # Each start prints 8 lines (about 150 bytes) and fails: a restart at every start
    # and a rotation every two or three.
    path = tree_file(tmp_path, f"""
[[children]]
id = "talker"
command = [{PY}, "-c", {counter(8, 0.02, 0.1)}]
output = {{ max_bytes = 300, backups = 1 }}
""")
    with Cli(["run", str(path), "--view", "events"], runtime) as cli:
        cli.wait_for(r"control socket ")
        wait_until((log_dir(runtime) / "talker.stdout.log").exists,
                   what="the log file")
        with Cli(["logs", "talker", "-f", "-n", "0"], runtime) as follower:
            follower.wait_for(r"^--- otp-py: started pid \d+ \(restart \d+\)", nth=6)
            rotated = (log_dir(runtime) / "talker.stdout.log.1").exists()
        assert follower.proc.returncode == 0, follower.output
    assert rotated
    starts = [i for i, line in enumerate(follower.lines) if MARKER.match(line)]
    assert len(starts) >= 6, follower.output
    restarts = []
    # Every start followed from its marker is complete: its 8 lines, in order, from
    # the pid the marker names, then its end; nothing lost at a rotation.
    for first, after in itertools.pairwise(starts):
        match = MARKER.match(follower.lines[first])
        assert match is not None
        pid, restart = match.group(1), match.group(2)
        restarts.append(int(restart))
        body = follower.lines[first + 1:after]
        assert body == [f"{pid} out {i}" for i in range(8)] + [
            f"--- otp-py: pid {pid} ended: exited with status 1 at " + body[-1].rsplit(
                " at ", 1)[-1]], follower.output
    assert restarts == list(range(restarts[0], restarts[0] + len(restarts))), restarts


def test_follow_the_stderr_of_a_child_started_later(tmp_path: Path, runtime: Path) -> None:
    path = tree_file(tmp_path, f"""
[[children]]
id = "talker"
command = [{PY}, "-c", {counter(3, 0.0, 600)}]
""")
    directory = tmp_path / "logs"
    with Cli(["run", str(path), "--view", "events", "--log-dir", str(directory)],
             runtime) as cli:
        cli.wait_for(r"control socket ")
        # -f before anything is in the file it names: the tree's answer, then waiting
        with Cli(["logs", "talker", "--stderr", "-f"], runtime) as follower:
            line = follower.wait_for(r" err 2$")
            assert line.endswith(" err 2")
        assert any(MARKER.match(x) for x in follower.lines), follower.output
        assert not any(" out " in x for x in follower.lines), follower.output
    assert (directory / "talker.stderr.log").exists()
    assert (directory / "tree.log").exists()


def test_passthrough_prefixes_each_line_with_the_childs_path(tmp_path: Path,
                                                            runtime: Path) -> None:
    path = tree_file(tmp_path, f"""
[[children]]
id = "talker"
command = [{PY}, "-c", {counter(3, 0.0, 600)}]
""")
    with Cli(["run", str(path), "--view", "events", "--passthrough"], runtime) as cli:
        cli.wait_for(r"control socket ")
        line = cli.wait_for(r"^logtree/talker \| \d+ out 2$")
        pid = line.split(" | ")[1].split()[0]
        cli.wait_for(rf"^logtree/talker \| {pid} err 2$")  # (on stderr)
        wait_for_file_line(log_dir(runtime) / "talker.stdout.log", rf"^{pid} out 2$")


def test_a_log_file_nobody_reads_does_not_stall_the_tree(tmp_path: Path,
                                                         runtime: Path) -> None:
    """The log file of a flooding child is a FIFO that no one opens: the writer
    thread blocks in ``open`` for ever. The tree must still answer (status), report
    the dropped output, and stop in order."""
    directory = tmp_path / "logs"
    directory.mkdir()
    os.mkfifo(directory / "flood.stdout.log")
    flood = json.dumps("import sys\nline = 'x' * 99 + '\\n'\nwhile True:\n"
                       "    sys.stdout.write(line)\n")
    path = tree_file(tmp_path, f"""
[[children]]
id = "flood"
command = [{PY}, "-c", {flood}]
""")
    with Cli(["run", str(path), "--view", "events", "--log-dir", str(directory)],
             runtime) as cli:
        cli.wait_for(r"control socket ")
        cli.wait_for(r"logtree: \d+ bytes of the stdout of flood dropped \(its log file "
                     + re.escape(str(directory / "flood.stdout.log")) + " does not keep up")
        for _ in range(3):
            began = time.monotonic()
            result = run(["status", "--timeout", "10"], runtime)
            assert result.returncode == 0, result.stderr
            assert time.monotonic() - began < 10
            assert re.search(r"logtree/flood\s+command\s+running", result.stdout), \
                result.stdout
        cli.wait_for(r"dropped", nth=2)  # still flooding, still dropped, still counted
        result = run(["ctl", "stop"], runtime)
        assert result.returncode == 0, result.stderr
        assert cli.wait(30) == 0, cli.output
    assert "tree 'logtree' ended: shutdown" in cli.output


def test_a_wrong_output_setting_is_refused_at_its_line(tmp_path: Path, runtime: Path) -> None:
    path = tree_file(tmp_path, f"""
[[children]]
id = "talker"
command = [{PY}, "-c", "pass"]
output = {{ max_bytes = "ten", keep = 3 }}

[[children]]
id = "t"
start = "time:sleep"
args = [1]
backend = "thread"
output = true
""")
    result = run(["check", str(path)], runtime)
    assert result.returncode == 2, result.stdout
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{path}:7: children[0]: child 'talker': field 'output': "
                               "unknown key 'keep'"), lines
    assert lines[1].startswith(f"{path}:14: children[1]: child 't': field 'output': "
                               "a thread child runs in the supervisor's own process"), lines
