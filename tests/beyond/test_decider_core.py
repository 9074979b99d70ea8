"""The failure decider in the decision core: the default decider is OTP's table, rules
match what they say, and every decision does what it says, on the simulator's fake
clock (the very cores a running tree drives; see test_decider_runtime.py for real
children)."""

from __future__ import annotations

import signal

import pytest

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from otp_py.backends.reasons import from_exception
from otp_py.reasons import ReasonKind
from tests.beyond.targets import ConfigError, MissingSetting

Restart = otp.Restart


async def idle() -> None:
    """Workers never run in a simulation."""


def worker(child_id: str, **fields: object) -> otp.ChildSpec:
    return otp.ChildSpec.task(child_id, idle, **fields)


# ------------------------------------------- the default decider is OTP's table

def otp_do_restart(restart: Restart, kind: ReasonKind) -> str:
    """OTP 25's ``supervisor:do_restart/3``, written out independently of
    ``RESTART_TABLE``::

        do_restart(permanent, Reason, Child, State) -> restart(Child, State);
        do_restart(_, normal, Child, State) -> {ok, state_del_child(Child, State)};
        do_restart(_, shutdown, Child, State) -> {ok, state_del_child(Child, State)};
        do_restart(_, {shutdown, _Term}, Child, State) -> {ok, state_del_child(...)};
        do_restart(transient, Reason, Child, State) -> restart(Child, State);
        do_restart(temporary, Reason, Child, State) -> {ok, state_del_child(...)}.

    ``state_del_child`` keeps a static child's spec unless it is temporary (OTP
    forgets temporary children); "keep" and "remove" name those two cases.
    """
    if restart is Restart.PERMANENT:
        return "restart"
    if restart is Restart.TEMPORARY:
        return "remove"
    if kind in (ReasonKind.NORMAL, ReasonKind.SHUTDOWN, ReasonKind.SHUTDOWN_TERM):
        return "keep"
    return "restart"  # transient, abnormal


EXAMPLES: dict[ReasonKind, list[reasons.ExitReason]] = {
    ReasonKind.NORMAL: [reasons.Normal()],
    ReasonKind.SHUTDOWN: [reasons.Shutdown()],
    ReasonKind.SHUTDOWN_TERM: [reasons.Shutdown("term"), reasons.Shutdown(None),
                               reasons.Shutdown(("a", 1))],
    ReasonKind.ABNORMAL: [
        reasons.Abnormal("boom"),
        reasons.Crashed("ValueError", "boom"),
        reasons.Exited(1),
        reasons.Exited(78),
        reasons.Signaled(9, "SIGKILL"),
        reasons.Killed(),
        reasons.Hung("no heartbeat"),
        reasons.StartTimeout(1.0),
        reasons.Unstoppable(5.0),
    ],
}
"""Concrete reasons of each column of the table (the sentinels' reasons are tested
on their own below: they are the one deliberate departure)."""

DECISION_OF = {"restart": otp.Decision.RESTART, "keep": otp.Decision.STOP,
               "remove": otp.Decision.STOP}

PAIRS = [(r, k) for r in Restart for k in ReasonKind]


def test_the_table_and_the_rules_cover_the_same_ground() -> None:
    assert set(otp.RESTART_TABLE) == set(PAIRS)
    assert len(PAIRS) == 12
    for kind, examples in EXAMPLES.items():
        assert all(reason.kind is kind for reason in examples), kind


@pytest.mark.parametrize(("restart", "kind"), PAIRS, ids=lambda v: v.value)
def test_the_default_decider_is_otps_table(restart: Restart, kind: ReasonKind) -> None:
    """For every restart type x reason class: the table says what OTP says, and the
    default decider (an empty Decider, and no decider at all) decides the same."""
    expected = otp_do_restart(restart, kind)
    assert otp.RESTART_TABLE[restart, kind].value == expected
    for reason in EXAMPLES[kind]:
        assert otp.Decider().decide(restart, reason) == DECISION_OF[expected], reason
        assert otp.Decider([]).decide(restart, reason) == DECISION_OF[expected], reason


