"""OTP's restart table, and restart type x exit reason x strategy end to end.

The expected values are written here from OTP's documented rules (the supervisor
manual, ``supervisor.erl``'s ``do_restart/3``), never read from the library's table,
so these tests can disagree with it:

* permanent: always restarted;
* transient: restarted only for an abnormal reason (not ``normal``, ``shutdown`` or
  ``{shutdown, Term}``), else it stays stopped and its spec is kept;
* temporary: never restarted; its spec is forgotten.

A restart runs the strategy: one_for_one restarts the child alone; one_for_all stops
every other child in reverse start order, then starts all in start order;
rest_for_one does the same for the failed child and the children started after it.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import otp_py as otp
from otp_py import reports as rp
from otp_py._core import events as ev
from otp_py._core.simulate import _Sim
from otp_py.reasons import (
    Abnormal,
    Crashed,
    Exited,
    Hung,
    Killed,
    Normal,
    ReasonKind,
    Shutdown,
    Signaled,
    StartTimeout,
    Unstoppable,
)

CHILDREN = ("a", "b", "c")
CRASH_AT = 1.0


def otp_restarts(restart: str, kind: ReasonKind) -> bool:
    """OTP's rule: does a child of this restart type restart after this reason?"""
    if restart == "permanent":
        return True
    if restart == "transient":
        return kind is ReasonKind.ABNORMAL
    return False


def otp_outcome(restart: str, kind: ReasonKind) -> str:
    if otp_restarts(restart, kind):
        return "restart"
    return "remove" if restart == "temporary" else "keep"


# ----------------------------------------------------------------- the table as data


def test_table_has_every_restart_type_and_reason_kind() -> None:
    assert set(otp.RESTART_TABLE) == set(itertools.product(otp.Restart, ReasonKind))


@pytest.mark.parametrize("kind", list(ReasonKind))
@pytest.mark.parametrize("restart", list(otp.Restart))
def test_table_entry_follows_otp(restart: otp.Restart, kind: ReasonKind) -> None:
    assert otp.RESTART_TABLE[restart, kind] is otp.Outcome(otp_outcome(restart.value, kind))


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        otp.RESTART_TABLE[otp.Restart.TEMPORARY, ReasonKind.ABNORMAL] = (  # type: ignore[index]
            otp.Outcome.RESTART
        )


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (Normal(), ReasonKind.NORMAL),
        (Shutdown(), ReasonKind.SHUTDOWN),
        (Shutdown("x"), ReasonKind.SHUTDOWN_TERM),
        (Shutdown(None), ReasonKind.SHUTDOWN_TERM),
        (Abnormal("boom"), ReasonKind.ABNORMAL),
        (Crashed("ValueError", "bad"), ReasonKind.ABNORMAL),
        (Killed(), ReasonKind.ABNORMAL),
        (Exited(1), ReasonKind.ABNORMAL),
        (Signaled(9), ReasonKind.ABNORMAL),
        (Hung("no answer"), ReasonKind.ABNORMAL),
        (StartTimeout(30.0), ReasonKind.ABNORMAL),
        (Unstoppable(5.0), ReasonKind.ABNORMAL),
    ],
    ids=repr,
)
def test_reason_falls_in_its_otp_column(reason: Any, kind: ReasonKind) -> None:
    assert reason.kind is kind
    assert reason.is_abnormal == (kind is ReasonKind.ABNORMAL)


# ------------------------------------------------- restart type x reason x strategy


def otp_plan(strategy: str, failed: str) -> tuple[list[str], list[str]]:
    """(terminated, restarted) for ``failed`` restarting under ``strategy``."""
    index = CHILDREN.index(failed)
    if strategy == "one_for_one":
        group = [failed]
    elif strategy == "one_for_all":
        group = list(CHILDREN)
    else:  # rest_for_one
        group = list(CHILDREN[index:])
    return [c for c in reversed(group) if c != failed], group


def tree(strategy: str, middle_restart: str) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(
        id="root",
        strategy=strategy,
        children=[
            otp.ChildSpec(id=cid, start=_idle, restart=restart)
            for cid, restart in zip(
                CHILDREN, ("permanent", middle_restart, "permanent"), strict=True
            )
        ],
    )


async def _idle() -> None:  # never run: the simulation starts nothing
    pass


