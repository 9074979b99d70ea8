"""Hypothesis strategies and helpers for testing a tree's recovery choices.

:func:`otp_py.simulate` runs a tree's decisions on a fake clock in microseconds; this
module draws the trees and the failure scripts to feed it, so a property test can
check an intensity or backoff choice against thousands of failure sequences::

    from hypothesis import given, strategies as st
    import otp_py as otp
    from otp_py import testing

    POLICY = otp.SlidingWindow(5, 60.0) & otp.ExponentialBackoff(initial=1.0)

    @given(st.data())
    def test_my_policy(data):
        spec = data.draw(testing.flat_specs(intensity=st.just(POLICY)))
        sim = otp.simulate(spec, data.draw(testing.failures(spec)))
        assert testing.max_restarts_within(sim, 60.0) <= 5

It needs Hypothesis, which otp_py does not install by itself: install the
``testing`` extra (``pip install 'otp_py[testing]'``). Importing this module without
Hypothesis raises :class:`ImportError` saying so. It is not imported by ``otp_py``.

Strategies (each call returns a fresh ``SearchStrategy``):

* specs: :func:`restart_types`, :func:`shutdowns`, :func:`supervisor_shutdowns`,
  :func:`sliding_windows`, :func:`exponential_backoffs`, :func:`intensity_policies`,
  :func:`workers`, :func:`flat_specs`, :func:`nested_specs`. Generated workers are
  asyncio children running :func:`idle`; a simulation never runs them.
* scripts: :func:`exit_reasons`, :func:`abnormal_reasons`, :func:`failures` (a
  time-ordered ``[(time, path, reason), ...]`` for a given spec, as
  :func:`otp_py.simulate` takes it), :func:`start_failure_maps` (its
  ``start_failures=``) and :func:`stop_times` (its ``stop_at=``).

Generated times lie on a grid of :data:`GRID` seconds and often step by exactly one
of the :data:`PERIODS`, so failures land on the edge of an intensity window often
enough to test which side of the edge counts.

Helpers: :func:`worker_paths`, :func:`children_by_path` and
:func:`supervisors_by_path` read a tree; :func:`max_restarts_within` reads a
:class:`~otp_py.Simulation` (see also its ``exits``, ``restart_delays``,
``restart_times`` and ``gave_up_at``).
"""

from __future__ import annotations

try:
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "otp_py.testing needs Hypothesis, which otp_py does not install by itself; "
        "install the 'testing' extra: pip install 'otp_py[testing]'"
    ) from None

from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from otp_py import (
    BRUTAL_KILL,
    INFINITY,
    ChildSpec,
    ExponentialBackoff,
    IntensityPolicy,
    Restart,
    Simulation,
    SlidingWindow,
    SupervisorSpec,
)
from otp_py.reasons import (
    Abnormal,
    Crashed,
    Exited,
    ExitReason,
    Hung,
    Normal,
    Shutdown,
    Signaled,
)

__all__ = [
    "GRID",
    "PERIODS",
    "REASONS",
    "STATIC_STRATEGIES",
    "Script",
    "abnormal_reasons",
    "children_by_path",
    "exit_reasons",
    "exponential_backoffs",
    "failures",
    "flat_specs",
    "idle",
    "intensity_policies",
    "max_restarts_within",
    "nested_specs",
    "restart_types",
    "shutdowns",
    "sliding_windows",
    "start_failure_maps",
    "stop_times",
    "supervisor_shutdowns",
    "supervisors_by_path",
    "worker_paths",
    "workers",
]

GRID = 0.25
"""Generated times are multiples of this, so ``t == now - period`` happens exactly."""

PERIODS: tuple[float, ...] = (0.5, 1.0, 2.0, 3.5, 5.0)
"""Intensity periods drawn by :func:`sliding_windows`; failure scripts often step by
exactly one of them."""

STATIC_STRATEGIES: tuple[str, ...] = ("one_for_one", "one_for_all", "rest_for_one")
"""The strategies of supervisors with static children (simple_one_for_one's dynamic
children cannot be scripted: :func:`otp_py.simulate` makes no ``start_child`` call)."""

REASONS: tuple[ExitReason, ...] = (
    Normal(),
    Shutdown(),
    Shutdown("term"),
    Abnormal("boom"),
)
"""One reason from each column of the restart table: ``normal``, ``shutdown``,
``{shutdown, term}`` and abnormal."""

Script = list[tuple[float, str, Any]]
"""A failure script: ``[(time, path, reason), ...]``, as :func:`otp_py.simulate` takes."""

_CHILD_IDS = ("a", "b", "c", "d", "e", "f", "g", "h")
_SUPERVISOR_IDS = ("s1", "s2", "s3", "s4")


