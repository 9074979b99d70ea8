"""Exit reasons: why a child ended. See :mod:`otp_py._core.reasons`.

``Normal``, ``Shutdown`` and ``Shutdown(term)`` are OTP's ``normal``, ``shutdown``
and ``{shutdown, Term}``; every other reason is abnormal (``reason.is_abnormal``).
"""

from otp_py._core.reasons import (
    NO_TERM,
    Abnormal,
    Crashed,
    Exited,
    ExitReason,
    FailedToStartChild,
    Hung,
    Ignored,
    Killed,
    NoRestart,
    Normal,
    ReasonKind,
    Shutdown,
    Signaled,
    StartTimeout,
    TreeShutdown,
    Unstoppable,
)

__all__ = [
    "NO_TERM",
    "Abnormal",
    "Crashed",
    "ExitReason",
    "Exited",
    "FailedToStartChild",
    "Hung",
    "Ignored",
    "Killed",
    "NoRestart",
    "Normal",
    "ReasonKind",
    "Shutdown",
    "Signaled",
    "StartTimeout",
    "TreeShutdown",
    "Unstoppable",
]