def which_states(spec: otp.SupervisorSpec, events: list[tuple[float, str, Any]]) -> dict[str, str]:
    """which_children of the root after the events, as {id: state}.

    ``simulate`` returns only reports, so this drives the same simulator and asks
    the root supervisor's ``which_children``.
    """
    sim = _Sim(spec, None, {})
    sim.post(sim.root, ev.Init())
    sim.run_mailbox()
    for at, path, reason in events:
        sim.advance_to(at)
        sim.fail(path, reason)
        sim.run_mailbox()
    reply = sim.call("", ev.WhichChildren())
    assert reply is not None and reply.error is None
    return {info.id: info.state for info in reply.value}


def after_crash(sim: otp.Simulation) -> list[rp.Report]:
    exits = [i for i, r in enumerate(sim.reports) if isinstance(r, rp.ChildExited)]
    assert len(exits) == 1, sim.timeline()
    return list(sim.reports[exits[0]:])


REASONS = [
    pytest.param(Normal(), id="normal"),
    pytest.param(Shutdown(), id="shutdown"),
    pytest.param(Shutdown("x"), id="shutdown-term"),
    pytest.param(Abnormal("boom"), id="abnormal"),
]
RESTARTS = ["permanent", "transient", "temporary"]
STRATEGIES = ["one_for_one", "one_for_all", "rest_for_one"]


@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize("restart", RESTARTS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_middle_child_exit_outcome(strategy: str, restart: str, reason: Any) -> None:
    sim = otp.simulate(tree(strategy, restart), [(CRASH_AT, "b", reason)])
    exited = after_crash(sim)[0]
    assert (exited.child_id, exited.reason) == ("b", reason)
    assert exited.outcome == otp_outcome(restart, reason.kind)


@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize("restart", RESTARTS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_middle_child_exit_terminates_siblings_per_strategy(
    strategy: str, restart: str, reason: Any
) -> None:
    sim = otp.simulate(tree(strategy, restart), [(CRASH_AT, "b", reason)])
    terminated = [r.child_id for r in after_crash(sim) if isinstance(r, rp.ChildTerminated)]
    expected = otp_plan(strategy, "b")[0] if otp_restarts(restart, reason.kind) else []
    assert terminated == expected


@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize("restart", RESTARTS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_middle_child_exit_restarts_per_strategy(
    strategy: str, restart: str, reason: Any
) -> None:
    sim = otp.simulate(tree(strategy, restart), [(CRASH_AT, "b", reason)])
    started = [r for r in after_crash(sim) if isinstance(r, rp.ChildStarted)]
    expected = otp_plan(strategy, "b")[1] if otp_restarts(restart, reason.kind) else []
    assert [r.child_id for r in started] == expected
    assert all(r.time == CRASH_AT and r.restarts == 1 for r in started)


@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize("restart", RESTARTS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_middle_child_exit_leaves_which_children_states(
    strategy: str, restart: str, reason: Any
) -> None:
    states = which_states(tree(strategy, restart), [(CRASH_AT, "b", reason)])
    if otp_restarts(restart, reason.kind):
        expected = {"a": "running", "b": "running", "c": "running"}
    elif restart == "transient":
        expected = {"a": "running", "b": "stopped", "c": "running"}
    else:  # temporary: forgotten
        expected = {"a": "running", "c": "running"}
    assert states == expected


@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize("restart", RESTARTS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_middle_child_exit_never_stops_the_supervisor(
    strategy: str, restart: str, reason: Any
) -> None:
    sim = otp.simulate(tree(strategy, restart), [(CRASH_AT, "b", reason)])
    assert sim.exit_reason is None
    assert sim.of_type(rp.SupervisorExited) == []


# ------------------------------------------ temporary siblings stopped by a strategy


@pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])
def test_temporary_sibling_stopped_by_the_plan_is_not_restarted(strategy: str) -> None:
    spec = otp.SupervisorSpec(
        id="root",
        strategy=strategy,
        children=[
            otp.ChildSpec(id="a", start=_idle),
            otp.ChildSpec(id="b", start=_idle),
            otp.ChildSpec(id="c", start=_idle, restart="temporary"),
        ],
    )
    sim = otp.simulate(spec, [(CRASH_AT, "b", Abnormal("boom"))])
    started = [r.child_id for r in after_crash(sim) if isinstance(r, rp.ChildStarted)]
    assert "c" not in started
    assert "c" not in which_states(spec, [(CRASH_AT, "b", Abnormal("boom"))])