async def idle() -> None:
    """The start function of generated workers; a simulation never calls it."""


# ------------------------------------------------------------------------ specs


def restart_types() -> st.SearchStrategy[Restart]:
    """Permanent, transient or temporary."""
    return st.sampled_from(list(Restart))


def shutdowns() -> st.SearchStrategy[Any]:
    """A worker's ``shutdown``: ``BRUTAL_KILL``, ``INFINITY``, or 0, 0.5 or 5 seconds."""
    return st.sampled_from([BRUTAL_KILL, INFINITY, 0.0, 0.5, 5.0])


def supervisor_shutdowns() -> st.SearchStrategy[Any]:
    """A nested supervisor's ``shutdown``: ``INFINITY`` (OTP's default for
    supervisors), ``BRUTAL_KILL`` or 5 seconds."""
    return st.sampled_from([INFINITY, BRUTAL_KILL, 5.0])


def sliding_windows(
    max_restarts: int = 4, periods: Sequence[float] = PERIODS
) -> st.SearchStrategy[SlidingWindow]:
    """OTP restart intensities: 0 to ``max_restarts`` restarts in one of ``periods``.

    Raises :class:`ValueError` for a negative ``max_restarts`` or no periods."""
    if max_restarts < 0 or not periods:
        raise ValueError("sliding_windows() needs max_restarts >= 0 and at least one period")
    return st.builds(
        SlidingWindow,
        max_restarts=st.integers(0, max_restarts),
        period=st.sampled_from(list(periods)),
    )


def exponential_backoffs(
    initials: Sequence[float] = (0.0, 0.5, 1.0),
    maximum: float = 4.0,
    jitters: Sequence[float] = (0.0,),
) -> st.SearchStrategy[ExponentialBackoff]:
    """Backoffs starting at one of ``initials`` (each at most ``maximum``), doubling up
    to ``maximum``, with one of ``jitters``. Jitter only shows when the simulation is
    given a ``random`` source; by default it draws none."""
    if not initials or not jitters or any(i > maximum for i in initials):
        raise ValueError("exponential_backoffs() needs initials <= maximum, and jitters")
    return st.builds(
        ExponentialBackoff,
        initial=st.sampled_from(list(initials)),
        maximum=st.just(maximum),
        jitter=st.sampled_from(list(jitters)),
    )


def intensity_policies(max_restarts: int = 4) -> st.SearchStrategy[IntensityPolicy]:
    """Sliding windows (:func:`sliding_windows`), and sliding windows combined with a
    backoff (``window & backoff``, which delays restarts with timers)."""
    combined = st.tuples(sliding_windows(max_restarts), exponential_backoffs()).map(
        lambda pair: pair[0] & pair[1]
    )
    return st.one_of(sliding_windows(max_restarts), combined)


def workers(
    child_id: str,
    ready: st.SearchStrategy[bool] | None = None,
    restart: st.SearchStrategy[Restart] | None = None,
) -> st.SearchStrategy[ChildSpec]:
    """An asyncio worker ``child_id`` running :func:`idle`, with a random restart type
    (or one drawn from ``restart``) and shutdown. With ``ready=st.booleans()`` some
    workers signal readiness, so their starts run under a start timeout of 0.5 or 30 s
    (by default none does)."""
    return st.builds(
        ChildSpec,
        id=st.just(child_id),
        start=st.just(idle),
        backend=st.just("asyncio"),
        restart=restart if restart is not None else restart_types(),
        shutdown=shutdowns(),
        ready=ready if ready is not None else st.just(False),
        start_timeout=st.sampled_from([0.5, 30.0]),
    )


def flat_specs(
    strategies: Sequence[str] = STATIC_STRATEGIES,
    min_children: int = 1,
    max_children: int = 5,
    intensity: st.SearchStrategy[IntensityPolicy] | None = None,
    ready: st.SearchStrategy[bool] | None = None,
    restart: st.SearchStrategy[Restart] | None = None,
) -> st.SearchStrategy[SupervisorSpec]:
    """One supervisor ``root`` over workers ``a``, ``b``, ... (at most 8), in spec
    order, with a strategy from ``strategies`` and an intensity from ``intensity``
    (default: :func:`sliding_windows`). A ``simple_one_for_one`` draw gets exactly one
    worker, its template. ``ready`` and ``restart`` are passed to :func:`workers`.

    Raises :class:`ValueError` unless ``0 <= min_children <= max_children <= 8`` and
    ``strategies`` is not empty."""
    if not 0 <= min_children <= max_children <= len(_CHILD_IDS) or not strategies:
        raise ValueError(f"flat_specs() needs strategies and 0 <= min_children <= "
                         f"max_children <= {len(_CHILD_IDS)}")
    return _flat_specs(tuple(strategies), min_children, max_children,
                       intensity if intensity is not None else sliding_windows(), ready, restart)


