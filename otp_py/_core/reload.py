"""The reload plan: what a running supervisor does to become a new declaration. No I/O.

A reload (``Supervisor.update(new_spec)``, ``otp-py ctl reload``, SIGHUP to
``otp-py run``) has supervisorctl's ``reread`` + ``update`` meaning. This module makes
the decision, as :mod:`otp_py._core.strategies` makes a restart's: it compares the
running declaration with the new one and returns a :class:`ReloadPlan`, plain data
that the core executes as a job, the dry run prints, and the tests read.

Rules
-----
A child's identity is its id among its siblings.

* **Added**: an id only in the new spec. It is started, after the changed children,
  in the new spec's order, and sits at its place in that order.
* **Removed**: an id only in the old spec. It is stopped (with its own ``shutdown``)
  and deleted, first of all, in reverse start order.
* **Changed**: an id in both whose spec differs in any field. It is stopped and
  started again with the new spec, in the new spec's order: a new child (its restart
  count starts again; its crash history is kept).
* **Unchanged**: an id whose spec is the same. It is never touched: same process,
  same pid, same restart count.
* **Nested supervisors** keep running when their id and kind are unchanged: their
  own fields (strategy, intensity, shutdown...) apply in place, and their children are
  planned by the same rules, recursively (:attr:`ReloadPlan.nested`). A nested
  supervisor is restarted (stopped with all its children, started with the new spec)
  only when its kind changes: worker to supervisor or back, another ``backend``,
  between ``simple_one_for_one`` and a static strategy, to or from a
  :class:`~otp_py.SharedBudget`, or, for a subtree in a process of its own, another
  ``watchdog``.
* **The supervisor's own flags** (strategy, intensity, auto_shutdown, decider,
  max_children) take effect without restarting anything. The restart budget is kept:
  an unchanged intensity keeps its bookkeeping, and a changed one is told of the
  failures the old one was charged with (:func:`carry_budget`), as OTP keeps its
  restart history across a code change; a reload never resets a crash loop's count.
* **Order**: the new spec's order becomes the supervisor's start order (what
  rest_for_one restarts after a child, and the reverse order of stops); children
  that only moved are not restarted.
* **simple_one_for_one**: the running dynamic children are untouched; a changed
  template applies to the children started after (as an OTP code upgrade would).
* **The root** cannot change its id, nor what would restart a nested supervisor
  (static to dynamic, its shared budget): such a reload is refused with a
  :class:`~otp_py.SpecError` naming the field, before anything is done.

What "the same" means
---------------------
Specs are compared field by field with :func:`same_value`: values by ``==``
(tuples, lists and dicts element by element), callables by what they name. A
function or class is the same as another if it is the same object, or if both are
defined at a module's top level with the same module and qualified name (a module
imported again yields new function objects for the same declaration). Lambdas and
closures are the same only as the same object: two closures of one factory may hold
different values. ``functools.partial`` objects are the same when their function,
arguments and keywords are. A TOML tree names its callables by import path, so two
loads of one file are equal. A reload compares declarations, not code: a child whose
declaration did not change keeps running the code it started with.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Iterable, Iterator
from typing import Any, Final

import attrs

from otp_py._core import events as ev
from otp_py._core.intensity import Budget, RandomSource, SharedBudget
from otp_py._errors import SpecError

__all__ = ["FLAGS", "Reload", "ReloadPlan", "carry_budget", "changed_fields", "plan",
           "same_value"]

FLAGS: Final = ("strategy", "intensity", "auto_shutdown", "decider", "max_children",
                "watchdog")
"""A supervisor's own fields, which a reload applies in place."""


@attrs.define(slots=True)
class Reload(ev.Request):
    """Reload one supervisor (not its nested ones) to ``spec``: the core plans with
    :func:`plan`, executes its own level, and answers with the ids of the nested
    supervisors it kept whose specs changed, for the runtime to reload in turn."""

    spec: Any


