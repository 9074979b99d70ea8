"""Shared Hypothesis strategies: supervision trees and what goes wrong in them.

Every test module that needs a random tree or a random failure script draws it from
here, so the shapes stay consistent across the suite and a new spec field is added
in one place. The generic strategies are the public ones of :mod:`otp_py.testing`
(users test their own trees with them); this module re-exports them under the
suite's names and adds what only the suite needs.

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

from hypothesis import strategies as st

from otp_py import IntensityPolicy, SlidingWindow, testing
from otp_py.testing import (
    GRID,
    PERIODS,
    REASONS,
    STATIC_STRATEGIES,
    children_by_path,
    failures,
    flat_specs,
    idle,
    nested_specs,
    start_failure_maps,
    stop_times,
    supervisors_by_path,
    worker_paths,
    workers,
)

__all__ = [
    "GRID",
    "NEVER_READY",
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

NEVER_READY = st.just(False)

# The suite uses these as strategy values (``st.builds(..., restart=ts.restart_types)``).
restart_types = testing.restart_types()
exit_reasons = testing.exit_reasons()
shutdowns = testing.shutdowns()
"""A worker's ``shutdown``: brutal kill, infinity, or a number of seconds."""
supervisor_shutdowns = testing.supervisor_shutdowns()
"""A nested supervisor's ``shutdown`` (OTP's default for supervisors is infinity)."""


def intensities(max_restarts: int = 4) -> st.SearchStrategy[SlidingWindow]:
    """OTP sliding windows: 0 to ``max_restarts`` restarts in one of the PERIODS."""
    return testing.sliding_windows(max_restarts)


def timer_policies() -> st.SearchStrategy[IntensityPolicy]:
    """Sliding windows, and windows combined with a backoff (which sets timers)."""
    return testing.intensity_policies()
