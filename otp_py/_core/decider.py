"""The failure decider: from what happened to what to do.

OTP decides about an ended child from its restart type and its exit reason's class
alone (:mod:`otp_py._core.table`). A :class:`Decider` lets a spec say more, as
ordered rules: *this* exception type, exit code or signal means restart (perhaps after
a given delay), stop, escalate now, shut the whole tree down, or ignore. The first
rule that matches decides; when none does, OTP's table does. With no rules at all a
decider is exactly OTP's table, which is the default.

Decisions:

* ``RESTART``: restart per the strategy; counts against intensity. ``delay`` (if
  given) replaces the delay the intensity policy chose.
* ``STOP``: do not restart; the spec is kept (forgotten for temporary children), and
  ``auto_shutdown`` applies as for a normal exit.
* ``ESCALATE``: stop every child and exit now with reason ``shutdown``, as when the
  intensity is exceeded; the parent sees a child exit.
* ``SHUTDOWN_TREE``: stop the whole tree, in order, as if asked to (``run()``
  returns normally).
* ``IGNORE``: restart, without charging the restart budget.

Children steer the default decider with sentinel exceptions: raising
:class:`otp_py.DoNotRestart` ends the child with reason
:class:`~otp_py.reasons.NoRestart` (decided ``STOP``), raising
:class:`otp_py.ShutdownTree` ends it with :class:`~otp_py.reasons.TreeShutdown`
(decided ``SHUTDOWN_TREE``), whatever the restart type.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import attrs

from otp_py._core.reasons import (
    Crashed,
    Exited,
    ExitReason,
    Killed,
    NoRestart,
    Signaled,
    TreeShutdown,
)
from otp_py._core.table import RESTART_TABLE, Outcome
from otp_py._core.types import Restart

__all__ = ["Action", "Decider", "Decision", "OnExitCode", "OnSignal", "decide"]


class Action(enum.Enum):
    __hash__ = object.__hash__  # members are singletons; C-speed dict lookups

    RESTART = "restart"
    STOP = "stop"
    ESCALATE = "escalate"
    SHUTDOWN_TREE = "shutdown_tree"
    IGNORE = "ignore"


@attrs.frozen
class Decision:
    """What to do about an ended child; ``delay`` overrides a restart's backoff."""

    action: Action
    delay: float | None = None

    RESTART: ClassVar[Decision]
    STOP: ClassVar[Decision]
    ESCALATE: ClassVar[Decision]
    SHUTDOWN_TREE: ClassVar[Decision]
    IGNORE: ClassVar[Decision]

    @classmethod
    def restart(cls, delay: float | None = None) -> Decision:
        """Restart; after ``delay`` seconds if given (else the policy's delay)."""
        if delay is not None and (
            isinstance(delay, bool) or not isinstance(delay, int | float)
            or not 0 <= delay < math.inf
        ):
            raise ValueError(f"a restart delay must be a finite number >= 0; got {delay!r}")
        return cls(Action.RESTART, None if delay is None else float(delay))

    def describe(self) -> str:
        if self.delay is not None:
            return f"{self.action.value} after {self.delay:g} s"
        return self.action.value


Decision.RESTART = Decision(Action.RESTART)
Decision.STOP = Decision(Action.STOP)
Decision.ESCALATE = Decision(Action.ESCALATE)
Decision.SHUTDOWN_TREE = Decision(Action.SHUTDOWN_TREE)
Decision.IGNORE = Decision(Action.IGNORE)


def _ints(value: int | Iterable[int]) -> tuple[int, ...]:
    """One integer or several, exactly: ``"78"`` is not ``(7, 8)``, nor 1.5 ``1``."""
    values = (value,) if isinstance(value, int) else value
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"expected an int or a list of ints; got {value!r}")
    out = tuple(values)
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"expected an int or a list of ints; got {value!r}")
    if not out:
        raise ValueError("expected at least one int; got none")
    return out


def _signals(value: int | Iterable[int]) -> tuple[int, ...]:
    out = _ints(value)
    for v in out:
        if not 1 <= v <= 127:
            raise ValueError(f"a signal number is between 1 and 127; got {v!r}")
    return out


