"""Shared Hypothesis strategies: supervision trees and what goes wrong in them.

Every test module that needs a random tree or a random failure script draws it from
here, so the shapes stay consistent across the suite and a new spec field is added
in one place.

* :func:`flat_specs`, :func:`nested_specs`: :class:`~otp_py.SupervisorSpec` values
  whose workers never run (the decision core only reads their restart type and
  shutdown); ids are short and unique among siblings.
* :func:`failures`: a time-ordered script ``[(time, path, reason), ...]`` for a spec,
  as :func:`otp_py.simulate` takes it. Times lie on a grid of quarter seconds and
  often step by exactly one of the :data:`PERIODS`, so failures land on the edge of
  an intensity window often enough to test which side the edge belongs to.
* :func:`start_failure_maps`: which start attempts of which workers fail
  (``simulate(..., start_failures=...)``); :func:`stop_times`: when the root is
  asked to stop.
* :func:`timer_policies` and ``ready`` workers: for driving a core directly, where
  backoff and start-timeout timers matter.
* :func:`worker_paths`, :func:`children_by_path`, :func:`supervisors_by_path`:
  helpers to read a generated tree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from hypothesis import strategies as st

from otp_py import (
    BRUTAL_KILL,
    INFINITY,
    ChildSpec,
    ExponentialBackoff,
    IntensityPolicy,
    Restart,
    SlidingWindow,
    SupervisorSpec,
)
from otp_py.reasons import Abnormal, ExitReason, Normal, Shutdown

__all__ = [
    "GRID",
    "PERIODS",
    "REASONS",
    "STATIC_STRATEGIES",
    "children_by_path",
    "exit_reasons",
    "failures",
    "flat_specs",
    "idle",
    "intensities",
    "nested_specs",
    "restart_types",
    "shutdowns",
    "start_failure_maps",
    "stop_times",
    "supervisor_shutdowns",
    "supervisors_by_path",
    "timer_policies",
    "worker_paths",
    "workers",
]

GRID = 0.25
"""Failure times are multiples of this, so ``t == now - period`` happens exactly."""

STATIC_STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")

PERIODS = (0.5, 1.0, 2.0, 3.5, 5.0)
"""Intensity periods; failure scripts often step by exactly one of them."""

REASONS: tuple[ExitReason, ...] = (
    Normal(),
    Shutdown(),
    Shutdown("term"),
    Abnormal("boom"),
)
"""One reason of each column of the restart table: normal, shutdown,
{shutdown, term} and abnormal."""

_CHILD_IDS = ("a", "b", "c", "d", "e", "f", "g", "h")
_SUPERVISOR_IDS = ("s1", "s2", "s3", "s4")


async def idle() -> None:
    """The start function of generated workers; the decision core never calls it."""


NEVER_READY = st.just(False)

restart_types = st.sampled_from(list(Restart))
exit_reasons = st.sampled_from(REASONS)

shutdowns = st.sampled_from([BRUTAL_KILL, INFINITY, 0.0, 0.5, 5.0])
"""A worker's ``shutdown``: brutal kill, infinity, or a number of seconds."""

supervisor_shutdowns = st.sampled_from([INFINITY, BRUTAL_KILL, 5.0])
"""A nested supervisor's ``shutdown`` (OTP's default for supervisors is infinity)."""


def intensities(max_restarts: int = 4) -> st.SearchStrategy[SlidingWindow]:
    """OTP sliding windows: 0 to ``max_restarts`` restarts in half-second periods."""
    return st.builds(
        SlidingWindow,
        max_restarts=st.integers(0, max_restarts),
        period=st.sampled_from(PERIODS),
    )


def timer_policies() -> st.SearchStrategy[IntensityPolicy]:
    """Sliding windows, and windows combined with a backoff (which sets timers)."""
    backoffs = st.builds(
        ExponentialBackoff,
        initial=st.sampled_from([0.0, 0.5, 1.0]),
        maximum=st.just(4.0),
        jitter=st.just(0.0),
    )
    combined = st.tuples(intensities(), backoffs).map(lambda pair: pair[0] & pair[1])
    return st.one_of(intensities(), combined)


def workers(
    child_id: str, ready: st.SearchStrategy[bool] = NEVER_READY
) -> st.SearchStrategy[ChildSpec]:
    """A worker with a random restart type and shutdown. With ``ready=st.booleans()``
    some workers signal readiness, so their starts run under a start timeout."""
    return st.builds(
        ChildSpec,
        id=st.just(child_id),
        start=st.just(idle),
        backend=st.just("asyncio"),
        restart=restart_types,
        shutdown=shutdowns,
        ready=ready,
        start_timeout=st.sampled_from([0.5, 30.0]),
    )


@st.composite
def flat_specs(
    draw: st.DrawFn,
    strategies: Sequence[str] = STATIC_STRATEGIES,
    min_children: int = 1,
    max_children: int = 5,
    intensity: st.SearchStrategy[IntensityPolicy] | None = None,
    ready: st.SearchStrategy[bool] = NEVER_READY,
) -> SupervisorSpec:
    """One supervisor ``root`` over workers ``a``, ``b``, ... (spec order).
    ``simple_one_for_one`` among ``strategies`` gets exactly one worker (its template)."""
    strategy = draw(st.sampled_from(list(strategies)))
    if strategy == "simple_one_for_one":
        min_children = max_children = 1
    count = draw(st.integers(min_children, max_children))
    children = [draw(workers(cid, ready)) for cid in _CHILD_IDS[:count]]
    return SupervisorSpec(
        id="root",
        strategy=strategy,
        intensity=draw(intensity if intensity is not None else intensities()),
        children=children,
    )


