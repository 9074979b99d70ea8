"""Intensity policies: whether a restart may happen, and when.

A policy is an immutable value on a :class:`~otp_py.SupervisorSpec`. Each supervisor
asks it for a :class:`Budget` (its mutable bookkeeping) when it starts, and consults
the budget every time the restart table says a child must restart:

* ``budget.on_failure(child_id, now)`` returns a :class:`Verdict`: restart now,
  restart after a delay, or give up (the supervisor then stops every child and exits
  with reason ``shutdown``, escalating to its parent);
* ``budget.on_started(child_id, now)`` is told of every successful start, so policies
  that reset after a stable period know each child's uptime;
* ``budget.forget(child_id)`` drops a child that left the supervisor;
* ``budget.used_ratio(now)`` says, without changing anything, how much of the
  budget is used at ``now`` (for metrics and alerts): 0 when nothing counts against
  it, 1 when the next restart gives up; None for policies that never give up.

A restart counts when it is *decided*: when the failure is handled, not when a
delayed start finally runs. A failed restart that is retried counts again, as in OTP.

Time is always passed in (``now``, in seconds on any monotonic scale); policies never
read a clock. Randomness (jitter) comes from an injected ``random()`` function.

Policies compose with ``&``: ``SlidingWindow(3, 5) & ExponentialBackoff()`` gives up
when the window is exceeded and otherwise waits the backoff's delay.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from otp_py._core.names import MAX_NAME_LENGTH, name_problem
from otp_py._errors import SpecError, SpecTypeError

__all__ = [
    "Budget",
    "Combined",
    "DecayingFailureCount",
    "ExponentialBackoff",
    "IntensityPolicy",
    "RandomSource",
    "SharedBudget",
    "SlidingWindow",
    "Verdict",
]

_MAX_SECONDS = 365 * 24 * 3600.0
"""The longest period or delay accepted: a year (more is milliseconds given as seconds)."""

_EPSILON = 1e-9
"""Seconds of float rounding tolerated when a timer set for a pause's end fires."""

RandomSource = Callable[[], float]
"""A function returning uniform floats in [0, 1), like ``random.Random().random``."""


@attrs.frozen
class Verdict:
    """A budget's answer to a failure: ``allow`` the restart (after ``delay``
    seconds) or give up. ``why`` explains a refusal in words for reports."""

    allow: bool
    delay: float = 0.0
    why: str = ""

    @classmethod
    def now(cls) -> Verdict:
        """Restart at once."""
        return _NOW

    @classmethod
    def after(cls, delay: float) -> Verdict:
        """Restart after ``delay`` seconds (at once if ``delay`` is not positive)."""
        return cls(True, delay) if delay > 0 else _NOW

    @classmethod
    def give_up(cls, why: str) -> Verdict:
        """Refuse the restart: the supervisor stops its children and exits."""
        return cls(False, 0.0, why)


_NOW = Verdict(True, 0.0)


class Budget(ABC):
    """The per-supervisor bookkeeping of an intensity policy. Not thread-safe; only
    the supervisor's core calls it."""

    @abstractmethod
    def on_failure(self, child_id: str, now: float) -> Verdict:
        """A child must restart; may it, and when?"""

    def on_started(self, child_id: str, now: float) -> None:  # noqa: B027 - optional hook
        """A child started successfully at ``now``."""

    def forget(self, child_id: str) -> None:  # noqa: B027 - optional hook
        """A child left the supervisor; drop whatever is kept about it."""

    def used_ratio(self, now: float) -> float | None:
        """How close the budget is to giving up at ``now``: the restarts that still
        count divided by the restarts allowed, so 1.0 means the next restart is
        refused. A pure query (nothing is pruned or recorded). None, the default,
        means the policy never gives up on its own (a backoff, a decaying count)."""
        return None

    def held(self, now: float) -> float:
        """Seconds that a restart already delayed, now due, must still wait: a pause
        that a later failure extended (suture's re-armed backoff). The supervisor
        asks when a delayed restart's timer fires and waits again if this is
        positive. Default: 0, never held."""
        return 0.0


