"""OTP's ``ignore`` and the answers for children with no process, in the pure core.

Each rule is OTP 25's ``supervisor.erl`` (the conformance scenarios ``ignore_*``,
``restarting_start_child`` and ``api_undefined_children`` recorded the same rules
from Erlang): a start that says ignore keeps the child with no process (forgotten if
temporary or dynamic) and is not a failure; ``start_child`` of a child that has no
process, or is restarting, is already present.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

import otp_py as otp
from otp_py import reports as rp
from otp_py._core import events as ev
from otp_py._core.supervisor import SupervisorCore
from otp_py.reasons import Abnormal, Shutdown


async def idle(*names: str) -> None:  # never run: the core starts nothing itself
    pass


def child(cid: str, **fields: Any) -> otp.ChildSpec:
    return otp.ChildSpec(id=cid, start=idle, backend="asyncio", **fields)


class Driver:
    """Runs one core, answering its actions at once: a start is up, unless the
    script says its n-th attempt (per id, or per first extra arg) ignores or fails;
    a stop ends the child with shutdown."""

    def __init__(self, spec: otp.SupervisorSpec, *, ignore: Iterable[tuple[str, int]] = (),
                 fail: Iterable[tuple[str, int]] = (),
                 hold: Iterable[tuple[str, int]] = ()) -> None:
        self.core = SupervisorCore(spec)
        self.ignore = set(ignore)
        self.fail = set(fail)
        self.hold = set(hold)  # starts left unanswered (a slow start): ref in held
        self.held: dict[tuple[str, int], int] = {}
        self.attempts: dict[str, int] = {}
        self.refs: dict[str, int] = {}  # running child -> ref
        self.reports: list[Any] = []
        self.replies: dict[int, ev.Reply] = {}
        self.request_ids = 0
        self.now = 0.0
        self.feed(ev.Init())

    def feed(self, event: ev.Event) -> None:
        queue = [event]
        while queue:
            for action in self.core.handle(queue.pop(0), self.now):
                queue.extend(self._answer(action))

    def _answer(self, action: ev.Action) -> list[ev.Event]:
        if isinstance(action, ev.Emit):
            self.reports.append(action.report)
        elif isinstance(action, ev.Reply):
            self.replies[action.request_id] = action
        elif isinstance(action, ev.StartChild):
            name = str(action.spec.args[0]) if action.spec.args else action.child_id
            n = self.attempts[name] = self.attempts.get(name, 0) + 1
            if (name, n) in self.hold:
                self.held[name, n] = action.ref
                return []
            if (name, n) in self.ignore:
                return [ev.ChildIgnored(action.ref)]
            if (name, n) in self.fail:
                return [ev.ChildStartFailed(action.ref, Abnormal("start_failed"))]
            self.refs[action.child_id] = action.ref
            return [ev.ChildUp(action.ref)]
        elif isinstance(action, ev.StopChild | ev.KillChild):
            for cid, ref in list(self.refs.items()):
                if ref == action.ref:
                    del self.refs[cid]
                    return [ev.ChildDown(ref, Shutdown())]
        return []

    def crash(self, cid: str) -> None:
        self.now += 0.1
        self.feed(ev.ChildDown(self.refs.pop(cid), Abnormal("boom")))

    def call(self, request: ev.Request) -> ev.Reply:
        self.request_ids += 1
        self.feed(ev.Call(self.request_ids, request))
        return self.replies.pop(self.request_ids)

    def states(self) -> dict[str, str]:
        infos = self.call(ev.WhichChildren()).value
        return {info.id: info.state for info in infos}

    def counts(self) -> otp.ChildCounts:
        counts: otp.ChildCounts = self.call(ev.CountChildren()).value
        return counts


def sup(*children: Any, strategy: str = "one_for_one") -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="root", strategy=strategy, children=list(children),
                              intensity=otp.SlidingWindow(10, 10))


def ignored_reports(driver: Driver) -> list[tuple[str, bool]]:
    return [(r.child_id, r.kept) for r in driver.reports if isinstance(r, rp.ChildIgnored)]


# ------------------------------------------------------------------------- at init


def test_at_init_an_ignoring_child_is_kept_with_no_process_and_init_goes_on() -> None:
    d = Driver(sup(child("a"), child("b", restart="transient"), child("c")),
               ignore=[("a", 1), ("b", 1)])
    assert d.core.state == "running"
    assert d.states() == {"a": "ignored", "b": "ignored", "c": "running"}
    assert d.counts() == otp.ChildCounts(specs=3, active=1, supervisors=0, workers=3)
    assert ignored_reports(d) == [("a", True), ("b", True)]
    assert not any(isinstance(r, rp.ChildStartFailed) for r in d.reports)


def test_at_init_an_ignoring_temporary_child_is_forgotten() -> None:
    d = Driver(sup(child("t", restart="temporary"), child("c")), ignore=[("t", 1)])
    assert d.states() == {"c": "running"}
    assert isinstance(d.call(ev.GetChildSpec("t")).error, otp.ChildNotFoundError)
    assert ignored_reports(d) == [("t", False)]


def test_one_for_all_restarts_the_ignored_children_too() -> None:
    # OTP's restart_multiple_children starts every kept child, undefined ones too.
    d = Driver(sup(child("a"), child("t", restart="temporary"), child("c"),
                   strategy="one_for_all"), ignore=[("a", 1), ("t", 1)])
    d.crash("c")
    assert d.states() == {"a": "running", "c": "running"}


# ------------------------------------------------------------- start_child, restart_child


def test_start_child_that_ignores_answers_none_and_keeps_the_child() -> None:
    d = Driver(sup(child("a")), ignore=[("p", 1)])
    reply = d.call(ev.StartChildRequest(spec=child("p")))
    assert (reply.value, reply.error) == (None, None)
    assert d.states() == {"a": "running", "p": "ignored"}
    again = d.call(ev.StartChildRequest(spec=child("p")))
    assert isinstance(again.error, otp.AlreadyPresentError)
    assert "ignored" in str(again.error)
    assert d.call(ev.RestartChild("p")).value == "p"
    assert d.states() == {"a": "running", "p": "running"}


def test_start_child_of_a_temporary_child_that_ignores_keeps_nothing() -> None:
    d = Driver(sup(child("a")), ignore=[("t", 1)])
    assert d.call(ev.StartChildRequest(spec=child("t", restart="temporary"))).value is None
    assert d.states() == {"a": "running"}
    assert d.call(ev.StartChildRequest(spec=child("t", restart="temporary"))).value == "t"


def test_restart_child_that_ignores_answers_none_and_leaves_it_not_running() -> None:
    d = Driver(sup(child("a")), ignore=[("a", 2)])
    d.call(ev.TerminateChild("a"))
    reply = d.call(ev.RestartChild("a"))
    assert (reply.value, reply.error) == (None, None)
    assert d.states() == {"a": "ignored"}
    assert d.call(ev.RestartChild("a")).value == "a"


def test_simple_one_for_one_child_that_ignores_is_not_kept() -> None:
    d = Driver(sup(child("w"), strategy="simple_one_for_one"), ignore=[("w1", 1)])
    reply = d.call(ev.StartChildRequest(extra_args=("w1",)))
    assert (reply.value, reply.error) == (None, None)
    assert d.states() == {}
    assert d.counts() == otp.ChildCounts(specs=1, active=0, supervisors=0, workers=0)
    assert ignored_reports(d) == [("w#1", False)]
    assert d.call(ev.StartChildRequest(extra_args=("w1",))).value == "w#2"


# ------------------------------------------------------------------------- restarts


def test_a_restart_that_ignores_leaves_the_child_not_running_without_a_retry() -> None:
    d = Driver(sup(child("a"), child("b")), ignore=[("a", 2)])
    d.crash("a")
    assert d.states() == {"a": "ignored", "b": "running"}
    assert d.attempts["a"] == 2  # no retry follows, unlike a failed restart
    assert d.core.state == "running"


def test_rest_for_one_goes_on_past_a_child_that_ignores_its_restart() -> None:
    d = Driver(sup(child("a"), child("b"), child("c"), strategy="rest_for_one"),
               ignore=[("b", 2)])
    d.crash("a")
    assert d.states() == {"a": "running", "b": "ignored", "c": "running"}


def test_a_dynamic_child_that_ignores_its_restart_is_forgotten() -> None:
    # OTP 25 keeps a phantom entry (pid undefined) here and crashes with a
    # function_clause when it later stops; otp_py forgets the child (see the docs).
    d = Driver(sup(child("w"), strategy="simple_one_for_one"), ignore=[("w1", 2)])
    d.call(ev.StartChildRequest(extra_args=("w1",)))
    d.crash("w#1")
    assert d.states() == {}
    d.feed(ev.Stop())
    assert d.core.state == "exited"


def test_a_started_child_is_no_longer_shown_ignored() -> None:
    d = Driver(sup(child("a")), ignore=[("a", 1)])
    d.call(ev.RestartChild("a"))
    d.call(ev.TerminateChild("a"))
    assert d.states() == {"a": "stopped"}


# -------------------------------------------------- the answers in the restarting state


def test_start_child_of_a_restarting_child_is_already_present() -> None:
    # The restart fails; its retry is slow: a call sent meanwhile waits, and is
    # answered when the retry fails too, before the next retry (as OTP's mailbox).
    d = Driver(sup(child("a"), child("b")), fail=[("a", 2)], hold=[("a", 3)])
    d.crash("a")
    d.request_ids += 1
    d.feed(ev.Call(d.request_ids, ev.StartChildRequest(spec=child("a"))))
    d.request_ids += 1
    d.feed(ev.Call(d.request_ids, ev.WhichChildren()))
    assert d.replies == {}  # busy with the slow retry
    d.feed(ev.ChildStartFailed(d.held.pop(("a", 3)), Abnormal("start_failed")))
    start_child, which = d.replies.pop(1), d.replies.pop(2)
    assert {i.id: i.state for i in which.value}["a"] == "restarting"
    assert isinstance(start_child.error, otp.AlreadyPresentError)
    assert not isinstance(start_child.error, otp.AlreadyStartedError)
    assert "restarting" in str(start_child.error)


@pytest.mark.parametrize("state", ["stopped", "ignored"])
def test_start_child_of_a_child_with_no_process_is_already_present(state: str) -> None:
    d = Driver(sup(child("a")), ignore=[("a", 1)] if state == "ignored" else [])
    if state == "stopped":
        d.call(ev.TerminateChild("a"))
    assert d.states() == {"a": state}
    assert isinstance(d.call(ev.StartChildRequest(spec=child("a"))).error,
                      otp.AlreadyPresentError)


def test_start_child_of_a_running_child_is_already_started() -> None:
    d = Driver(sup(child("a")))
    assert isinstance(d.call(ev.StartChildRequest(spec=child("a"))).error,
                      otp.AlreadyStartedError)


def test_get_childspec_of_a_simple_one_for_one_template_answers_the_template() -> None:
    template = child("w")
    d = Driver(sup(template, strategy="simple_one_for_one"))
    assert d.call(ev.GetChildSpec("w")).value is template
    assert isinstance(d.call(ev.GetChildSpec("zz")).error, otp.ChildNotFoundError)
