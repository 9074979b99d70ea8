"""Every recorded scenario, replayed on otp_py, prints the trace Erlang/OTP 25 printed.

Two replays per scenario: on the pure decision core with a simulated clock
(``sim_replay``), and on the real runtime with asyncio-task workers (``replay``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import replay  # noqa: E402
import scenario as sc  # noqa: E402
import sim_replay  # noqa: E402

DATA = HERE / "data"
# The public scenarios, when the shared conformance folder sits next to the project
# (scenarios/NAME.json and expected/NAME.trace); the project's own are in data/.
PUBLIC = HERE.parents[2] / "shared" / "conformance"
OWN = sorted(DATA.glob("*.json"))
SHARED = sorted((PUBLIC / "scenarios").glob("*.json")) if PUBLIC.is_dir() else []
SCENARIOS = OWN + [p for p in SHARED if not (DATA / p.name).exists()]


def expected(path: Path) -> list[str]:
    own = path.with_suffix(".trace")
    trace = own if own.exists() else path.parent.parent / "expected" / own.name
    return trace.read_text().splitlines()


def test_there_are_scenarios() -> None:
    assert len(OWN) >= 20
    for path in OWN:
        assert path.with_suffix(".trace").exists(), path.name


def test_public_scenarios_kept_here_are_the_public_ones() -> None:
    """A public scenario copied into data/ must not drift from the shared one."""
    for path in SHARED:
        mine = DATA / path.name
        if mine.exists():
            assert mine.read_text().strip() == path.read_text().strip(), path.name
            public = PUBLIC / "expected" / mine.with_suffix(".trace").name
            assert expected(mine) == public.read_text().splitlines(), path.name


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_core_matches_otp(path: Path) -> None:
    assert sim_replay.trace(sc.load(path)) == expected(path)


def speed_for(path: Path) -> float:
    """How much faster than recorded a scenario can replay on a loaded machine: 5x,
    except where its margins are tight. An align_ms scenario keeps its steps 50 ms
    from a second's boundary, and start_ms/stop_ms ones place calls 100-150 ms from a
    slow start's end: at 5x those margins would be 10-30 ms of scheduling noise."""
    text = path.read_text()
    if '"align_ms"' in text:
        return 1.0
    if '"start_ms"' in text or '"stop_ms"' in text:
        return 2.0
    return 5.0


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_runtime_matches_otp(path: Path) -> None:
    assert replay.replay(path, speed=speed_for(path)) == expected(path)


def test_replayer_prints_the_trace_from_the_command_line() -> None:
    path = DATA / "o4a_crash_middle.json"
    result = subprocess.run(
        [sys.executable, str(HERE / "replay.py"), "--speed", "5", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "top level must be an object"),
        ('{"children": [{"id": 3}]}', "string 'id'"),
        ('{"flags": {"strategy": "one_for_some"}, "children": []}', "unknown strategy"),
        ('{"children": [{"id": "a"}], "timeline": [{"at": 1}]}', "exactly one of"),
        ('{"children": [{"id": "a"}], "timeline": [{"at": 1, "call": "explode"}]}',
         "unknown call"),
        # an unknown key anywhere: never replayed as if it were not there
        ('{"children": [{"id": "a"}], "timelime": []}', "unknown key 'timelime'"),
        ('{"flags": {"stratgy": "one_for_all"}, "children": []}', "unknown key 'stratgy'"),
        ('{"children": [{"id": "a", "ignore_starts": [1]}]}', "unknown key 'ignore_starts'"),
        ('{"children": [{"id": "a"}], "timeline": [{"at": 1, "crash": "a", "reson": "x"}]}',
         "unknown key 'reson'"),
        ('{"children": [{"id": "a"}], "timeline": [{"at": 1, "kill": "a", "reason": "x"}]}',
         "unknown key 'reason'"),
        # a wrong type
        ('{"children": [{"id": "a", "ignore_start": 1}]}', "ignore_start must be a list"),
        ('{"children": [{"id": "a", "fail_start": [0]}]}', "fail_start must be a list"),
        ('{"children": [{"id": "a", "start_ms": "slow"}]}', "start_ms must be a non-negative"),
        ('{"children": [{"id": "a", "stop_ms": -1}]}', "stop_ms must be a non-negative"),
        ('{"children": [{"id": "a", "significant": "yes"}]}', "significant must be true"),
        ('{"align_ms": 1000, "children": []}', "align_ms must be an integer in 0..999"),
        ('{"align_ms": true, "children": []}', "align_ms must be an integer in 0..999"),
        ('{"children": [{"id": "a"}], "timeline": [{"at": 1, "stop": false}]}',
         "'stop' must be true"),
        ('{"children": [{"id": "a"}], "timeline": [{"at": 1, "call": "get_childspec"}]}',
         "get_childspec takes one argument"),
        ('{"children": [{"id": "a"}], "timeline": [{"at": 1, "call": "which_children", '
         '"args": ["a"]}]}', "which_children takes no args"),
        # a step or a key that cannot mean anything
        ('{"children": [{"id": "a", "fail_start": [2], "ignore_start": [2]}]}',
         "in both fail_start and ignore_start"),
        ('{"children": [{"id": "s", "type": "supervisor", "start_ms": 5}]}',
         "start_ms is for workers only"),
        ('{"children": [{"id": "a", "children": []}]}', "'children' is for supervisors only"),
        ('{"children": [{"id": "s", "type": "supervisor", "children": [{"id": "x"}]}], '
         '"timeline": [{"at": 1, "kill": "s"}]}', "kill 's' names no worker"),
        ('{"children": [{"id": "a"}], "timeline": [{"at": 1, "crash": "b"}]}',
         "crash 'b' names no worker"),
        ('{"children": [{"id": "a"}, {"id": "a"}]}', "two children named 'a'"),
        ('{"children": [{"id": "a"}], "timeline": [{"at": 1, "crash": "a", "stop": true}]}',
         "exactly one of"),
        # what this replayer cannot replay faithfully is refused, not approximated
        ('{"children": [{"id": "s", "type": "supervisor", "ignore_start": [1]}]}',
         "ignore_start on a supervisor is not replayed"),
        ('{"children": [], "timeline": [{"at": 1, "call": "check_childspecs", "args": [1]}]}',
         "a child must be an object"),
    ],
)
@pytest.mark.parametrize("tool", ["replay.py", "sim_replay.py"])
def test_replayer_refuses_an_invalid_scenario(
    tmp_path: Path, tool: str, content: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = subprocess.run(
        [sys.executable, str(HERE / tool), str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_dynamic_childs_start_error_names_the_child(tmp_path: Path) -> None:
    """fail_start on a template counts each name's attempts, and the trace names the
    child (w2), never its internal id (w#2)."""
    path = tmp_path / "s.json"
    path.write_text(json.dumps({
        "flags": {"strategy": "simple_one_for_one", "intensity": 5},
        "children": [{"id": "w", "fail_start": [1]}],
        "timeline": [{"at": 100, "call": "start_child", "args": ["w1"]},
                     {"at": 200, "call": "start_child", "args": ["w1"]},
                     {"at": 300, "call": "start_child", "args": ["w2"]}]}))
    want = ["start root",
            "start_error w1", "call start_child w1 -> {error,start_failed}",
            "start w1", "call start_child w1 -> {ok,pid}",
            "start_error w2", "call start_child w2 -> {error,start_failed}",
            "terminate w1 shutdown", "down root shutdown"]
    assert sim_replay.trace(sc.load(path)) == want
    assert replay.replay(path, speed=5.0) == want
