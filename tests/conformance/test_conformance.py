"""Every recorded scenario, replayed on otp_py, prints the trace Erlang/OTP 25 printed.

Two replays per scenario: on the pure decision core with a simulated clock
(``sim_replay``), and on the real runtime with asyncio-task workers (``replay``).
"""

from __future__ import annotations

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


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_runtime_matches_otp(path: Path) -> None:
    assert replay.replay(path, speed=5.0) == expected(path)


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
    ],
)
def test_replayer_refuses_an_invalid_scenario(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = subprocess.run(
        [sys.executable, str(HERE / "replay.py"), str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