@pytest.mark.parametrize(("restart", "kind"), PAIRS, ids=lambda v: v.value)
@pytest.mark.parametrize("given", ["no decider", "empty decider"])
def test_a_core_without_rules_acts_on_otps_table(
    restart: Restart, kind: ReasonKind, given: str
) -> None:
    """Through a supervisor's core: a child of each restart type ending with a reason
    of each class is restarted, kept or removed exactly as OTP's table says."""
    decider = None if given == "no decider" else otp.Decider()
    spec = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(10, 5), decider=decider,
                              children=[worker("w", restart=restart)])
    for reason in EXAMPLES[kind]:
        sim = otp.simulate(spec, [(1.0, "w", reason)])
        expected = otp_do_restart(restart, kind)
        assert [e.outcome for e in sim.exits("w")] == [expected], reason
        assert sim.restart_times("w") == ([1.0] if expected == "restart" else [])
        assert sim.gave_up_at() is None


@pytest.mark.parametrize("restart", list(Restart), ids=lambda r: r.value)
def test_the_sentinels_steer_the_default_decider_whatever_the_restart_type(
    restart: Restart,
) -> None:
    assert otp.Decider().decide(restart, reasons.NoRestart("done")) == otp.Decision.STOP
    assert otp.Decider().decide(restart, reasons.TreeShutdown()) == otp.Decision.SHUTDOWN_TREE
    # and the exceptions children raise become those reasons
    assert from_exception(otp.DoNotRestart("done")) == reasons.NoRestart("done")
    assert from_exception(otp.ShutdownTree("bye")) == reasons.TreeShutdown("bye")


# ----------------------------------------------------------------- matching rules

def test_exit_code_rules_match_exit_statuses_only() -> None:
    escalate = otp.Decider({otp.OnExitCode(78): otp.Decision.ESCALATE})
    assert escalate.decide(Restart.PERMANENT, reasons.Exited(78)) == otp.Decision.ESCALATE
    assert escalate.decide(Restart.PERMANENT, reasons.Exited(77)) == otp.Decision.RESTART
    assert escalate.decide(Restart.TEMPORARY, reasons.Exited(78)) == otp.Decision.ESCALATE
    assert escalate.decide(Restart.PERMANENT, reasons.Signaled(78)) == otp.Decision.RESTART
    several = otp.Decider({otp.OnExitCode([75, 78]): otp.Decision.STOP})
    assert several.decide(Restart.PERMANENT, reasons.Exited(75)) == otp.Decision.STOP
    assert several.decide(Restart.PERMANENT, reasons.Exited(78)) == otp.Decision.STOP
    assert several.decide(Restart.TRANSIENT, reasons.Normal()) == otp.Decision.STOP


def test_signal_rules_match_signals_and_sigkill_matches_our_kill() -> None:
    later = otp.Decision.restart(delay=2.0)
    decider = otp.Decider({otp.OnSignal(signal.SIGKILL): later})
    assert decider.decide(Restart.PERMANENT, reasons.Signaled(9, "SIGKILL")) == later
    assert decider.decide(Restart.PERMANENT, reasons.Killed()) == later
    assert decider.decide(Restart.PERMANENT, reasons.Signaled(11)) == otp.Decision.RESTART
    assert decider.decide(Restart.PERMANENT, reasons.Exited(9)) == otp.Decision.RESTART
    term = otp.Decider({otp.OnSignal(signal.SIGTERM): otp.Decision.STOP})
    assert term.decide(Restart.PERMANENT, reasons.Killed()) == otp.Decision.RESTART


def test_exception_class_rules_match_the_class_and_its_subclasses() -> None:
    decider = otp.Decider({ConfigError: otp.Decision.STOP})
    crash = from_exception(MissingSetting("missing setting 'api_key'"))
    assert isinstance(crash, reasons.Crashed)
    assert decider.decide(Restart.PERMANENT, crash) == otp.Decision.STOP
    assert decider.decide(Restart.PERMANENT, from_exception(ConfigError())) == otp.Decision.STOP
    other = from_exception(ValueError("boom"))
    assert decider.decide(Restart.PERMANENT, other) == otp.Decision.RESTART
    # a builtin base class matches everything derived from it
    lookups = otp.Decider({LookupError: otp.Decision.IGNORE})
    assert lookups.decide(Restart.PERMANENT, from_exception(KeyError("k"))) == (
        otp.Decision.IGNORE)
    # a class of the same name elsewhere does not match
    assert decider.decide(Restart.PERMANENT, reasons.Crashed("ConfigError", "x")) == (
        otp.Decision.RESTART)


