"""otp_py: Erlang/OTP supervision trees for Python.

Declare what runs (:class:`ChildSpec`), how to recover (restart strategies) and how
much failure is too much (intensity policies), nest supervisors into a tree, and let
it contain and heal failures. This module only re-exports the public API.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:  # for type checkers and readers; at run time names load on first use
    from otp_py import observe, probes, reasons, reports
    from otp_py._core.decider import Decider, Decision, OnExitCode, OnSignal
    from otp_py._core.intensity import (
        Budget,
        Combined,
        DecayingFailureCount,
        ExponentialBackoff,
        IntensityPolicy,
        SharedBudget,
        SlidingWindow,
        Verdict,
    )
    from otp_py._core.reload import ReloadPlan
    from otp_py._core.simulate import HandledExit, Simulation, StartFails, simulate
    from otp_py._core.strategies import (
        OneForAll,
        OneForOne,
        RestartPlan,
        RestartStrategy,
        RestForOne,
        Siblings,
        SimpleOneForOne,
    )
    from otp_py._core.supervisor import ChildCounts, ChildInfo
    from otp_py._core.table import RESTART_TABLE, Outcome
    from otp_py._core.types import BRUTAL_KILL, INFINITY, AutoShutdown, Restart
    from otp_py._errors import (
        AlreadyPresentError,
        AlreadyStartedError,
        ChildNotFoundError,
        ChildRestartingError,
        ChildRunningError,
        DoNotRestart,
        Ignore,
        IntensityExceededError,
        MaxChildrenError,
        NameTakenError,
        NotSupportedError,
        OtpError,
        Shutdown,
        ShutdownTree,
        SpecError,
        SpecTypeError,
        StartChildError,
        SupervisorExitError,
        SupervisorNotRunningError,
    )
    from otp_py.backends.context import (
        current_child,
        heartbeat,
        notify_ready,
        stop_requested,
        wait_for_stop,
    )
    from otp_py.compat import (
        MaxRestartsExceededError,
        OFASupervisor,
        raise_ping_timeout,
    )
    from otp_py.observe.jsonlog import JsonFormatter
    from otp_py.observe.metrics import TreeMetrics
    from otp_py.partitions import partitioned
    from otp_py.runtime.api import AsyncSupervisor, Supervisor, run, start, supervise
    from otp_py.spec import ChildSpec, Heartbeat, LoopWatchdog, OutputCapture, SupervisorSpec

__version__ = "0.1.0"

__all__ = [
    "BRUTAL_KILL",
    "INFINITY",
    "RESTART_TABLE",
    "AlreadyPresentError",
    "AlreadyStartedError",
    "AsyncSupervisor",
    "AutoShutdown",
    "Budget",
    "ChildCounts",
    "ChildInfo",
    "ChildNotFoundError",
    "ChildRestartingError",
    "ChildRunningError",
    "ChildSpec",
    "Combined",
    "DecayingFailureCount",
    "Decider",
    "Decision",
    "DoNotRestart",
    "ExponentialBackoff",
    "HandledExit",
    "Heartbeat",
    "Ignore",
    "IntensityExceededError",
    "IntensityPolicy",
    "JsonFormatter",
    "LoopWatchdog",
    "MaxChildrenError",
    "MaxRestartsExceededError",
    "NameTakenError",
    "NotSupportedError",
    "OFASupervisor",
    "OnExitCode",
    "OnSignal",
    "OneForAll",
    "OneForOne",
    "OtpError",
    "Outcome",
    "OutputCapture",
    "ReloadPlan",
    "RestForOne",
    "Restart",
    "RestartPlan",
    "RestartStrategy",
    "SharedBudget",
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
    "partitioned",
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

# Where each public name lives. ``import otp_py`` loads nothing else: a name's module is
# imported on first use (PEP 562), so a child process that only needs the child-side
# functions, or a tool that only reads specs, does not pay for the runtime's imports.
_WHERE: dict[str, str] = {
    "AlreadyPresentError": "otp_py._errors",
    "AlreadyStartedError": "otp_py._errors",
    "AsyncSupervisor": "otp_py.runtime.api",
    "AutoShutdown": "otp_py._core.types",
    "BRUTAL_KILL": "otp_py._core.types",
    "Budget": "otp_py._core.intensity",
    "ChildCounts": "otp_py._core.supervisor",
    "ChildInfo": "otp_py._core.supervisor",
    "ChildNotFoundError": "otp_py._errors",
    "ChildRestartingError": "otp_py._errors",
    "ChildRunningError": "otp_py._errors",
    "ChildSpec": "otp_py.spec",
    "Combined": "otp_py._core.intensity",
    "DecayingFailureCount": "otp_py._core.intensity",
    "Decider": "otp_py._core.decider",
    "Decision": "otp_py._core.decider",
    "DoNotRestart": "otp_py._errors",
    "ExponentialBackoff": "otp_py._core.intensity",
    "HandledExit": "otp_py._core.simulate",
    "Heartbeat": "otp_py.spec",
    "INFINITY": "otp_py._core.types",
    "Ignore": "otp_py._errors",
    "IntensityExceededError": "otp_py._errors",
    "IntensityPolicy": "otp_py._core.intensity",
    "JsonFormatter": "otp_py.observe.jsonlog",
    "LoopWatchdog": "otp_py.spec",
    "MaxChildrenError": "otp_py._errors",
    "MaxRestartsExceededError": "otp_py.compat",
    "NameTakenError": "otp_py._errors",
    "NotSupportedError": "otp_py._errors",
    "OFASupervisor": "otp_py.compat",
    "OnExitCode": "otp_py._core.decider",
    "OnSignal": "otp_py._core.decider",
    "OneForAll": "otp_py._core.strategies",
    "OneForOne": "otp_py._core.strategies",
    "OtpError": "otp_py._errors",
    "Outcome": "otp_py._core.table",
    "OutputCapture": "otp_py.spec",
    "RESTART_TABLE": "otp_py._core.table",
    "RestForOne": "otp_py._core.strategies",
    "Restart": "otp_py._core.types",
    "ReloadPlan": "otp_py._core.reload",
    "RestartPlan": "otp_py._core.strategies",
    "RestartStrategy": "otp_py._core.strategies",
    "SharedBudget": "otp_py._core.intensity",
    "Shutdown": "otp_py._errors",
    "ShutdownTree": "otp_py._errors",
    "Siblings": "otp_py._core.strategies",
    "SimpleOneForOne": "otp_py._core.strategies",
    "Simulation": "otp_py._core.simulate",
    "SlidingWindow": "otp_py._core.intensity",
    "SpecError": "otp_py._errors",
    "SpecTypeError": "otp_py._errors",
    "StartChildError": "otp_py._errors",
    "StartFails": "otp_py._core.simulate",
    "Supervisor": "otp_py.runtime.api",
    "SupervisorExitError": "otp_py._errors",
    "SupervisorNotRunningError": "otp_py._errors",
    "SupervisorSpec": "otp_py.spec",
    "TreeMetrics": "otp_py.observe.metrics",
    "Verdict": "otp_py._core.intensity",
    "current_child": "otp_py.backends.context",
    "heartbeat": "otp_py.backends.context",
    "notify_ready": "otp_py.backends.context",
    "partitioned": "otp_py.partitions",
    "raise_ping_timeout": "otp_py.compat",
    "reasons": "otp_py.reasons",
    "observe": "otp_py.observe",
    "probes": "otp_py.probes",
    "reports": "otp_py.reports",
    "run": "otp_py.runtime.api",
    "simulate": "otp_py._core.simulate",
    "start": "otp_py.runtime.api",
    "stop_requested": "otp_py.backends.context",
    "supervise": "otp_py.runtime.api",
    "wait_for_stop": "otp_py.backends.context",
}
_SUBMODULES = frozenset({"observe", "probes", "reasons", "reports"})


def __getattr__(name: str) -> _typing.Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'otp_py' has no attribute {name!r}")
    imported = _importlib.import_module(module)
    value = imported if name in _SUBMODULES else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