@attrs.frozen
class ReloadPlan:
    """What a reload does to the supervisor at ``path`` (ids are its children's).

    * ``flags``: its fields that changed and apply in place (for a nested supervisor
      also those its parent reads: ``restart``, ``shutdown``...);
    * ``removed``: stopped and deleted, in this order (reverse start order);
    * ``changed``: ``(id, fields that differ)``, restarted in this order;
    * ``added``: started in this order;
    * ``unchanged``: untouched (workers, and nested supervisors with nothing to do);
    * ``nested``: the plans of the nested supervisors kept, which have something to
      do, in the new spec's order;
    * ``template``: for a simple_one_for_one supervisor, the fields of its template
      that changed (they apply to children started from now on);
    * ``order``: every child id in the new spec's order;
    * ``reordered``: whether the children both specs declare come in another order
      (the new order is taken without restarting them).
    """

    path: tuple[str, ...]
    flags: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[tuple[str, tuple[str, ...]], ...] = ()
    added: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    nested: tuple[ReloadPlan, ...] = ()
    template: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    reordered: bool = False

    @property
    def is_empty(self) -> bool:
        """True when the new spec is the running one: nothing would be done."""
        return not (self.flags or self.removed or self.changed or self.added
                    or self.nested or self.template or self.reordered)

    def walk(self) -> Iterator[ReloadPlan]:
        """This plan and every nested one, depth first, in the new spec's order."""
        yield self
        for sub in self.nested:
            yield from sub.walk()

    def summary(self) -> dict[str, list[str]]:
        """The plan as child paths (``"root/pool/w"``) by what happens to them:
        ``added``, ``removed``, ``changed``, ``unchanged``, and ``updated``
        (supervisors whose flags or template change in place, with the fields)."""
        out: dict[str, list[str]] = {"added": [], "removed": [], "changed": [],
                                     "unchanged": [], "updated": []}
        for sub in self.walk():
            where = "/".join(sub.path)
            out["removed"].extend(f"{where}/{cid}" for cid in sub.removed)
            out["changed"].extend(f"{where}/{cid} ({', '.join(fields)})"
                                  for cid, fields in sub.changed)
            out["added"].extend(f"{where}/{cid}" for cid in sub.added)
            out["unchanged"].extend(f"{where}/{cid}" for cid in sub.unchanged)
            fields = [*sub.flags, *(f"template {f}" for f in sub.template)]
            if sub.reordered:
                fields.append("order")
            if fields:
                out["updated"].append(f"{where} ({', '.join(fields)})")
        return out

    def describe(self) -> list[str]:
        """The plan in lines, one per kind of change, for people."""
        if self.is_empty:
            return [f"tree {self.path[-1]!r}: nothing to do (the declaration is unchanged)"]
        lines = []
        for kind, paths in self.summary().items():
            if paths:
                lines.append(f"{kind + ':':10} {', '.join(paths)}")
        return lines


def _is_named(value: Any) -> bool:
    """A function or class defined at a module's top level (not a lambda, not a
    closure), which its module and qualified name identify."""
    if not isinstance(value, types.FunctionType | types.BuiltinFunctionType | type):
        return False
    qualname = getattr(value, "__qualname__", "")
    return bool(getattr(value, "__module__", None)) and "<" not in qualname


