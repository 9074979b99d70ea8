"""Every example the documentation shows runs as written, and prints what the pages say.

Each script in ``examples/`` runs in a subprocess of a small runner that makes itself
the *subreaper* of everything the example starts: whatever the example leaves behind
(a child process, a pool worker, a fork server that did not exit) is adopted by the
runner, which fails if anything is still alive a few seconds after the example ended.

The last tests check the ``example-output`` Sphinx directive (``docs/_ext``): the
output a page shows is exactly what running its script prints.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"
EXTENSION = DOCS / "_ext" / "example_output.py"

TESTED_ELSEWHERE = {
    "quickstart.py": "tests/test_readme.py",
    "celery_pool.py": "tests/compat/test_example.py",
    "howto_ray.py": "tests/ray/test_ray_example.py",  # (skipped where Ray is not installed)
    "production_server.py": "tests/notify/test_examples_systemd.py",
}

# Lines each example must print: a string is a whole line, a compiled pattern must
# match a whole line. Timings and pids vary, so they are matched by patterns.
EXPECTED: dict[str, list[str | re.Pattern[str]]] = {
    "tutorial_first_tree.py": [
        "root: started clock",
        "root: started janitor",
        re.compile(r"clock: running, pid \d+"),
        "root: clock exited: killed by signal SIGKILL (9); restart",
        "root: started clock (restart 1)",
        "clock has a new pid: True",
        "root: supervisor exited: shutdown",
    ],
    "tutorial_crash_loop.py": [
        "root: db exited: ConnectionError: database refused the connection; restart",
        "root: started db (restart 3)",
        "root: giving up after db failed: 4 restarts within 5 s (at most 3 allowed)",
        "supervisor 'root' gave up: 4 restarts within 5 s (at most 3 allowed)",
        "recent exits (oldest first):",
        re.compile(r"  db: ConnectionError: database refused the connection "
                   r"\([\d.]+ s before giving up, after [\d.]+ s up\)"),
    ],
    "tutorial_nested.py": [
        "['config', 'pipeline', 'web']",
        "ChildCounts(specs=2, active=2, supervisors=0, workers=2)",
        "root/pipeline: parser exited: killed by signal SIGKILL (9); restart",
        "root/pipeline: terminated fetcher: shutdown",
        "root/pipeline: started fetcher (restart 1)",
        "root/pipeline: started parser (restart 1)",
        "web is stopped",
        "web is running",
        "root: terminated config: shutdown",
        "the tree is running: False",
    ],
    "tutorial_run.py": [
        "job: item 2",
        "root: job exited: normal; keep",
        "root: terminated metrics: shutdown",
        "run() returned shutdown",
    ],
    "from_supervisord.py": [
        "supervisord/queue: started worker_1",
        # The command child shares the example's stdout, so its line may land in
        # the middle of a report line the supervisor is printing at that moment.
        re.compile(r".*nothing to report"),
        "supervisord: report exited: exited with status 2; keep",
        "web: running",
        "report: stopped",
        "worker_0: running",
        "supervisord/queue: terminated worker_1: shutdown",
        "supervisord: terminated web: shutdown",
        "supervisord: supervisor exited: shutdown",
    ],
    "howto_pool.py": [
        "squares: [0, 1, 4, 9, 16, 25]",
        "processes in the pool's group: 3",
        "root: pool exited: killed by signal SIGKILL (9); restart",
        "root: started pool (restart 1)",
        "left of the old group: 0",
        "pool closed",
        "root: terminated pool: shutdown",
    ],
    "howto_start_methods.py": [
        re.compile(r"forkserver \(it starts the fork server\): up in [\d.]+ s"),
        re.compile(r"forkserver \(the server is up\): up in [\d.]+ s"),
        re.compile(r"fork: up in [\d.]+ s"),
        re.compile(r"spawn: up in [\d.]+ s"),
        "refused: child 'worker': field 'start': must be picklable to reach a 'forkserver' "
        "child process (define functions at module level, or use start_method='fork')",
        "accepted with fork",
    ],
    "howto_commands.py": [
        "migrating orders from /tmp",
        "root: migrate exited: normal; keep",
        "root: flaky exited: exited with status 3; restart",
        "root: started flaky (restart 2)",
        "migrate: stopped, pid None",
        re.compile(r"server: running, pid \d+"),
        "worker: SIGINT, finishing the current batch",
        "root: terminated worker: shutdown",
        "root: terminated server: shutdown",
    ],
    "howto_logs.py": [
        "root/jobs/batch | batch line 2",
        "['jobs', 'jobs/batch.stderr.log', 'jobs/batch.stdout.log', 'talker.stderr.log', "
        "'talker.stdout.log', 'tree.log']",
        "talker.stdout.log:",
        "  --- otp-py: started pid ... at ...",
        "  hello from the talker",
        "  --- otp-py: pid ... ended: normal at ...",
        "  batch line 2",
        "  --- otp-py: pid ... ended: RuntimeError: the batch failed at ...",
    ],
    "howto_asyncio.py": [
        "consumer: item 2",
        "root: producer exited: ValueError: cannot produce item 3; restart",
        "consumer: closing",
        "root: terminated consumer: shutdown",
        "root: started producer (restart 1)",
        "root: started consumer (restart 1)",
        "root: started auditor",
        "producer: running, restarted 1 time(s)",
        "auditor: running, restarted 0 time(s)",
        "root: terminated auditor: shutdown",
        "the block has ended, and so has the tree",
    ],
    "howto_threads.py": [
        re.compile(r"root: stuck did not stop and cannot be killed: thread 'otp:root/stuck' "
                   r"\(ident \d+\) is still running; threads cannot be killed"),
        re.compile(r"root: stuck exited: hung: no heartbeat for [\d.]+ s \(timeout 0.5 s\); "
                   r"remove"),
        "root: terminated stubborn: unstoppable: still running 0.2 s after its stop request",
        "root: terminated batch: shutdown",
        re.compile(r"poller: stopped after \d+ polls"),
        "root: terminated poller: shutdown",
        "threads still running: ['otp:root/stubborn', 'otp:root/stuck']",
    ],
    "howto_watchdog.py": [
        re.compile(r"root: reports exited: hung: blocked the event loop for [\d.]+ s "
                   r"\(timeout 0.5 s\); restart"),
        re.compile(r"root: importer exited: hung: no heartbeat for [\d.]+ s \(timeout 0.5 s\); "
                   r"restart"),
        "ticker: restarted 0 time(s)",
        "reports: restarted 1 time(s)",
        "importer: restarted 1 time(s)",
    ],
    "howto_decider.py": [
        "root: settings exited: ConfigError: missing setting 'api_key'; keep",
        "root: backup exited: PermissionError: cannot write to /backups; keep",
        "root: cleanup exited: asked not to be restarted: no stale files left; keep",
        "root: fetch exited: exited with status 75; restart",
        "root: restarting fetch in 0.4 s",
        "root: started fetch (restart 1)",
        "root: segv exited: killed by signal SIGSEGV (11); ignore",
        "root/loader: import exited: exited with status 78; escalate",
        "root/loader: giving up after import failed: exited with status 78 escalated by the "
        "failure decider",
        "root: loader exited: shutdown; keep",
        "root: main exited: asked the tree to shut down: all work done; shutdown_tree",
        "run() returned shutdown",
    ],
    "howto_crash_history.py": [
        "root/workers gives up: 4 restarts within 10 s (at most 3 allowed)",
        "  parser: ValueError: bad record in batch 7  [Crashed]",
        "    traceback ends: ValueError: bad record in batch 7",
        "    stderr ends: parsing batch 7",
        "  encoder: exited with status 2  [Exited]",
        "    exit status 2",
        "    stderr ends: codec not found",
        "  renderer: killed by signal SIGSEGV (11)  [Signaled]",
        "    signal 11 (SIGSEGV)",
        re.compile(r"    up [\d.]+ s, restart delayed 0.2 s"),
        "root gives up: 1 restart within 10 s (at most 0 allowed)",
        "run() raised: IntensityExceededError",
        "supervisor 'root' gave up: 1 restart within 10 s (at most 0 allowed)",
    ],
    "howto_backoff.py": [
        "t=1.000 root: restarting db in 0.5 s",
        "t=3.000 root: started db (restart 2)",
        "t=20.000 root: restarting db in 0.5 s",
        "t=8.000 root: giving up after db failed: 4 restarts within 30 s (at most 3 allowed)",
        "t=6.000 root: restarting db in 8 s",
        "t=14.000 root: started db (restart 2)",
        "t=2.000 root: restarting db in 5 s",
        "t=7.500 root: started db (restart 4)",  # suture: the count was reset at 7 s
        "t=60.000 root: started db (restart 5)",
    ],
    "howto_dynamic.py": [
        "alice -> partition 3: users/3/session#1",
        "bob -> partition 0: users/0/session#1",
        "mallory -> partition 2: users/2/session#1",
        "whereis('alice'): session#1 running, 0 restarts",
        "whereis('mallory'): session#1 running, 1 restarts",
        "whereis('lobby'): lobby running, 0 restarts",
        "whereis('nobody'): none",
        "refused: name 'alice' is already taken in this tree (by 'root/users/3/session#1'); "
        "names are unique across a tree",
        "guest1: users/3/session#2",
        "guest2 refused: supervisor 'root/users/3' already has 2 of its max_children=2 "
        "children; start_child refused",
    ],
    "howto_strategy.py": [
        "plan for db: RestartPlan(stop=('api', 'cache'), start=('db', 'cache', 'api'))",
        "t=1.000 root: terminated api: shutdown",
        "t=1.000 root: started api (restart 1)",
        "t=2.000 root: started mailer (restart 1)",
    ],
    "howto_simulate.py": [
        "passed: test_a_crash_restarts_the_whole_group",
        "passed: test_a_failed_restart_is_retried_and_counted",
        "passed: test_an_orderly_stop",
        "passed: test_decider_rules_by_exit_code",
        "passed: test_spread_out_crashes_are_absorbed",
        "passed: test_three_quick_crashes_escalate_to_the_root",
        "t=3.000 root/workers: giving up after fetch failed: 3 restarts within 10 s "
        "(at most 2 allowed)",
        "t=3.000 root: started workers (restart 1)",
    ],
    "production_metrics.py": [
        'otp_py_children{state="running",supervisor="root",tree="root"} 2',
        'otp_py_child_up{backend="command",child="flaky",supervisor="root",tree="root"} 1',
        'otp_py_child_restarts_total{backend="command",child="flaky",supervisor="root",'
        'tree="root"} 2',
        'otp_py_child_exits_total{backend="command",child="flaky",reason="error",'
        'supervisor="root",tree="root"} 2',
        'otp_py_restart_budget_used_ratio{supervisor="root",tree="root"} 0.4',
    ],
    "production_probes.py": [
        "root: started web",
        "readiness: ready, last answer HTTP 200 OK",
        "root: web exited: hung: liveness probe http GET http://127.0.0.1:PORT/ failed 2 "
        "times in a row; last: no answer within 1 s; restart",
        "root: started web (restart 1)",
        "web runs again in a new process: True",
    ],
    "production_readiness.py": [
        "root: started server",
        "root: started client",
        re.compile(r"server: running, pid \d+, status: serving"),
        re.compile(r"client: running, pid \d+, status: -"),
        re.compile(r"the server was ready \d+\.\d s after it started"),
    ],
    "production_json_logs.py": [
        re.compile(r'\{"time": "[-\d]+T[:.\d]+Z", "level": "info", "logger": "otp_py", '
                   r'"event": "child_started", "tree": "root", "supervisor": "root", '
                   r'"child": "fetch", .*"restarts": 0, .*"message": "root: started fetch"\}'),
        re.compile(r'\{"time": "[-\d]+T[:.\d]+Z", "level": "error", "logger": "otp_py", '
                   r'"event": "child_exited", "tree": "root", "supervisor": "root", '
                   r'"child": "fetch", "reason": "ConnectionError: upstream refused the '
                   r'connection", "reason_kind": "error", "outcome": "restart", .*'
                   r'"pid": \d+, "traceback": "Traceback .*ConnectionError: upstream refused '
                   r'the connection\\n", "message": .*\}'),
        re.compile(r'\{.*"event": "child_started", .*"restarts": 1, .*\}'),
    ],
    "howto_shared_budget.py": [
        "    t=2.000 root/pools/pool0: started conn (restart 2)",
        "    t=2.000 root/pools/pool0: giving up after conn failed: 4 restarts within 10 s "
        "(at most 3 allowed)",
        "    t=2.000 root: started pools (restart 1)",
        "A restarted scope starts afresh: the outage was counted against the old one.",
        "    t=3.000 root/pools/pool1: started conn (restart 1)",
        "    t=15.000 root/pools/pool1: started conn (restart 2)",
    ],
}

# What the examples' children write to their standard error reaches the example's.
EXPECTED_STDERR = {
    "howto_commands.py": ["cannot reach the API"],
    "howto_crash_history.py": ["parsing batch 7", "codec not found"],
}

LEFTOVER_GRACE = 5.0
"""Seconds the helpers of an example (fork server, guardian) get to exit after it."""

# The runner: become the subreaper of the example's descendants, run it, then wait
# for every adopted orphan to end; exit 97 naming any that are still alive.
RUNNER = r"""
import ctypes, os, subprocess, sys, time
PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
script, timeout, grace = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
try:
    code = subprocess.run([sys.executable, script], timeout=timeout).returncode