@attrs.frozen
class OnExitCode:
    """Matches a process or command child that exited with one of ``codes``."""

    codes: tuple[int, ...] = attrs.field(converter=_ints)

    def __call__(self, reason: ExitReason) -> bool:
        return isinstance(reason, Exited) and reason.code in self.codes


@attrs.frozen
class OnSignal:
    """Matches a process or command child ended by one of ``signals`` (SIGKILL also
    matches a child the supervisor killed)."""

    signals: tuple[int, ...] = attrs.field(converter=_signals)

    def __call__(self, reason: ExitReason) -> bool:
        if isinstance(reason, Signaled):
            return reason.signal in self.signals
        return isinstance(reason, Killed) and 9 in self.signals


Matcher = Callable[[ExitReason], bool]


def _matcher(key: Any) -> Matcher:
    """A rule's key as a predicate: an exception class, a reason class, an
    :class:`OnExitCode`/:class:`OnSignal`, or any callable taking the reason."""
    if isinstance(key, type) and issubclass(key, BaseException):
        name = f"{key.__module__}.{key.__qualname__}"

        def crashed_with(reason: ExitReason) -> bool:
            return isinstance(reason, Crashed) and name in reason.error_types

        return crashed_with
    if isinstance(key, type) and issubclass(key, ExitReason):
        kind = key

        def reason_is(reason: ExitReason) -> bool:
            return isinstance(reason, kind)

        return reason_is
    if callable(key):
        return key  # type: ignore[no-any-return]
    raise TypeError(
        f"a decider rule matches an exception class, an ExitReason class, OnExitCode, "
        f"OnSignal or a callable; got {key!r}"
    )


def _rules(value: Any) -> tuple[tuple[Matcher, Decision], ...]:
    items: Iterable[tuple[Any, Any]]
    items = value.items() if isinstance(value, Mapping) else value
    rules = []
    for key, given in items:
        decision = Decision(given) if isinstance(given, Action) else given
        if not isinstance(decision, Decision):
            raise TypeError(f"a decider rule's decision must be a Decision; got {given!r}")
        rules.append((_matcher(key), decision))
    return tuple(rules)


@attrs.frozen
class Decider:
    """Ordered rules from what happened to a :class:`Decision`, falling back to OTP's
    restart table. ``rules`` is a mapping (or a sequence of pairs) from a matcher to a
    decision::

        Decider({
            OnExitCode(78): Decision.ESCALATE,           # EX_CONFIG: nothing to retry
            OnSignal(signal.SIGKILL): Decision.restart(delay=2.0),
            ConfigError: Decision.STOP,                  # an exception class
        })
    """

    rules: tuple[tuple[Matcher, Decision], ...] = attrs.field(default=(), converter=_rules)

    def decide(self, restart: Restart, reason: ExitReason) -> Decision:
        for matches, decision in self.rules:
            if matches(reason):
                return decision
        return decide(restart, reason)


_FROM_OUTCOME = {Outcome.RESTART: Decision.RESTART, Outcome.KEEP: Decision.STOP,
                 Outcome.REMOVE: Decision.STOP}

# The table, turned into decisions once; and the sentinels, by reason type.
_BY_CELL = {cell: _FROM_OUTCOME[result] for cell, result in RESTART_TABLE.items()}
_SENTINELS: dict[type, Decision] = {
    NoRestart: Decision.STOP, TreeShutdown: Decision.SHUTDOWN_TREE
}


# The default decision by (restart type, reason class), for the reason classes whose
# column is fixed by the class (all but Shutdown, whose term picks it): a crash loop
# asks this once per crash, and hashing two enum members (a Python-level __hash__
# each) and reading ``kind`` (a property) cost more than the rest of the lookup.
_BY_CLASS: dict[tuple[int, type], Decision] = {}


def decide(restart: Restart, reason: ExitReason) -> Decision:
    """The default decision: the sentinels, then OTP's restart table."""
    cls = type(reason)
    key = (id(restart), cls)
    found = _BY_CLASS.get(key)
    if found is not None:
        return found
    sentinel = _SENTINELS.get(cls)
    decision = sentinel if sentinel is not None else _BY_CELL[restart, reason.kind]
    if cls.kind is ExitReason.kind and len(_BY_CLASS) < 1024:  # kind fixed by the class
        _BY_CLASS[key] = decision
    return decision


DEFAULT = Decider()
