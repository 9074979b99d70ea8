"""otp_py: Erlang/OTP supervision trees for Python.

Declare what runs (:class:`ChildSpec`), how to recover (restart strategies) and how
much failure is too much (intensity policies), nest supervisors into a tree, and let
it contain and heal failures. This module only re-exports the public API.
"""

from otp_py import reasons, reports
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
from otp_py._core.simulate import Simulation, StartFails, simulate
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
    IntensityExceededError,
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
from otp_py.runtime.api import AsyncSupervisor, Supervisor, run, start, supervise
from otp_py.spec import ChildSpec, Heartbeat, LoopWatchdog, SupervisorSpec

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
    "Heartbeat",
    "IntensityExceededError",
    "IntensityPolicy",
    "LoopWatchdog",
    "MaxRestartsExceededError",
    "NotSupportedError",
    "OFASupervisor",
    "OnExitCode",
    "OnSignal",
    "OneForAll",
    "OneForOne",
    "OtpError",
    "Outcome",
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
    "Verdict",
    "__version__",
    "current_child",
    "heartbeat",
    "notify_ready",
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

# The Celery 0.4 compatibility layer is built on the names above, so it is imported
# last, once they all exist (otp_py.compat imports otp_py).
from otp_py.compat import (
    MaxRestartsExceededError,
    OFASupervisor,
    raise_ping_timeout,
)