except subprocess.TimeoutExpired:
    print(f"runner: {script} still ran after {timeout} s", file=sys.stderr)
    code = 98
deadline = time.monotonic() + grace
while True:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break  # nothing left
    if pid:
        continue
    if time.monotonic() > deadline:
        left = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, ValueError, IndexError):
                continue
            if ppid == os.getpid():
                left.append(f"{entry}: {argv.strip()}")
                os.kill(int(entry), 9)
        print("runner: left behind: " + "; ".join(left), file=sys.stderr)
        code = 97
        break
    time.sleep(0.02)
sys.exit(code)
"""


def run_example(name: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    # An example's stdout is a pipe here, so it is block-buffered and each print()
    # reaches it in one write, as when a user pipes the example into a file. With
    # PYTHONUNBUFFERED (set by some CI runners) print() writes the text and its newline
    # separately, and a child sharing the pipe can land its line between the two.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", RUNNER, str(EXAMPLES / name), str(timeout), str(LEFTOVER_GRACE)],
        capture_output=True, text=True, timeout=timeout + LEFTOVER_GRACE + 30,
        check=False, cwd=ROOT, env=env,
    )


TUTORIAL_OUTPUT: dict[str, list[str | re.Pattern[str]]] = {
    "tutorial_first_tree.py": [
        "root: supervisor starting (one_for_one)",
        "root: started clock",
        "root: started janitor",
        "root: supervisor started",
        re.compile(r"clock: running, pid \d+"),
        re.compile(r"janitor: running, pid \d+"),
        "root: clock exited: killed by signal SIGKILL (9); restart",
        "root: started clock (restart 1)",
        "clock has a new pid: True",
        "root: terminated janitor: shutdown",
        "root: terminated clock: shutdown",
        "root: supervisor exited: shutdown",
    ],
    "tutorial_crash_loop.py": [
        "root: supervisor starting (one_for_one)",
        "root: started db",
        "root: supervisor started",
        *[line for n in (1, 2, 3) for line in (
            "root: db exited: ConnectionError: database refused the connection; restart",
            f"root: started db (restart {n})")],
        "root: db exited: ConnectionError: database refused the connection; give_up",
        "root: giving up after db failed: 4 restarts within 5 s (at most 3 allowed)",
        "root: supervisor exited: shutdown",
        "---",
        "supervisor 'root' gave up: 4 restarts within 5 s (at most 3 allowed)",
        "recent exits (oldest first):",
        *[re.compile(r"  db: ConnectionError: database refused the connection "
                     r"\([\d.]+ s before giving up, after [\d.]+ s up\)")] * 4,
    ],
    "tutorial_nested.py": [
        "root: supervisor starting (one_for_one)",
        "root: started config",
        "root/pipeline: supervisor starting (one_for_all)",
        "root/pipeline: started fetcher",
        "root/pipeline: started parser",
        "root/pipeline: supervisor started",
        "root: started pipeline",
        "root: started web",
        "root: supervisor started",
        "['config', 'pipeline', 'web']",
        "ChildCounts(specs=2, active=2, supervisors=0, workers=2)",
        "root/pipeline: parser exited: killed by signal SIGKILL (9); restart",
        "root/pipeline: terminated fetcher: shutdown",
        "root/pipeline: started fetcher (restart 1)",
        "root/pipeline: started parser (restart 1)",
        "root: terminated web: shutdown",
        "web is stopped",
        "root: started web (restart 1)",
        "web is running",
        "root: terminated web: shutdown",
        "root/pipeline: terminated parser: shutdown",
        "root/pipeline: terminated fetcher: shutdown",
        "root/pipeline: supervisor exited: shutdown",
        "root: terminated pipeline: shutdown",
        "root: terminated config: shutdown",
        "root: supervisor exited: shutdown",
        "the tree is running: False",
    ],
    "tutorial_run.py": [
        "root: supervisor starting (one_for_one)",
        "root: started metrics",
        "job: item 0",
        "root: started job",
        "root: supervisor started",
        "job: item 1",
        "job: item 2",
        "root: job exited: normal; keep",
        "root: terminated metrics: shutdown",
        "root: supervisor exited: shutdown",
        "run() returned shutdown",
    ],
}
"""The tutorial's scripts print exactly these lines, no more and no fewer. Lines a
child process prints (``job: ...``) may land before or after a report line printed at
the same moment, so only the other lines must keep their order."""


def _full_mismatch(expected: list[str | re.Pattern[str]], lines: list[str],
                   child_prefix: str = "job: ") -> str | None:
    """Why ``lines`` is not exactly ``expected`` (see TUTORIAL_OUTPUT), or None."""

    def matches(want: str | re.Pattern[str], line: str) -> bool:
        return bool(want.fullmatch(line)) if isinstance(want, re.Pattern) else want == line

    def ordered(items: list[str | re.Pattern[str]] | list[str]) -> list[Any]:
        return [x for x in items if not (isinstance(x, str) and x.startswith(child_prefix))]

    used = [False] * len(expected)
    for line in lines:
        index = next((i for i, want in enumerate(expected)
                      if not used[i] and matches(want, line)), None)
        if index is None:
            return f"unexpected line {line!r}"
        used[index] = True
    missing = [want for want, hit in zip(expected, used, strict=True) if not hit]
    if missing:
        return f"missing lines {missing!r}"
    fixed, seen = ordered(expected), ordered(lines)
    for want, line in zip(fixed, seen, strict=True):
        if not matches(want, line):
            return f"out of order: {line!r} where {want!r} was expected"
    return None


@pytest.mark.parametrize("name", sorted(TUTORIAL_OUTPUT))
def test_the_tutorial_prints_exactly_what_it_shows(name: str) -> None:
    result = run_example(name)
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stderr}"
    problem = _full_mismatch(TUTORIAL_OUTPUT[name], result.stdout.splitlines())
    assert problem is None, f"{problem}\n{result.stdout}"
    assert result.stderr == ""  # (it listens to its reports: no default logging)


def _missing(expected: list[str | re.Pattern[str]], lines: list[str]) -> list[str]:
    missing = []
    for want in expected:
        if isinstance(want, re.Pattern):
            if not any(want.fullmatch(line) for line in lines):
                missing.append(want.pattern)
        elif want not in lines:
            missing.append(want)
    return missing


def _documented_scripts() -> set[str]:
    """The example scripts the pages include (literalinclude or example-output)."""
    found = set()
    pattern = re.compile(r"\.\. (?:literalinclude|example-output):: \S*examples/(\S+\.py)")
    for page in DOCS.rglob("*.rst"):
        if "_build" in page.parts:
            continue
        found |= set(pattern.findall(page.read_text()))
    return found


def test_every_example_is_tested() -> None:
    scripts = {path.name for path in EXAMPLES.glob("*.py")}
    assert scripts - set(TESTED_ELSEWHERE) == set(EXPECTED)


def test_every_example_is_shown_in_the_docs() -> None:
    assert set(EXPECTED) <= _documented_scripts()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_as_written(name: str) -> None:
    result = run_example(name)
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stderr}"
    lines = result.stdout.splitlines()
    assert not _missing(EXPECTED[name], lines), result.stdout
    for text in EXPECTED_STDERR.get(name, []):
        assert text in result.stderr


# ------------------------------------------------------------- the Sphinx directive


def _load_extension() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_output", EXTENSION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ext = _load_extension()


def test_run_example_returns_what_the_script_prints() -> None:
    script = EXAMPLES / "howto_backoff.py"
    direct = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            check=True, cwd=ROOT, timeout=60)
    assert ext.run_example(script, cwd=ROOT) == direct.stdout


def test_run_example_refuses_a_failing_script(tmp_path: Path) -> None:
    script = tmp_path / "fails.py"
    script.write_text("import sys\nprint('partial')\nsys.exit('it broke')\n")
    with pytest.raises(ext.ExampleFailedError, match=r"exited with status 1:\nit broke"):
        ext.run_example(script)


def test_run_example_refuses_a_script_that_runs_too_long(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(30)\n")
    with pytest.raises(ext.ExampleFailedError, match=r"still ran after 0\.5 s"):
        ext.run_example(script, timeout=0.5)


def _build(tmp_path: Path, body: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Build a one-page Sphinx project using the directive, with warnings as errors.

    The build runs in a subprocess: a Sphinx application registers its node classes
    with docutils for the whole process, and a second one in the same process (such
    as tests/test_docs_table.py's) would warn that they are registered again."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(EXTENSION.parent)!r})\n"
        "extensions = ['example_output']\n"
        f"example_output_cwd = {str(ROOT)!r}\n"
        f"example_output_pythonpath = [{str(ROOT)!r}]\n"
    )
    (src / "index.rst").write_text("Example\n=======\n\n" + body)
    doctrees = tmp_path / "doctrees"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", "-d", str(doctrees),
         str(src), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=180, check=False, cwd=ROOT,
    )
    return result, doctrees / "index.doctree"


def test_the_directive_shows_exactly_what_the_script_prints(tmp_path: Path) -> None:
    pytest.importorskip("sphinx")
    from docutils import nodes

    script = EXAMPLES / "howto_simulate.py"
    relative = os.path.relpath(script, tmp_path / "src")  # as a page would name it
    result, doctree_path = _build(tmp_path, f".. example-output:: {relative}\n")
    assert result.returncode == 0, result.stderr
    doctree = pickle.loads(doctree_path.read_bytes())
    [block] = list(doctree.findall(nodes.literal_block))
    printed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             check=True, cwd=ROOT, timeout=60).stdout
    assert block.astext() == printed.rstrip("\n")
    assert "passed: test_an_orderly_stop" in block.astext()


def test_the_directive_fails_the_build_for_a_failing_script(tmp_path: Path) -> None:
    pytest.importorskip("sphinx")
    script = tmp_path / "broken.py"
    script.write_text("raise SystemExit('no output for you')\n")
    result, _ = _build(tmp_path, ".. example-output:: ../broken.py\n")
    assert result.returncode != 0
    assert "example-output: broken.py exited with status 1" in result.stderr
    assert "no output for you" in result.stderr