@st.composite
def _flat_specs(
    draw: st.DrawFn,
    strategies: tuple[str, ...],
    min_children: int,
    max_children: int,
    intensity: st.SearchStrategy[IntensityPolicy],
    ready: st.SearchStrategy[bool] | None,
    restart: st.SearchStrategy[Restart] | None,
) -> SupervisorSpec:
    strategy = draw(st.sampled_from(strategies))
    if strategy == "simple_one_for_one":
        min_children = max_children = 1
    count = draw(st.integers(min_children, max_children))
    children = [draw(workers(cid, ready, restart)) for cid in _CHILD_IDS[:count]]
    return SupervisorSpec(id="root", strategy=strategy, intensity=draw(intensity),
                          children=children)


def nested_specs(
    max_depth: int = 3,
    max_children: int = 4,
    strategies: Sequence[str] = STATIC_STRATEGIES,
    intensity: st.SearchStrategy[IntensityPolicy] | None = None,
) -> st.SearchStrategy[SupervisorSpec]:
    """A tree of supervisors ``s1``, ``s2``... over workers ``a``, ``b``...: ``root``
    has at least one nested supervisor when ``max_depth`` (supervisor levels) is 2 or
    more. Every supervisor draws its strategy from ``strategies`` and its intensity
    from ``intensity`` (default: :func:`sliding_windows` of at most 3 restarts);
    nested ones also a restart type and a shutdown.

    Raises :class:`ValueError` unless ``max_depth >= 1``, ``1 <= max_children <= 4``
    and ``strategies`` is not empty."""
    if max_depth < 1 or not 1 <= max_children <= len(_SUPERVISOR_IDS) or not strategies:
        raise ValueError(f"nested_specs() needs strategies, max_depth >= 1 and "
                         f"1 <= max_children <= {len(_SUPERVISOR_IDS)}")
    policies = intensity if intensity is not None else sliding_windows(max_restarts=3)
    return _nested_specs(max_depth, max_children, tuple(strategies), policies)


@st.composite
def _nested_specs(
    draw: st.DrawFn,
    max_depth: int,
    max_children: int,
    strategies: tuple[str, ...],
    policies: st.SearchStrategy[IntensityPolicy],
) -> SupervisorSpec:
    def level(sup_id: str, depth: int, *, is_root: bool) -> SupervisorSpec:
        count = draw(st.integers(1 if is_root else 0, max_children))
        nested = [depth > 1 and draw(st.booleans()) for _ in range(count)]
        if is_root and depth > 1 and not any(nested):
            nested[-1] = True
        children: list[ChildSpec | SupervisorSpec] = [
            level(_SUPERVISOR_IDS[index], depth - 1, is_root=False)
            if is_sup
            else draw(workers(_CHILD_IDS[index]))
            for index, is_sup in enumerate(nested)
        ]
        as_child: dict[str, Any] = {}
        if not is_root:
            as_child = {"restart": draw(restart_types()), "shutdown": draw(supervisor_shutdowns())}
        return SupervisorSpec(
            id=sup_id,
            strategy=draw(st.sampled_from(strategies)),
            intensity=draw(policies),
            children=children,
            **as_child,
        )

    return level("root", max_depth, is_root=True)


# ---------------------------------------------------------------------- scripts


def exit_reasons() -> st.SearchStrategy[ExitReason]:
    """One of :data:`REASONS`: a reason from each column of the restart table."""
    return st.sampled_from(REASONS)


def abnormal_reasons() -> st.SearchStrategy[ExitReason]:
    """Abnormal reasons of every shape a running tree reports: a crash, an exit status
    (1, or 78: ``EX_CONFIG``), a signal (SIGKILL, SIGSEGV), a hang, an abnormal term.
    For scripts that exercise a :class:`~otp_py.Decider`'s rules."""
    return st.sampled_from([
        Abnormal("boom"),
        Crashed("ValueError", "boom"),
        Exited(1),
        Exited(78),
        Signaled(9, "SIGKILL"),
        Signaled(11, "SIGSEGV"),
        Hung("no heartbeat"),
    ])


