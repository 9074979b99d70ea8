"""The TOML loader in-process: every spec field has a key, and every problem is
reported with its place. (The console script's handling of files is tested in
test_check_tree.py.)"""

from __future__ import annotations

import signal

import pytest

import otp_py as otp
from otp_py.cli.toml_spec import SUPERVISOR_KEYS, WORKER_KEYS, parse
from tests.cli import targets


def load(text: str) -> otp.SupervisorSpec:
    spec, problems = parse(text, "t.toml")
    assert not problems, [p.describe() for p in problems]
    assert spec is not None
    return spec


def problems(text: str) -> list[str]:
    spec, found = parse(text, "t.toml")
    assert spec is None
    return [p.describe() for p in found]


def test_every_worker_field() -> None:
    spec = load("""
id = "root"
auto_shutdown = "any_significant"

[[children]]
id = "w"
start = "tests.cli.targets:crash_after"
args = [1.5]
kwargs = {}
restart = "transient"
shutdown = "brutal_kill"
significant = true
backend = "process"
start_method = "spawn"
ready = true
start_timeout = 7
heartbeat = { interval = 1, timeout = 3 }

[[children]]
id = "p"
start = "tests.cli.targets:forever"
process_class = "multiprocessing:Process"
shutdown = "infinity"

[[children]]
id = "c"
command = "sleep 10"
stop_signal = "SIGINT"
cwd = "/tmp"
env = { A = "1" }
shutdown = 0.5

capture_stderr = false
decider = [
  { exit_code = [3, 4], decision = "stop" },
  { signal = "KILL", decision = "restart", delay = 2 },
  { exception = "builtins:ValueError", decision = "escalate" },
]

[[children]]
id = "t"
start = "tests.cli.targets:thread_until_stopped"
backend = "thread"
heartbeat = true
decider = "tests.cli.targets:DECIDER"
""")
    w, p, c, t = spec.children
    assert w == otp.ChildSpec(
        id="w", start=targets.crash_after, args=(1.5,), restart=otp.Restart.TRANSIENT,
        shutdown=otp.BRUTAL_KILL, significant=True, backend="process", start_method="spawn",
        ready=True, start_timeout=7, heartbeat=otp.Heartbeat(1, 3))
    assert p.process_class.__name__ == "Process" and p.shutdown == otp.INFINITY
    assert (c.backend, c.start, c.stop_signal, c.cwd, c.env, c.shutdown) == (
        "command", ("sleep", "10"), signal.SIGINT, "/tmp", {"A": "1"}, 0.5)
    assert c.capture_stderr is False
    assert [d for _, d in c.decider.rules] == [
        otp.Decision.STOP, otp.Decision.restart(delay=2), otp.Decision.ESCALATE]
    exit_code, kill, _ = (m for m, _ in c.decider.rules)
    assert (exit_code, kill) == (otp.OnExitCode((3, 4)), otp.OnSignal((signal.SIGKILL,)))
    assert t.backend == "thread" and t.heartbeat == otp.Heartbeat()
    assert t.decider is targets.DECIDER


def test_every_field_of_the_specs_has_a_key() -> None:
    assert set(WORKER_KEYS) == {f.name for f in otp.ChildSpec.__attrs_attrs__} | {"command"}
    assert set(SUPERVISOR_KEYS) == {f.name for f in otp.SupervisorSpec.__attrs_attrs__}


def test_every_supervisor_field() -> None:
    spec = load("""
id = "root"
strategy = "rest_for_one"
intensity.max_restarts = 4
intensity.period = 2
intensity.backoff = { initial = 0.2, maximum = 3, multiplier = 3, jitter = 0, reset_after = 9 }
intensity.decaying = { threshold = 2, decay = 5, backoff = 1, jitter = 0.5 }
auto_shutdown = "all_significant"
watchdog = { interval = 0.25, timeout = 1, threshold = 0.05 }
decider = [{ exit_code = 78, decision = "shutdown_tree" }]

[[children]]
id = "sub"
strategy = "simple_one_for_one"
intensity = "otp_py:DecayingFailureCount"
restart = "transient"
shutdown = 10
significant = true
backend = "process"

  [[children.children]]
  id = "tmpl"
  start = "tests.cli.targets:forever"
""")
    assert spec.strategy == otp.RestForOne()
    assert spec.intensity == otp.Combined((
        otp.SlidingWindow(4, 2),
        otp.ExponentialBackoff(initial=0.2, maximum=3, multiplier=3, jitter=0, reset_after=9),
        otp.DecayingFailureCount(threshold=2, decay=5, backoff=1, jitter=0.5)))
    assert spec.auto_shutdown is otp.AutoShutdown.ALL_SIGNIFICANT
    assert spec.watchdog == otp.LoopWatchdog(interval=0.25, timeout=1, threshold=0.05)
    assert spec.decider == otp.Decider({otp.OnExitCode(78): otp.Decision.SHUTDOWN_TREE})
    sub = spec.children[0]
    assert isinstance(sub, otp.SupervisorSpec)
    assert (sub.strategy, sub.intensity, sub.restart, sub.shutdown, sub.significant,
            sub.backend) == (otp.SimpleOneForOne(), otp.DecayingFailureCount(),
                             otp.Restart.TRANSIENT, 10, True, "process")


