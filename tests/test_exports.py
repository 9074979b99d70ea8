"""The public API is exactly what ``__all__`` says, and ``__all__`` is pinned here.

Adding or removing a public name must be a deliberate change to this file too.
"""

from __future__ import annotations

import types

import pytest

import otp_py
from otp_py import observe, probes, reasons, reports

EXPECTED_ALL = sorted(
    [
        "LoopWatchdog",
        "OutputCapture",
        "SharedBudget",
        "OnSignal",
        "OnExitCode",
        "Decision",
        "Decider",
        "AlreadyPresentError",
        "AlreadyStartedError",
        "AsyncSupervisor",
        "AutoShutdown",
        "BRUTAL_KILL",
        "Budget",
        "ChildCounts",
        "ChildInfo",
        "ChildNotFoundError",
        "ChildRestartingError",
        "ChildRunningError",
        "ChildSpec",
        "Combined",
        "DecayingFailureCount",
        "DoNotRestart",
        "ExponentialBackoff",
        "HandledExit",
        "Heartbeat",
        "INFINITY",
        "Ignore",
        "IntensityExceededError",
        "IntensityPolicy",
        "JsonFormatter",
        "MaxChildrenError",
        "MaxRestartsExceededError",
        "NameTakenError",
        "NotSupportedError",
        "OFASupervisor",
        "partitioned",
        "OneForAll",
        "OneForOne",
        "OtpError",
        "Outcome",
        "RESTART_TABLE",
        "RestForOne",
        "Restart",
        "ReloadPlan",
        "RestartPlan",
        "RestartStrategy",
        "Shutdown",
        "ShutdownTree",
        "Siblings",
        "SimpleOneForOne",
        "Simulation",
        "SlidingWindow",
        "SpecError",
        "SpecTypeError",
        "StartChildError",
        "StartFails",
        "Supervisor",
        "SupervisorExitError",
        "SupervisorNotRunningError",
        "SupervisorSpec",
        "TreeMetrics",
        "Verdict",
        "__version__",
        "current_child",
        "heartbeat",
        "notify_ready",
        "observe",
        "probes",
        "raise_ping_timeout",
        "reasons",
        "reports",
        "run",
        "simulate",
        "start",
        "stop_requested",
        "supervise",
        "wait_for_stop",
    ]
)

EXPECTED_REASONS = sorted(
    [
        "Abnormal",
        "Crashed",
        "ExitReason",
        "Exited",
        "FailedToStartChild",
        "Hung",
        "Ignored",
        "Killed",
        "NO_TERM",
        "NoRestart",
        "Normal",
        "ReasonKind",
        "Shutdown",
        "Signaled",
        "StartTimeout",
        "TreeShutdown",
        "Unstoppable",
    ]
)

EXPECTED_REPORTS = sorted(
    [
        "ChildExited",
        "ChildIgnored",
        "ChildStartFailed",
        "ChildStarted",
        "ChildTerminated",
        "ChildUnstoppable",
        "ExitRecord",
        "IntensityExceeded",
        "OutputDropped",
        "Report",
        "RestartScheduled",
        "SupervisorExited",
        "SupervisorStarted",
        "SupervisorStarting",
    ]
)

EXPECTED_OBSERVE = sorted(
    [
        "EXIT_REASONS",
        "FIELDS",
        "JsonFormatter",
        "MetricsServer",
        "TreeMetrics",
        "exit_reason_label",
        "report_fields",
        "serve_metrics",
    ]
)

EXPECTED_PROBES = sorted(["Call", "Exec", "Http", "Probe", "Tcp", "detection_bound"])

PUBLIC_MODULES = [
    pytest.param(otp_py, EXPECTED_ALL, id="otp_py"),
    pytest.param(reasons, EXPECTED_REASONS, id="otp_py.reasons"),
    pytest.param(reports, EXPECTED_REPORTS, id="otp_py.reports"),
    pytest.param(observe, EXPECTED_OBSERVE, id="otp_py.observe"),
    pytest.param(probes, EXPECTED_PROBES, id="otp_py.probes"),
]


@pytest.mark.parametrize(("module", "expected"), PUBLIC_MODULES)
def test_all_is_pinned(module: types.ModuleType, expected: list[str]) -> None:
    assert sorted(module.__all__) == expected


@pytest.mark.parametrize(("module", "expected"), PUBLIC_MODULES)
def test_all_has_no_duplicates(module: types.ModuleType, expected: list[str]) -> None:
    assert len(set(module.__all__)) == len(module.__all__)


@pytest.mark.parametrize(("module", "expected"), PUBLIC_MODULES)
def test_every_name_in_all_exists(module: types.ModuleType, expected: list[str]) -> None:
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize(("module", "expected"), PUBLIC_MODULES)
def test_nothing_public_is_missing_from_all(
    module: types.ModuleType, expected: list[str]
) -> None:
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(public - set(module.__all__)) == []


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from otp_py import *", namespace)
    namespace.pop("__builtins__")
    assert sorted(namespace) == EXPECTED_ALL


def test_version_is_a_string() -> None:
    assert isinstance(otp_py.__version__, str)


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        pytest.param("MaxChildrenError", (otp_py.OtpError, RuntimeError), id="max_children"),
        pytest.param(
            "NameTakenError", (otp_py.AlreadyStartedError, otp_py.OtpError, ValueError),
            id="name_taken",
        ),
    ],
)
def test_dynamic_supervisor_errors_inherit_the_nearest_builtin(
    error: str, bases: tuple[type, ...]
) -> None:
    cls = getattr(otp_py, error)
    assert all(issubclass(cls, base) for base in bases)
    assert cls.__doc__
