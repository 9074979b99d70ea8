"""Restart strategies: which siblings a failure touches, and in what order.

A strategy is consulted once a child has ended and the restart table said it must be
restarted. It answers with a :class:`RestartPlan`: the running siblings to stop (in
the order given) and the children to start afterwards (in the order given). The core
executes the plan exactly as OTP does: stops one at a time, each waiting for the
child to end (or be killed after its shutdown timeout), then starts one at a time,
each waiting for the child to be up. A temporary child that a plan stops is never
restarted; its spec is forgotten, as in OTP.

The built-in strategies are OTP's: :class:`OneForOne`, :class:`OneForAll`,
:class:`RestForOne` and :class:`SimpleOneForOne`. Subclass :class:`RestartStrategy`
to write your own; the plan is plain data, so a strategy is tested by calling it.

Cost: a strategy sees its siblings through a :class:`Siblings` view, never a copied
list, so :class:`OneForOne` decides in constant time however many children there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar, Protocol

import attrs

from otp_py._core.types import Restart

__all__ = [
    "OneForAll",
    "OneForOne",
    "RestForOne",
    "RestartPlan",
    "RestartStrategy",
    "Siblings",
    "SimpleOneForOne",
]


class Siblings(Protocol):
    """A read-only view of a supervisor's children, in start order.

    Iterating yields child ids in start order; ``reversed()`` in stop order.
    """

    def __iter__(self) -> Iterator[str]: ...

    def __reversed__(self) -> Iterator[str]: ...

    def __len__(self) -> int: ...

    def __contains__(self, child_id: object) -> bool: ...

    def after(self, child_id: str) -> Iterator[str]:
        """Ids of the children started after ``child_id``, in start order."""
        ...

    def restart_type(self, child_id: str) -> Restart:
        """The restart type of a child."""
        ...

    def is_running(self, child_id: str) -> bool:
        """Whether the child is currently running."""
        ...


def _ids(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError(f"a RestartPlan takes a sequence of child ids, not the string {value!r}")
    return tuple(value)


@attrs.frozen
class RestartPlan:
    """What to do about one failed child.

    ``stop``: ids of siblings to stop, in the order they must be stopped.
    ``start``: ids to start afterwards, in the order they must be started; the failed
    child is normally among them. Ids of temporary children stopped by the plan are
    skipped when starting, as OTP never restarts a temporary child.
    """

    stop: tuple[str, ...] = attrs.field(converter=_ids)
    start: tuple[str, ...] = attrs.field(converter=_ids)

    @classmethod
    def just(cls, failed: str) -> RestartPlan:
        """Restart only the failed child."""
        return cls(stop=(), start=(failed,))

    @classmethod
    def group(cls, failed: str, members: Iterable[str]) -> RestartPlan:
        """Stop ``members`` (given in start order, the failed child among them) in
        reverse order, then start them all again in start order."""
        ordered = tuple(members)
        return cls(stop=tuple(c for c in reversed(ordered) if c != failed), start=ordered)


class RestartStrategy:
    """Base class of restart strategies.

    Subclasses override :meth:`plan`. ``name`` is how the strategy is shown in reports
    and the tree view. Strategies are immutable values: they hold configuration, never
    per-supervisor state (that lives in the core), so one instance can serve many
    supervisors.

    Example: restart the failed child and every sibling that shares its id prefix
    (``"db.reader"`` and ``"db.writer"`` go together)::

        class OneForPrefix(otp.RestartStrategy):
            name = "one_for_prefix"

            def plan(self, failed, siblings):
                prefix = failed.split(".")[0] + "."
                group = [c for c in siblings if c.startswith(prefix)]
                return otp.RestartPlan.group(failed, group)
    """

    name: ClassVar[str] = "custom"
    dynamic: ClassVar[bool] = False
    """Whether children are dynamic (only :class:`SimpleOneForOne`): started at run
    time from one template and stopped all at once."""

    def plan(self, failed: str, siblings: Siblings) -> RestartPlan:
        """Decide which children to stop and start because ``failed`` must restart.

        ``failed`` has already ended. Return a :class:`RestartPlan` naming only ids
        found in ``siblings``. Raising here is a bug in the strategy: the supervisor
        then exits abnormally with the exception as its reason.
        """
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class OneForOne(RestartStrategy):
    """Only the failed child is restarted (OTP's ``one_for_one``)."""

    name = "one_for_one"

    def plan(self, failed: str, siblings: Siblings) -> RestartPlan:
        return RestartPlan.just(failed)


class OneForAll(RestartStrategy):
    """Every child is stopped (in reverse start order) and all are restarted (in start
    order) when one fails (OTP's ``one_for_all``)."""

    name = "one_for_all"

    def plan(self, failed: str, siblings: Siblings) -> RestartPlan:
        return RestartPlan.group(failed, siblings)


class RestForOne(RestartStrategy):
    """The failed child and every child started after it are restarted
    (OTP's ``rest_for_one``)."""

    name = "rest_for_one"

    def plan(self, failed: str, siblings: Siblings) -> RestartPlan:
        return RestartPlan.group(failed, (failed, *siblings.after(failed)))


class SimpleOneForOne(RestartStrategy):
    """One child template; children are added at run time with ``start_child`` and
    restarted one by one. On shutdown they are stopped all at once, in no defined
    order (OTP's ``simple_one_for_one``)."""

    name = "simple_one_for_one"
    dynamic = True

    def plan(self, failed: str, siblings: Siblings) -> RestartPlan:
        return RestartPlan.just(failed)