def test_reason_class_and_callable_rules() -> None:
    decider = otp.Decider([
        (reasons.Hung, otp.Decision.STOP),
        (lambda reason: "flaky" in str(reason), otp.Decision.IGNORE),
    ])
    assert decider.decide(Restart.PERMANENT, reasons.Hung("no heartbeat")) == otp.Decision.STOP
    assert decider.decide(Restart.PERMANENT, reasons.Abnormal("flaky disk")) == (
        otp.Decision.IGNORE)
    assert decider.decide(Restart.TRANSIENT, reasons.Normal()) == otp.Decision.STOP


def test_the_first_matching_rule_decides_and_sentinels_can_be_overridden() -> None:
    decider = otp.Decider([
        (otp.OnExitCode(78), otp.Decision.ESCALATE),
        (reasons.Exited, otp.Decision.STOP),
        (reasons.NoRestart, otp.Decision.RESTART),
    ])
    assert decider.decide(Restart.PERMANENT, reasons.Exited(78)) == otp.Decision.ESCALATE
    assert decider.decide(Restart.PERMANENT, reasons.Exited(1)) == otp.Decision.STOP
    assert decider.decide(Restart.PERMANENT, reasons.NoRestart()) == otp.Decision.RESTART
    # an Action is accepted for a Decision
    short = otp.Decider({reasons.Exited: otp.Decision.STOP.action})
    assert short.decide(Restart.PERMANENT, reasons.Exited(1)) == otp.Decision.STOP


@pytest.mark.parametrize("delay", [-1.0, float("nan"), float("inf"), True, "1"])
def test_a_restart_delay_must_be_a_finite_non_negative_number(delay: object) -> None:
    with pytest.raises(ValueError, match="finite number >= 0"):
        otp.Decision.restart(delay=delay)  # type: ignore[arg-type]


@pytest.mark.parametrize(("make", "value"), [
    (otp.OnExitCode, "78"), (otp.OnExitCode, [1.5]), (otp.OnExitCode, True),
    (otp.OnExitCode, []), (otp.OnSignal, 99999), (otp.OnSignal, 0), (otp.OnSignal, "9"),
])
def test_matchers_take_exact_ints(make: type, value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        make(value)


def test_matchers_take_one_int_or_several() -> None:
    assert otp.OnExitCode(78).codes == (78,)
    assert otp.OnExitCode([75, 78]).codes == (75, 78)
    assert otp.OnSignal((9, 15)).signals == (9, 15)


def test_bad_rules_are_refused() -> None:
    with pytest.raises(TypeError, match="matches an exception class"):
        otp.Decider({42: otp.Decision.STOP})
    with pytest.raises(TypeError, match="must be a Decision"):
        otp.Decider({ValueError: "stop"})


# --------------------------------------------------- each decision, in the core

def test_restart_with_a_delay_overrides_the_policys_delay() -> None:
    decider = otp.Decider({otp.OnExitCode(75): otp.Decision.restart(delay=2.5)})
    spec = otp.SupervisorSpec(
        id="root",
        intensity=otp.SlidingWindow(5, 60) & otp.ExponentialBackoff(initial=10.0, maximum=30.0,
                                                                     jitter=0),
        decider=decider,
        children=[worker("w")],
    )
    sim = otp.simulate(spec, [(1.0, "w", reasons.Exited(75)), (10.0, "w", "boom")])
    assert [(e.time, e.outcome, e.delay) for e in sim.exits("w")] == [
        (1.0, "restart", 2.5),
        (10.0, "restart", 20.0),  # the policy's own delay: its second failure
    ]
    assert sim.restart_times("w") == [3.5, 30.0]
    [first, _] = sim.of_type(rp.RestartScheduled)
    assert (first.time, first.delay) == (1.0, 2.5)


def test_a_delayed_restart_still_counts_against_the_window() -> None:
    decider = otp.Decider({reasons.Exited: otp.Decision.restart(delay=1.0)})
    spec = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(1, 10), decider=decider,
                              children=[worker("w")])
    sim = otp.simulate(spec, [(1.0, "w", reasons.Exited(1)), (3.0, "w", reasons.Exited(1))])
    assert [e.outcome for e in sim.exits("w")] == ["restart", "give_up"]
    assert sim.gave_up_at() == 3.0


