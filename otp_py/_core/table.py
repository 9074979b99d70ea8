"""OTP's restart table, as data.

When a child ends by itself, what happens next depends only on its restart type and
the class of its exit reason. This module holds that decision as a table, so tests
and the documentation read the very object the core consults (the docs' table is
generated from :data:`RESTART_TABLE`).

Outcomes:

* ``RESTART``: the child is restarted (subject to the strategy and intensity).
* ``KEEP``: the child stays stopped; its spec is kept (``restart_child`` can start it).
* ``REMOVE``: the child stays stopped and its spec is forgotten.

This mirrors ``do_restart/3`` in OTP's ``supervisor.erl``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from otp_py._core.reasons import ReasonKind
from otp_py._core.types import Restart

__all__ = ["RESTART_TABLE", "Outcome", "outcome"]


class Outcome(enum.Enum):
    """What the supervisor does with a child that ended by itself."""

    __hash__ = object.__hash__  # members are singletons; C-speed dict lookups

    RESTART = "restart"
    KEEP = "keep"
    REMOVE = "remove"


_R, _K, _X = Outcome.RESTART, Outcome.KEEP, Outcome.REMOVE

RESTART_TABLE: Mapping[tuple[Restart, ReasonKind], Outcome] = MappingProxyType(
    {
        (Restart.PERMANENT, ReasonKind.NORMAL): _R,
        (Restart.PERMANENT, ReasonKind.SHUTDOWN): _R,
        (Restart.PERMANENT, ReasonKind.SHUTDOWN_TERM): _R,
        (Restart.PERMANENT, ReasonKind.ABNORMAL): _R,
        (Restart.TRANSIENT, ReasonKind.NORMAL): _K,
        (Restart.TRANSIENT, ReasonKind.SHUTDOWN): _K,
        (Restart.TRANSIENT, ReasonKind.SHUTDOWN_TERM): _K,
        (Restart.TRANSIENT, ReasonKind.ABNORMAL): _R,
        (Restart.TEMPORARY, ReasonKind.NORMAL): _X,
        (Restart.TEMPORARY, ReasonKind.SHUTDOWN): _X,
        (Restart.TEMPORARY, ReasonKind.SHUTDOWN_TERM): _X,
        (Restart.TEMPORARY, ReasonKind.ABNORMAL): _X,
    }
)
"""(restart type, reason class) -> outcome, for every pair."""


def outcome(restart: Restart, kind: ReasonKind) -> Outcome:
    """Look up the table."""
    return RESTART_TABLE[restart, kind]