def test_a_shared_budget() -> None:
    spec = load('[[children]]\nid = "s"\nintensity = { shared = "db", max_restarts = 2, '
                'period = 1 }\nchildren = []\n')
    assert spec.children[0].intensity == otp.SharedBudget("db", otp.SlidingWindow(2, 1))


def test_the_root_is_named_root_by_default() -> None:
    assert load("").id == "root"


def test_a_custom_strategy_by_import_path() -> None:
    spec = load('strategy = "otp_py:OneForAll"')
    assert spec.strategy == otp.OneForAll()


@pytest.mark.parametrize(("text", "expected"), [
    ('[[children]]\nid = "a"\nstart = "x"\n',
     "t.toml:3: children[0]: child 'a': field 'start': expected an import path "
     "'package.module:name' naming the function to run; got 'x'"),
    ('[[children]]\nstart = "os:getcwd"\n',
     "t.toml:1: children[0]: missing key 'id' (the child's name among its siblings)"),
    ('[[children]]\nid = "a"\nstart = "os:getcwd"\ncommand = "ls"\n',
     "t.toml:4: children[0]: child 'a': give 'start' or 'command', not both"),
    ('[[children]]\nid = "a"\ncommand = "ls"\nbackend = "thread"\n',
     "t.toml:4: children[0]: child 'a': field 'backend': 'command' runs a program, so "
     "backend must be 'command'; got 'thread'"),
    ('[[children]]\nid = "a"\ncommand = []\n',
     "t.toml:3: children[0]: child 'a': field 'command': expected an argv for a command "
     "child: a non-empty list of strings or a command line; got []"),
    ('[[children]]\nid = "a"\ncommand = "ls"\nstop_signal = "SIGNOPE"\n',
     "t.toml:4: children[0]: child 'a': field 'stop_signal': expected a signal name such "
     "as 'SIGTERM' or a number; got 'SIGNOPE'"),
    ('intensity = {}\n',
     "t.toml:1: (root table): supervisor 'root': field 'intensity': give at least one of "
     "max_restarts and period, backoff, decaying or shared"),
    ('[[children]]\nid = "a"\ncommand = "ls"\ndecider = [{ decision = "stop" }]\n',
     "t.toml:4: children[0]: child 'a': field 'decider': each rule needs exactly one of exit_code, "
     "signal, exception; got {'decision': 'stop'}"),
    ('[[children]]\nid = "a"\ncommand = "ls"\ndecider = [{ exit_code = 1, decision = '
     '"stop", delay = 1 }]\n',
     "t.toml:4: children[0]: child 'a': field 'decider': only a 'restart' decision takes "
     "a delay"),
    ('[[children]]\nid = "a"\ncommand = "ls"\ndecider = [{ exit_code = 1, decision = '
     '"retry" }]\n',
     "t.toml:4: children[0]: child 'a': field 'decider': a rule's decision is one of "
     "restart, stop, escalate, shutdown_tree, ignore; got 'retry'"),
    ('watchdog = { every = 1 }\n',
     "t.toml:1: (root table): supervisor 'root': field 'watchdog': unknown key 'every' "
     "(expected interval, timeout, threshold)"),
    ('intensity = { backoff = { initial = 2, maximum = 1 } }\n',
     "t.toml:1: (root table): supervisor 'root': field 'intensity': "
     "ExponentialBackoff.maximum (1) must be >= initial (2)"),
    ('[intensity]\nwindow = 3\n',
     "t.toml:1: (root table): supervisor 'root': field 'intensity': unknown key 'window' "
     "(expected max_restarts, period, backoff, decaying, shared)"),
    ('strategy = "one_for_none"\n',
     "t.toml:1: (root table): child 'root': field 'strategy': expected a RestartStrategy "
     "(or 'one_for_one', 'one_for_all', 'rest_for_one', 'simple_one_for_one'); got "
     "'one_for_none'"),
    ('children = 3\n',
     "t.toml:1: (root table): supervisor 'root': field 'children': expected an array of "
     "tables ([[children]]); got 3"),
    ('[[children]]\nid = "s"\nstrategy = "one_for_all"\nstart = "os:getcwd"\n',
     "t.toml:4: children[0]: a worker ('start' or 'command') cannot have 'strategy': only "
     "a supervisor (a table with 'children') has those"),
    ('backend = "process"\n',
     "t.toml:1: (root table): supervisor 'root': field 'backend': the root supervisor runs "
     "in the otp-py process; backend = \"process\" is for nested supervisors"),
    ('[[children]]\nid = "s"\nwatchdog = true\n[[children.children]]\nid = "a"\n'
     'command = "ls"\n',
     "t.toml:3: children[0]: child 's': field 'watchdog': a nested supervisor runs on its "
     "parent's event loop, which only the tree's root can watch: set watchdog= on the root "
     "(or give this supervisor backend='process', a loop of its own)"),
    ('[[children]]\nid = "a"\ncommand = "ls"\n[[children]]\nid = "a"\ncommand = "ls"\n',
     "t.toml:5: children[1]: child 'a': field 'id': duplicate id among the children of "
     "supervisor 'root'; sibling ids must be unique"),
    ('[[children]]\nid = "a"\ncommand = "ls"\nrestart = "transient"\nsignificant = true\n',
     "t.toml:5: children[0]: child 'a': field 'significant': significant=True needs "
     "auto_shutdown other than 'never' on supervisor 'root' (OTP refuses {bad_combination, "
     "[{auto_shutdown, never}, {significant, true}]})"),
])
def test_problems_name_their_place(text: str, expected: str) -> None:
    assert problems(text) == [expected]