@pytest.mark.parametrize(("restart", "outcome"), [(Restart.PERMANENT, "keep"),
                                                   (Restart.TRANSIENT, "keep"),
                                                   (Restart.TEMPORARY, "remove")])
def test_stop_does_not_restart(restart: Restart, outcome: str) -> None:
    decider = otp.Decider({otp.OnExitCode(78): otp.Decision.STOP})
    spec = otp.SupervisorSpec(id="root", decider=decider,
                              children=[worker("w", restart=restart), worker("x")])
    sim = otp.simulate(spec, [(1.0, "w", reasons.Exited(78)), (2.0, "x", "boom")])
    assert [(e.path, e.outcome) for e in sim.exits()] == [("w", outcome), ("x", "restart")]
    assert sim.restart_times("w") == []
    assert sim.gave_up_at() is None  # the stop did not charge the budget (1 in 5 s)


def test_escalate_gives_up_at_once_whatever_the_budget() -> None:
    decider = otp.Decider({otp.OnExitCode(78): otp.Decision.ESCALATE})
    spec = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(100, 5),
                              decider=decider, children=[worker("a"), worker("w"), worker("z")])
    sim = otp.simulate(spec, [(1.0, "w", "boom"), (2.0, "w", reasons.Exited(78))])
    assert [e.outcome for e in sim.exits("w")] == ["restart", "escalate"]
    assert sim.gave_up_at() == 2.0
    [gave_up] = sim.of_type(rp.IntensityExceeded)
    assert gave_up.child_id == "w"
    assert gave_up.why == "exited with status 78 escalated by the failure decider"
    assert [r.child_id for r in sim.of_type(rp.ChildTerminated)] == ["z", "a"]
    assert sim.exit_reason == reasons.Shutdown()


def test_escalation_of_a_nested_supervisor_reaches_its_parent_as_an_exit() -> None:
    decider = otp.Decider({otp.OnExitCode(78): otp.Decision.ESCALATE})
    pool = otp.SupervisorSpec(id="pool", restart="transient", decider=decider,
                              children=[worker("w")])
    spec = otp.SupervisorSpec(id="root", children=[pool, worker("db")])
    sim = otp.simulate(spec, [(1.0, "pool/w", reasons.Exited(78))])
    assert sim.gave_up_at("pool") == 1.0
    assert sim.gave_up_at() is None
    assert [(e.path, e.reason, e.outcome) for e in sim.exits()] == [
        ("pool/w", reasons.Exited(78), "escalate"),
        ("pool", reasons.Shutdown(), "keep"),  # transient: OTP keeps it stopped
    ]


def test_shutdown_tree_stops_the_whole_tree_in_order() -> None:
    decider = otp.Decider({reasons.Normal: otp.Decision.SHUTDOWN_TREE})
    pool = otp.SupervisorSpec(id="pool", decider=decider,
                              children=[worker("w"), worker("v", restart="transient")])
    spec = otp.SupervisorSpec(id="root", children=[worker("db"), pool, worker("web")])
    sim = otp.simulate(spec, [(1.0, "pool/v", "normal")])
    assert [(e.path, e.outcome) for e in sim.exits()] == [("pool/v", "shutdown_tree")]
    assert [r.where + "/" + r.child_id for r in sim.of_type(rp.ChildTerminated)] == [
        "root/web", "root/pool/w", "root/pool", "root/db"]
    assert sim.exit_reason == reasons.Shutdown()
    assert sim.gave_up_at() is None and sim.gave_up_at("pool") is None


