"""Typed reports: every supervision decision as a value. See :mod:`otp_py._core.reports`."""

from otp_py._core.reports import (
    ChildExited,
    ChildIgnored,
    ChildStarted,
    ChildStartFailed,
    ChildTerminated,
    ChildUnstoppable,
    ExitRecord,
    IntensityExceeded,
    OutputDropped,
    Report,
    RestartScheduled,
    SupervisorExited,
    SupervisorStarted,
    SupervisorStarting,
)

__all__ = [
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