def failures(
    spec: SupervisorSpec,
    max_events: int = 12,
    reasons: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[Script]:
    """A script of worker exits for ``spec``, sorted by time: ``(time, path, reason)``
    with ``path`` as :func:`worker_paths` gives it and ``reason`` drawn from
    ``reasons`` (default: :func:`exit_reasons`).

    Steps between events are 0 to 6 s on the :data:`GRID`, often 0 (several exits at
    the same instant) or exactly one of the :data:`PERIODS`. A path may name a worker
    that is not running at that time; :func:`otp_py.simulate` ignores such events."""
    paths = sorted(worker_paths(spec))
    if not paths:
        return st.just([])
    gaps = st.one_of(
        st.sampled_from([0.0, *PERIODS]),  # exits a whole period apart: the window's edge
        st.integers(1, 24).map(lambda k: k * GRID),
    )
    event = st.tuples(gaps, st.sampled_from(paths),
                      reasons if reasons is not None else exit_reasons())

    def accumulate(steps: list[tuple[float, str, Any]]) -> Script:
        now = 0.0
        script = []
        for gap, path, reason in steps:
            now += gap
            script.append((now, path, reason))
        return script

    return st.lists(event, max_size=max_events).map(accumulate)


def stop_times(script: Sequence[tuple[float, str, Any]]) -> st.SearchStrategy[float | None]:
    """No stop (None), or a stop of the root at or up to 2 s after the script's last
    event (``simulate(..., stop_at=...)``)."""
    last = max((t for t, _, _ in script), default=0.0)
    return st.one_of(st.none(), st.integers(0, 8).map(lambda k: last + k * GRID))


def start_failure_maps(spec: SupervisorSpec) -> st.SearchStrategy[dict[str, set[int]]]:
    """Which start attempts (1-based, counted per worker path) fail, as
    ``simulate(..., start_failures=...)`` takes it. Mostly none."""
    paths = sorted(worker_paths(spec))
    if not paths:
        return st.just({})
    attempts = st.sets(st.integers(1, 6), min_size=1, max_size=3)
    return st.one_of(
        st.just({}),
        st.dictionaries(st.sampled_from(paths), attempts, max_size=2),
    )


# ---------------------------------------------------------------- reading trees


def worker_paths(spec: SupervisorSpec, prefix: str = "") -> Iterator[str]:
    """Paths of every worker below ``spec``, relative to it (``"a"``, ``"s1/b"``), in
    start order, as :func:`otp_py.simulate`'s events name them."""
    for child in spec.children:
        path = f"{prefix}{child.id}"
        if isinstance(child, SupervisorSpec):
            yield from worker_paths(child, path + "/")
        else:
            yield path


def children_by_path(spec: SupervisorSpec) -> dict[tuple[str, ...], dict[str, Any]]:
    """For every supervisor in the tree, by path (``("root", "s1")``, as reports name
    supervisors), its child specs by id, in start order."""
    return {path: {child.id: child for child in sup.children}
            for path, sup in supervisors_by_path(spec).items()}


def supervisors_by_path(spec: SupervisorSpec) -> dict[tuple[str, ...], SupervisorSpec]:
    """Every supervisor spec in the tree, by path (the root is ``(spec.id,)``)."""
    found: dict[tuple[str, ...], SupervisorSpec] = {}

    def walk(sup: SupervisorSpec, path: tuple[str, ...]) -> None:
        found[path] = sup
        for child in sup.children:
            if isinstance(child, SupervisorSpec):
                walk(child, (*path, child.id))

    walk(spec, (spec.id,))
    return found


# ----------------------------------------------------------- reading simulations


def max_restarts_within(sim: Simulation, period: float, supervisor: str | None = None) -> int:
    """The most restarts any window of ``period`` seconds holds: the exits a
    supervisor restarted a child for, charging its budget (``outcome == "restart"``
    in :meth:`~otp_py.Simulation.exits`; ``ignore`` decisions and refused restarts do
    not count). Windows are OTP's: a restart at ``t`` is in the window ending at
    ``now`` when ``now - period <= t <= now``.

    ``supervisor`` (``""`` or the root's id for the root, ``"pool"`` for a nested
    one) counts that supervisor's children only (over all its incarnations); by
    default, every supervisor's separately, and the largest count is returned.
    Retries of failed restarts also charge a budget but are not exits, so they are
    not counted here.
    Raises :class:`ValueError` for a negative ``period``."""
    if not period >= 0:
        raise ValueError(f"period must be a non-negative number of seconds; got {period!r}")
    times: dict[str, list[float]] = {}
    for exit_ in sim.exits():
        if exit_.outcome == "restart":
            times.setdefault(exit_.supervisor, []).append(exit_.time)
    if supervisor is not None:
        parts = [p for p in supervisor.split("/") if p]
        wanted = "/".join(parts[1:] if parts[:1] == [sim.root_id] else parts)
        times = {wanted: times.get(wanted, [])}
    most = 0
    for stamps in times.values():
        window: deque[float] = deque()
        for t in stamps:  # reports, and so exits, come in time order
            window.append(t)
            while window[0] < t - period:
                window.popleft()
            most = max(most, len(window))
    return most