def same_value(a: Any, b: Any) -> bool:
    """Whether two spec field values declare the same thing (see the module
    docstring): ``==``, with callables compared by what they name."""
    if a is b:
        return True
    if isinstance(a, functools.partial) and isinstance(b, functools.partial):
        return (same_value(a.func, b.func) and same_value(a.args, b.args)
                and same_value(a.keywords, b.keywords))
    if isinstance(a, types.MethodType) and isinstance(b, types.MethodType):
        return same_value(a.__func__, b.__func__) and same_value(a.__self__, b.__self__)
    if _is_named(a) and _is_named(b):
        return bool(a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__)
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return (type(a) is type(b) and len(a) == len(b)
                and all(same_value(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # a user object whose __eq__ raises is not known to be equal
        return False


def changed_fields(old: Any, new: Any) -> tuple[str, ...]:
    """The fields in which two child specs differ (``("kind",)`` when one is a
    worker and the other a supervisor). A supervisor's ``children`` are not compared
    here: they are planned."""
    if type(old) is not type(new):
        return ("kind",)
    return tuple(
        f.name for f in attrs.fields(type(old))
        if f.name != "children" and not same_value(getattr(old, f.name), getattr(new, f.name))
    )


def _restart_reason(old: Any, new: Any, *, top: bool = False) -> str | None:
    """Why a supervisor, kept by id, must be restarted rather than updated in place
    (None: it can be updated). Where it runs (``backend``) is its parent's concern:
    at the top of a reload (``top``) its parent has kept it, or it is the root."""
    if old.strategy.dynamic != new.strategy.dynamic:
        return "strategy (between simple_one_for_one and a static strategy)"
    shared = isinstance(old.intensity, SharedBudget) or isinstance(new.intensity, SharedBudget)
    if shared and not same_value(old.intensity, new.intensity):
        return "intensity (a SharedBudget)"
    if top:
        return None
    if old.backend != new.backend:
        return "backend"
    if old.backend == "process" and not same_value(old.watchdog, new.watchdog):
        return "watchdog (of a subtree in a process of its own)"
    return None


def plan(old: Any, new: Any, path: tuple[str, ...] | None = None) -> ReloadPlan:
    """The plan that turns the running supervisor ``old`` into ``new`` (both
    :class:`~otp_py.SupervisorSpec`), recursively. ``path`` names ``old`` in the plan
    (default: its id).

    Raises :class:`~otp_py.SpecError` when ``new`` cannot replace ``old`` in place:
    another id, or a change that only a restart of ``old`` could make (see
    :func:`_restart_reason`); a nested supervisor with such a change is restarted by
    its parent instead."""
    if new.id != old.id:
        raise SpecError(new.id, "id", f"a reload keeps the supervisor's id: the running one "
                        f"is {old.id!r}; got {new.id!r}")
    why = _restart_reason(old, new, top=True)
    if why is not None:
        field = why.split()[0]
        raise SpecError(new.id, field, f"cannot change {why} of supervisor {old.id!r} while "
                        "it runs: only a restart of it could, and a reload does not restart "
                        "the tree's root; stop the tree and run it again")
    return _plan(old, new, path or (old.id,), top=True)


def _plan(old: Any, new: Any, path: tuple[str, ...], *, top: bool = False) -> ReloadPlan:
    flags = changed_fields(old, new)
    if top:  # (a subtree in a process of its own runs its spec as "inline")
        flags = tuple(f for f in flags if f != "backend")
    if new.strategy.dynamic:
        template = changed_fields(old.children[0], new.children[0])
        return ReloadPlan(path, flags=flags, template=template,
                          order=tuple(c.id for c in new.children))
    before = {c.id: c for c in old.children}
    after = {c.id: c for c in new.children}
    removed = tuple(cid for cid in reversed(before) if cid not in after)
    changed: list[tuple[str, tuple[str, ...]]] = []
    added: list[str] = []
    unchanged: list[str] = []
    nested: list[ReloadPlan] = []
    for cid, spec in after.items():
        was = before.get(cid)
        if was is None:
            added.append(cid)
            continue
        fields = changed_fields(was, spec)
        if fields and spec.is_supervisor and "kind" not in fields:
            why = _restart_reason(was, spec)
            if why is not None:
                changed.append((cid, (why.split()[0],)))
                continue
            fields = ()  # updated in place, below
        if fields:
            changed.append((cid, fields))
        elif spec.is_supervisor:
            sub = _plan(was, spec, (*path, cid))
            if sub.is_empty:
                unchanged.append(cid)
            else:
                nested.append(sub)
        else:
            unchanged.append(cid)
    kept_before = [cid for cid in before if cid in after]
    kept_after = [cid for cid in after if cid in before]
    return ReloadPlan(path, flags=flags, removed=removed, changed=tuple(changed),
                      added=tuple(added), unchanged=tuple(unchanged), nested=tuple(nested),
                      order=tuple(after), reordered=kept_before != kept_after)


def carry_budget(
    policy: Any,
    random: RandomSource,
    failures: Iterable[tuple[str, float]],
    starts: Iterable[tuple[str, float]],
) -> Budget:
    """A budget of the new intensity ``policy`` that remembers what the old one was
    told: the charged ``failures`` and the running children's ``starts``, each
    ``(child id, time)``, replayed in time order (a failure before a start at the
    same time). A reload changes the rules of the restart budget, never its history:
    a crash loop does not get a fresh allowance by reloading. Whatever the user
    policy raises propagates (the core refuses the reload)."""
    budget: Budget = policy.budget(random)
    events: list[tuple[float, int, str]] = [(t, 0, cid) for cid, t in failures]
    events.extend((t, 1, cid) for cid, t in starts)
    for at, kind, cid in sorted(events, key=lambda e: (e[0], e[1])):
        if kind == 0:
            budget.on_failure(cid, at)
        else:
            budget.on_started(cid, at)
    return budget