def test_ignore_restarts_without_charging_the_budget() -> None:
    """50 ignored failures under a window of 1 restart: no surrender. Then the first
    charged failure is allowed (the window was empty) and the second is not."""
    decider = otp.Decider({reasons.Signaled: otp.Decision.IGNORE})
    spec = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(1, 100),
                              decider=decider, children=[worker("w")])
    ignored = [(0.5 * i, "w", reasons.Signaled(11)) for i in range(1, 51)]
    sim = otp.simulate(spec, [*ignored, (30.0, "w", "boom"), (31.0, "w", "boom")])
    outcomes = [e.outcome for e in sim.exits("w")]
    assert outcomes == ["ignore"] * 50 + ["restart", "give_up"]
    assert len(sim.restart_times("w")) == 51
    assert sim.gave_up_at() == 31.0


def test_ignore_under_a_backoff_restarts_at_once() -> None:
    """An ignored failure bypasses the intensity policy altogether: no backoff delay,
    and the backoff's count is not advanced either."""
    decider = otp.Decider({reasons.Signaled: otp.Decision.IGNORE})
    spec = otp.SupervisorSpec(
        id="root", decider=decider,
        intensity=otp.SlidingWindow(5, 100) & otp.ExponentialBackoff(initial=2.0, jitter=0),
        children=[worker("w")])
    sim = otp.simulate(spec, [(1.0, "w", reasons.Signaled(11)), (2.0, "w", reasons.Signaled(11)),
                              (3.0, "w", "boom")])
    assert sim.restart_delays("w") == [0.0, 0.0, 2.0]


# ---------------------------------------- where deciders apply: defaults, overrides

def test_the_supervisors_decider_is_the_default_and_a_childs_own_overrides_it() -> None:
    stop_on_78 = otp.Decider({otp.OnExitCode(78): otp.Decision.STOP})
    spec = otp.SupervisorSpec(
        id="root",
        intensity=otp.SlidingWindow(10, 5),
        decider=stop_on_78,
        children=[
            worker("plain"),
            worker("table", decider=otp.Decider()),  # explicitly OTP's table
            worker("later", decider=otp.Decider({otp.OnExitCode(78):
                                                 otp.Decision.restart(delay=3.0)})),
        ],
    )
    events = [(1.0, path, reasons.Exited(78)) for path in ("plain", "table", "later")]
    sim = otp.simulate(spec, events)
    assert [(e.path, e.outcome, e.delay) for e in sim.exits()] == [
        ("plain", "keep", None),
        ("table", "restart", 0.0),
        ("later", "restart", 3.0),
    ]


def test_a_supervisors_decider_is_not_inherited_by_nested_supervisors() -> None:
    stop_on_78 = otp.Decider({otp.OnExitCode(78): otp.Decision.STOP})
    pool = otp.SupervisorSpec(id="pool", children=[worker("w")])
    spec = otp.SupervisorSpec(id="root", decider=stop_on_78, children=[pool, worker("db")])
    sim = otp.simulate(spec, [(1.0, "pool/w", reasons.Exited(78)),
                              (2.0, "db", reasons.Exited(78))])
    assert [(e.path, e.outcome) for e in sim.exits()] == [("pool/w", "restart"),
                                                         ("db", "keep")]


def test_a_nested_supervisors_decider_does_not_decide_about_the_nested_supervisor() -> None:
    """A SupervisorSpec's decider is the default of *its* children; its parent judges
    the nested supervisor's own exit by the parent's rules. (Found by this suite: the
    parent used to apply the nested supervisor's decider, and restarted a transient
    supervisor that had given up.)"""
    # A rule meant for pool's workers: a worker ending with {shutdown, ...} restarts.
    for_workers = otp.Decider({reasons.Shutdown: otp.Decision.RESTART})
    pool = otp.SupervisorSpec(id="pool", restart="transient", intensity=otp.SlidingWindow(0, 5),
                              decider=for_workers, children=[worker("w")])
    spec = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(0, 5), children=[pool])
    sim = otp.simulate(spec, [(1.0, "pool/w", "boom")])
    assert [(e.path, e.outcome) for e in sim.exits()] == [("pool/w", "give_up"),
                                                         ("pool", "keep")]
    assert sim.gave_up_at() is None