@st.composite
def nested_specs(
    draw: st.DrawFn,
    max_depth: int = 3,
    max_children: int = 4,
    strategies: Sequence[str] = STATIC_STRATEGIES,
) -> SupervisorSpec:
    """A tree of supervisors ``s1``, ``s2``... over workers ``a``, ``b``...; the root
    has at least one nested supervisor. ``max_depth`` counts supervisor levels."""

    def level(sup_id: str, depth: int, *, is_root: bool) -> SupervisorSpec:
        count = draw(st.integers(1 if is_root else 0, max_children))
        nested = [depth > 1 and draw(st.booleans()) for _ in range(count)]
        if is_root and depth > 1 and not any(nested):
            nested[-1] = True
        children = [
            level(_SUPERVISOR_IDS[index], depth - 1, is_root=False)
            if is_sup
            else draw(workers(_CHILD_IDS[index]))
            for index, is_sup in enumerate(nested)
        ]
        as_child: dict[str, Any] = {}
        if not is_root:
            as_child = {"restart": draw(restart_types), "shutdown": draw(supervisor_shutdowns)}
        return SupervisorSpec(
            id=sup_id,
            strategy=draw(st.sampled_from(list(strategies))),
            intensity=draw(intensities(max_restarts=3)),
            children=children,
            **as_child,
        )

    return level("root", max_depth, is_root=True)


def worker_paths(spec: SupervisorSpec, prefix: str = "") -> Iterator[str]:
    """Paths of every worker below ``spec``, relative to it (``"a"``, ``"s1/b"``)."""
    for child in spec.children:
        path = f"{prefix}{child.id}"
        if child.is_supervisor:
            yield from worker_paths(child, path + "/")
        else:
            yield path


def children_by_path(spec: SupervisorSpec) -> dict[tuple[str, ...], dict[str, Any]]:
    """For every supervisor in the tree (by path, ``("root", "s1")``), its child specs
    by id, in start order."""
    found: dict[tuple[str, ...], dict[str, Any]] = {}

    def walk(sup: SupervisorSpec, path: tuple[str, ...]) -> None:
        found[path] = {child.id: child for child in sup.children}
        for child in sup.children:
            if child.is_supervisor:
                walk(child, (*path, child.id))

    walk(spec, (spec.id,))
    return found


def supervisors_by_path(spec: SupervisorSpec) -> dict[tuple[str, ...], SupervisorSpec]:
    """Every supervisor spec in the tree, by path (the root is ``("root",)``)."""
    found: dict[tuple[str, ...], SupervisorSpec] = {}

    def walk(sup: SupervisorSpec, path: tuple[str, ...]) -> None:
        found[path] = sup
        for child in sup.children:
            if child.is_supervisor:
                walk(child, (*path, child.id))

    walk(spec, (spec.id,))
    return found


def failures(
    spec: SupervisorSpec, max_events: int = 12
) -> st.SearchStrategy[list[tuple[float, str, ExitReason]]]:
    """A script of worker exits for ``spec``, sorted by time: ``(time, path, reason)``.

    Steps between events are 0 to 6 s on the :data:`GRID`, often 0 (several exits at
    the same instant) or exactly one of the :data:`PERIODS`. Paths may name a worker
    that is not running at that time; the simulation ignores such events, as the
    reference model must.
    """
    paths = sorted(worker_paths(spec))
    if not paths:
        return st.just([])
    gaps = st.one_of(
        st.sampled_from([0.0, *PERIODS]),  # exits a whole period apart: the window's edge
        st.integers(1, 24).map(lambda k: k * GRID),
    )
    event = st.tuples(gaps, st.sampled_from(paths), exit_reasons)

    def accumulate(steps: list[tuple[float, str, ExitReason]]) -> list[Any]:
        now = 0.0
        script = []
        for gap, path, reason in steps:
            now += gap
            script.append((now, path, reason))
        return script

    return st.lists(event, max_size=max_events).map(accumulate)


def stop_times(script: Sequence[tuple[float, str, Any]]) -> st.SearchStrategy[float | None]:
    """No stop, or a stop of the root at or after the script's last event."""
    last = max((t for t, _, _ in script), default=0.0)
    return st.one_of(st.none(), st.integers(0, 8).map(lambda k: last + k * GRID))


def start_failure_maps(spec: SupervisorSpec) -> st.SearchStrategy[dict[str, set[int]]]:
    """Which start attempts (1-based, counted per worker path) fail. Mostly none."""
    paths = sorted(worker_paths(spec))
    if not paths:
        return st.just({})
    attempts = st.sets(st.integers(1, 6), min_size=1, max_size=3)
    return st.one_of(
        st.just({}),
        st.dictionaries(st.sampled_from(paths), attempts, max_size=2),
    )