@pytest.mark.parametrize(("text", "line", "says"), [
    pytest.param('[[children]]\nid = "web\\nroot running"\ncommand = "ls"\n', 2,
                 "U+000A", id="newline-in-an-id"),
    pytest.param('id = "\\u202eroot"\n', 1, "RIGHT-TO-LEFT OVERRIDE", id="bidi-in-the-root-id"),
    pytest.param('[[children]]\nid = "a"\ncommand = "ls"\n\nstop_signal = "KILL"\n', 5,
                 "shutdown=BRUTAL_KILL ('brutal_kill' in a tree file)", id="stop-signal-kill"),
    pytest.param('[[children]]\nid = "a"\nstart = "os:getcwd"\nbackend = "thread"\n'
                 'args = [1]\n', 5, "too many positional arguments", id="args-it-cannot-take"),
    pytest.param('[[children]]\nid = "a"\nstart = "os:getcwd"\nbackend = "thread"\n'
                 'start_timeout = inf\n', 5, "INFINITY", id="start-timeout-inf"),
    pytest.param('[[children]]\nid = "a"\nstart = "os:getcwd"\nbackend = "thread"\n'
                 'heartbeat = { interval = 2, timeout = 1 }\n', 5, "at least its interval",
                 id="heartbeat-timeout-under-interval"),
])
def test_hostile_or_careless_values_are_reported_at_their_line(
    text: str, line: int, says: str
) -> None:
    [problem] = problems(text)
    assert problem.startswith(f"t.toml:{line}: "), problem
    assert says in problem
    assert problem.isprintable(), problem


def test_an_infinite_start_timeout_is_written_infinity() -> None:
    spec = load('[[children]]\nid = "a"\nstart = "os:getcwd"\nbackend = "thread"\n'
                'ready = true\nstart_timeout = "infinity"\n')
    child = spec.children[0]
    assert isinstance(child, otp.ChildSpec)
    assert child.start_timeout is otp.INFINITY


def test_lines_of_sub_tables_dotted_keys_and_inline_tables() -> None:
    text = """\
id = "root"
intensity.max_restarts = -1

[[children]]
id = "pool"
strategy = "one_for_all"

  [children.intensity]
  period = "soon"

  [[children.children]]
  id = "w"
  command = "ls"
  shutdown = -1

[[children]]
id = "inline"
children = [
  { id = "a", command = "ls", shutdown = -2 },
]
"""
    assert [p.split(": ")[0] + ": " + p.split(": ")[1] for p in problems(text)] == [
        "t.toml:2: (root table)",
        "t.toml:8: children[0]",
        "t.toml:14: children[0].children[0]",
        "t.toml:18: children[1].children[0]",
    ]


def test_a_shared_budget_alone_has_its_default_policy() -> None:
    spec, found = parse('intensity = { shared = "db" }\n[[children]]\nid = "a"\n'
                        'command = "ls"\n', "t.toml")
    assert found == []
    assert spec is not None
    assert spec.intensity == otp.SharedBudget("db")