class IntensityPolicy(ABC):
    """Base class of intensity policies. Subclasses are frozen attrs classes that
    implement :meth:`budget`."""

    @abstractmethod
    def budget(self, random: RandomSource) -> Budget:
        """Fresh bookkeeping for one supervisor."""

    def __and__(self, other: IntensityPolicy) -> Combined:
        if not isinstance(other, IntensityPolicy):
            return NotImplemented
        left = self.policies if isinstance(self, Combined) else (self,)
        right = other.policies if isinstance(other, Combined) else (other,)
        return Combined(left + right)

    def describe(self) -> str:
        """One line for reports and the tree view."""
        return repr(self)


def _number(
    owner: str, field: str, value: Any, *, minimum: float, inclusive: bool, finite: bool = True
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecTypeError(None, field, f"{owner}.{field} must be a number; got {value!r}",
                            value=value)
    nan = isinstance(value, float) and math.isnan(value)  # (no float() of a huge int)
    if nan or (finite and not -math.inf < value < math.inf):
        raise SpecError(None, field, f"{owner}.{field} must be a finite number; got {value!r}",
                        value=value)
    too_small = value < minimum if inclusive else value <= minimum
    if too_small:
        bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
        raise SpecError(None, field, f"{owner}.{field} must be {bound}; got {value!r}",
                        value=value)
    try:
        return float(value)
    except OverflowError:  # an int too large for a float
        raise SpecError(None, field, f"{owner}.{field} is too large; got {value!r}",
                        value=value) from None


@attrs.frozen
class SlidingWindow(IntensityPolicy):
    """OTP's restart intensity: give up when more than ``max_restarts`` restarts
    happen within ``period`` seconds.

    The boundary is OTP's: a restart at time ``t`` still counts at ``now`` when
    ``t >= now - period``; the new restart is added, and the supervisor gives up when
    the count then exceeds ``max_restarts``. ``SlidingWindow(0, 5)`` gives up on the
    first failure. The default, ``SlidingWindow(1, 5)``, is OTP's default (intensity
    1, period 5).

    ``resolution``: OTP stamps each restart with the whole second it happened in
    (``erlang:monotonic_time(second)``), so two restarts up to almost ``period + 1``
    seconds apart can share a window. By default (``None``) otp_py uses the exact
    time; ``resolution=1.0`` stamps as OTP does (time ``t`` counts as
    ``floor(t / resolution)`` units of ``resolution`` seconds of the supervisor's
    monotonic clock), for a tree that must decide exactly as its Erlang original.
    """

    max_restarts: int = attrs.field(default=1)
    period: float = attrs.field(default=5.0)
    resolution: float | None = attrs.field(default=None, kw_only=True)

    @max_restarts.validator
    def _check_max(self, _: Any, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecTypeError(
                None, "max_restarts", f"SlidingWindow.max_restarts must be an int; got {value!r}",
                value=value,
            )
        if value < 0:
            raise SpecError(
                None, "max_restarts", f"SlidingWindow.max_restarts must be >= 0; got {value!r}",
                value=value,
            )

    @period.validator
    def _check_period(self, _: Any, value: Any) -> None:
        _number("SlidingWindow", "period", value, minimum=0, inclusive=False)
        if value > _MAX_SECONDS:
            raise SpecError(None, "period", f"SlidingWindow.period must be at most a year "
                            f"({_MAX_SECONDS:.0f} s; seconds, not milliseconds); got {value!r}",
                            value=value)

    @resolution.validator
    def _check_resolution(self, _: Any, value: Any) -> None:
        if value is not None:
            _number("SlidingWindow", "resolution", value, minimum=0, inclusive=False)
            if value > _MAX_SECONDS:
                raise SpecError(None, "resolution", "SlidingWindow.resolution must be at "
                                f"most a year; got {value!r}")

    def budget(self, random: RandomSource) -> Budget:
        unit = None if self.resolution is None else float(self.resolution)
        return _WindowBudget(self.max_restarts, float(self.period), unit)

    def describe(self) -> str:
        noun = "restart" if self.max_restarts == 1 else "restarts"
        return f"at most {self.max_restarts} {noun} in {self.period:g} s"


class _WindowBudget(Budget):
    __slots__ = ("_max", "_period", "_times", "_unit")

    def __init__(self, max_restarts: int, period: float, unit: float | None = None) -> None:
        self._max = max_restarts
        self._period = period
        self._unit = unit
        self._times: deque[float] = deque()

    def on_failure(self, child_id: str, now: float) -> Verdict:
        if self._unit is not None:  # OTP's stamps: the whole unit ``now`` falls in
            now = math.floor(now / self._unit) * self._unit
        times = self._times
        threshold = now - self._period
        while times and times[0] < threshold:
            times.popleft()
        times.append(now)
        if len(times) <= self._max:
            return _NOW
        count = len(times)
        return Verdict.give_up(
            f"{count} {'restart' if count == 1 else 'restarts'} within {self._period:g} s "
            f"(at most {self._max} allowed)"
        )

    def used_ratio(self, now: float) -> float | None:
        if self._max == 0:
            return 1.0  # the first restart already gives up
        threshold = now - self._period
        counted = 0
        for stamp in reversed(self._times):  # newest first; at most max + 1 of them
            if stamp < threshold:
                break
            counted += 1
        return min(counted / self._max, 1.0)


@attrs.frozen
class ExponentialBackoff(IntensityPolicy):
    """Wait longer before each consecutive restart of the same child.

    The n-th consecutive failure of a child waits ``initial * multiplier**(n-1)``
    seconds, capped at ``maximum``, spread by ``jitter`` (0.1 means +/-10 %, drawn
    from the supervisor's random source so siblings do not restart in lockstep). A
    child that stays up for ``reset_after`` seconds (default: ``maximum``) starts
    again from ``initial``. This policy never gives up on its own; combine it with a
    window (``SlidingWindow(...) & ExponentialBackoff(...)``) for that.
    """

    initial: float = attrs.field(default=0.1)
    maximum: float = attrs.field(default=30.0)
    multiplier: float = attrs.field(default=2.0)
    jitter: float = attrs.field(default=0.1)
    reset_after: float | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        _number("ExponentialBackoff", "initial", self.initial, minimum=0, inclusive=True)
        _number("ExponentialBackoff", "maximum", self.maximum, minimum=0, inclusive=True)
        _number("ExponentialBackoff", "multiplier", self.multiplier, minimum=1, inclusive=True)
        _number("ExponentialBackoff", "jitter", self.jitter, minimum=0, inclusive=True)
        if self.jitter > 1:
            raise SpecError(
                None, "jitter", f"ExponentialBackoff.jitter must be <= 1; got {self.jitter!r}"
            )
        if self.maximum < self.initial:
            raise SpecError(
                None,
                "maximum",
                f"ExponentialBackoff.maximum ({self.maximum!r}) must be >= initial "
                f"({self.initial!r})",
            )
        if self.reset_after is not None:
            _number("ExponentialBackoff", "reset_after", self.reset_after, minimum=0,
                    inclusive=False)

    def delay_for(self, failures: int, draw: float = 0.5) -> float:
        """The delay before restart number ``failures`` (1-based) of one child, for a
        random draw in [0, 1) (0.5 means no jitter)."""
        exponent = max(failures - 1, 0)
        try:
            base = min(self.initial * self.multiplier**exponent, self.maximum)
        except OverflowError:  # far past the cap: the delay is the maximum
            base = self.maximum
        spread = 1.0 + self.jitter * (2.0 * draw - 1.0)
        return min(max(base * spread, 0.0), self.maximum)

    def budget(self, random: RandomSource) -> Budget:
        reset = self.maximum if self.reset_after is None else self.reset_after
        return _BackoffBudget(self, reset, random)

    def describe(self) -> str:
        return (
            f"backoff {self.initial:g} s x{self.multiplier:g} up to {self.maximum:g} s"
            f" (+/-{self.jitter * 100:g} %)"
        )


class _BackoffBudget(Budget):
    __slots__ = ("_failures", "_policy", "_random", "_reset", "_started")

    def __init__(self, policy: ExponentialBackoff, reset: float, random: RandomSource) -> None:
        self._policy = policy
        self._reset = reset
        self._random = random
        self._failures: dict[str, int] = {}
        self._started: dict[str, float] = {}

    def on_failure(self, child_id: str, now: float) -> Verdict:
        started = self._started.pop(child_id, None)
        count = self._failures.get(child_id, 0)
        if started is not None and now - started >= self._reset:
            count = 0
        count += 1
        self._failures[child_id] = count
        draw = self._random() if self._policy.jitter else 0.5
        return Verdict.after(self._policy.delay_for(count, draw))

    def on_started(self, child_id: str, now: float) -> None:
        self._started[child_id] = now

    def forget(self, child_id: str) -> None:
        self._failures.pop(child_id, None)
        self._started.pop(child_id, None)


@attrs.frozen
class DecayingFailureCount(IntensityPolicy):
    """Go's suture (v4): a failure count that decays, and a pause when it is too high.

    Suture's rules (``v4/supervisor.go``: ``handleFailedService`` and the resume
    timer in ``Serve``), all mirrored:

    * every failure adds 1 to one supervisor-wide count, which halves every
      ``decay`` seconds (smoothly: ``count * 0.5 ** (elapsed / decay) + 1``);
    * when the count then exceeds ``threshold``, the supervisor *pauses* for
      ``backoff`` seconds (stretched by up to ``jitter``: ``backoff * (1 + jitter *
      draw)``, suture's ``DefaultJitter`` being ``jitter=0.5``); a failure during
      the pause that again exceeds the threshold starts the pause again from then;
    * while paused, *every* restart waits for the pause to end, the ones that did not
      pass the threshold included; outside a pause, restarts are immediate;
    * when the pause ends, the queued children restart and **the count is reset to
      0**, so the next failure restarts at once.

    It never gives up on its own; combine it with a window for that. ``jitter``
    defaults to 0 (no randomness) rather than suture's 0.5, so that a spec's
    timings are exact unless asked otherwise. With jitter, a later pause may end
    sooner than the one it replaced; the children queued before it then restart
    when the earlier pause would have ended (suture starts them sooner).
    """

    threshold: float = attrs.field(default=5.0)
    decay: float = attrs.field(default=30.0)
    backoff: float = attrs.field(default=15.0)
    jitter: float = attrs.field(default=0.0)

    def __attrs_post_init__(self) -> None:
        _number("DecayingFailureCount", "threshold", self.threshold, minimum=0, inclusive=True)
        _number("DecayingFailureCount", "decay", self.decay, minimum=0, inclusive=False)
        _number("DecayingFailureCount", "backoff", self.backoff, minimum=0, inclusive=True)
        _number("DecayingFailureCount", "jitter", self.jitter, minimum=0, inclusive=True)

    def budget(self, random: RandomSource) -> Budget:
        return _DecayBudget(self, random)

    def describe(self) -> str:
        jitter = f" +{self.jitter * 100:g} %" if self.jitter else ""
        return (
            f"pause {self.backoff:g} s{jitter} while failures > {self.threshold:g}"
            f" (half-life {self.decay:g} s)"
        )


class _DecayBudget(Budget):
    __slots__ = ("_count", "_last", "_policy", "_random", "_resume_at")

    def __init__(self, policy: DecayingFailureCount, random: RandomSource) -> None:
        self._policy = policy
        self._random = random
        self._count = 0.0
        self._last: float | None = None
        self._resume_at: float | None = None
        """When the current pause ends; None when not paused."""

    def _resume_if_due(self, now: float) -> None:
        # Suture's resume timer: back to normal, and the failure count starts over.
        if self._resume_at is not None and now >= self._resume_at - _EPSILON:
            self._resume_at = None
            self._count = 0.0

    def on_failure(self, child_id: str, now: float) -> Verdict:
        self._resume_if_due(now)
        policy = self._policy
        if self._last is not None and now > self._last:
            self._count *= 0.5 ** ((now - self._last) / policy.decay)
        self._last = now
        self._count += 1.0
        if self._count > policy.threshold:
            draw = self._random() if policy.jitter else 0.0
            self._resume_at = now + policy.backoff * (1.0 + policy.jitter * draw)
        if self._resume_at is not None:
            return Verdict.after(self._resume_at - now)
        return _NOW

    def held(self, now: float) -> float:
        self._resume_if_due(now)
        return 0.0 if self._resume_at is None else self._resume_at - now

    @property
    def count(self) -> float:
        """The failure count as of the last failure (0 once a pause has ended and
        been noticed)."""
        return self._count

    @property
    def paused_until(self) -> float | None:
        """When the current pause ends, or None."""
        return self._resume_at


def _policies(value: Iterable[IntensityPolicy]) -> tuple[IntensityPolicy, ...]:
    return tuple(value)


@attrs.frozen
class Combined(IntensityPolicy):
    """Several policies at once: a restart is allowed only if every policy allows it,
    after the longest of their delays. Built with ``a & b``."""

    policies: tuple[IntensityPolicy, ...] = attrs.field(converter=_policies)

    @policies.validator
    def _check(self, _: Any, value: tuple[Any, ...]) -> None:
        if not value:
            raise SpecError(None, "policies", "Combined needs at least one policy")
        for p in value:
            if not isinstance(p, IntensityPolicy):
                raise SpecTypeError(
                    None, "policies", f"Combined takes IntensityPolicy values; got {p!r}"
                )

    def budget(self, random: RandomSource) -> Budget:
        return _CombinedBudget(tuple(p.budget(random) for p in self.policies))

    def describe(self) -> str:
        return " and ".join(p.describe() for p in self.policies)


class _CombinedBudget(Budget):
    __slots__ = ("_parts",)

    def __init__(self, parts: tuple[Budget, ...]) -> None:
        self._parts = parts

    def on_failure(self, child_id: str, now: float) -> Verdict:
        delay = 0.0
        refusal: Verdict | None = None
        for part in self._parts:  # every part sees every failure, so counts stay true
            verdict = part.on_failure(child_id, now)
            if not verdict.allow and refusal is None:
                refusal = verdict
            delay = max(delay, verdict.delay)
        return refusal if refusal is not None else Verdict.after(delay)

    def on_started(self, child_id: str, now: float) -> None:
        for part in self._parts:
            part.on_started(child_id, now)

    def forget(self, child_id: str) -> None:
        for part in self._parts:
            part.forget(child_id)

    def used_ratio(self, now: float) -> float | None:
        # The part closest to giving up is the one that will.
        ratios = [r for r in (part.used_ratio(now) for part in self._parts) if r is not None]
        return max(ratios) if ratios else None

    def held(self, now: float) -> float:
        return max((part.held(now) for part in self._parts), default=0.0)


@attrs.frozen
class SharedBudget(IntensityPolicy):
    """One restart budget for every supervisor of a tree that names it.

    Give the same ``SharedBudget`` (same ``name``) to the supervisors of a subtree and
    their children's failures all charge one budget, drawing backoff jitter from one
    random source: twenty pools failing on one database outage neither restart in
    lockstep nor each get a private allowance. When the budget gives up, the
    supervisor whose child failed exits; its parent, charging the same budget, gives up
    too, and so on to the top of the scope. The first supervisor started with a
    given name fixes its ``policy``; per-child state (backoff counts) is kept per
    supervisor and child.
    """

    name: str = attrs.field()
    policy: IntensityPolicy = attrs.field(factory=lambda: SlidingWindow(1, 5.0))

    @name.validator
    def _check_name(self, _: Any, value: Any) -> None:
        if not isinstance(value, str) or not value:
            raise SpecTypeError(None, "name", f"SharedBudget.name must be a non-empty string; "
                                f"got {value!r}", value=value)
        problem = name_problem(value)
        if problem is not None:  # it is shown in reports and the tree view, as ids are
            raise SpecError(None, "name", f"SharedBudget.name is printable text of 1 to "
                            f"{MAX_NAME_LENGTH} characters, without '/' or surrounding "
                            f"spaces; {value!r} holds {problem}", value=value)

    @policy.validator
    def _check_policy(self, _: Any, value: Any) -> None:
        if not isinstance(value, IntensityPolicy) or isinstance(value, SharedBudget):
            raise SpecTypeError(None, "policy", f"SharedBudget.policy must be an "
                                f"IntensityPolicy (not another SharedBudget); got {value!r}")

    def budget(self, random: RandomSource) -> Budget:
        """A private budget: used only where no tree shares budgets (a lone core)."""
        return self.policy.budget(random)

    def describe(self) -> str:
        return f"shared budget {self.name!r}: {self.policy.describe()}"


class ScopedBudget(Budget):
    """A supervisor's view of a shared budget: child ids made unique across the
    supervisors sharing it."""

    __slots__ = ("_inner", "_prefix")

    def __init__(self, inner: Budget, prefix: str) -> None:
        self._inner = inner
        self._prefix = prefix

    def on_failure(self, child_id: str, now: float) -> Verdict:
        return self._inner.on_failure(self._prefix + child_id, now)

    def on_started(self, child_id: str, now: float) -> None:
        self._inner.on_started(self._prefix + child_id, now)

    def forget(self, child_id: str) -> None:
        self._inner.forget(self._prefix + child_id)

    def used_ratio(self, now: float) -> float | None:
        return self._inner.used_ratio(now)

    def held(self, now: float) -> float:
        return self._inner.held(now)
