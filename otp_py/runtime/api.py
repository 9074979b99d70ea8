"""Three ways to run a tree, one driver underneath.

* :func:`run` blocks until the tree ends; SIGINT and SIGTERM stop it in order (a
  second SIGINT kills what is left at once). It returns the root's exit reason after
  a requested stop and raises when the root gave up or failed to start.
* :func:`start` runs the tree on a loop in a background thread and returns a
  :class:`Supervisor` whose methods are thread-safe.
* ``async with supervise(spec) as sup:`` runs it on the caller's loop and yields an
  :class:`AsyncSupervisor`.

Both handles offer OTP's API (``which_children``, ``count_children``,
``start_child``, ``terminate_child``, ``restart_child``, ``delete_child``,
``get_childspec``) plus ``stop``, ``wait`` and report listeners, and Elixir's
lookups: ``whereis`` (a child by tree-wide name or by path), ``partition`` and
``start_child_in`` (for a supervisor built by :func:`otp_py.partitioned`). A child is named by
its path from the handle's supervisor: ``"db"``, or ``"pool/worker#3"`` for a child of
the nested supervisor ``pool``; ``sup.at("pool")`` is a handle on ``pool`` itself.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from otp_py._core import events as ev
from otp_py._core.arguments import check_tree_arguments
from otp_py._core.names import MAX_NAME_LENGTH, declared_names, name_problem
from otp_py._core.partition import partition_of
from otp_py._core.reasons import ExitReason
from otp_py._core.reload import Reload, ReloadPlan, plan
from otp_py._core.reports import ExitRecord
from otp_py._core.supervisor import ChildCounts, ChildInfo
from otp_py._errors import (
    ChildNotFoundError,
    IntensityExceededError,
    NotSupportedError,
    SpecError,
    SupervisorExitError,
    SupervisorNotRunningError,
    show_value,
)
from otp_py.backends.zygote import IMPORTING_MAIN
from otp_py.runtime import default_logging, reaper
from otp_py.runtime import loop as loops
from otp_py.runtime.guardian import Guardian
from otp_py.runtime.systemd import Notifier
from otp_py.runtime.tree import Listener, Tree
from otp_py.spec import ChildSpec, SupervisorSpec, check_nested

__all__ = ["AsyncSupervisor", "Supervisor", "run", "start", "supervise"]

_T = TypeVar("_T")


def _parts(path: Any, what: str) -> list[str]:
    if not isinstance(path, str):
        raise TypeError(f"{what} must be a string such as 'pool/worker'; got {path!r}")
    return [p for p in path.split("/") if p]


def _split(base: tuple[str, ...], path: Any) -> tuple[tuple[str, ...], str]:
    """``"pool/w1"`` under ``base`` -> (supervisor path, child id)."""
    parts = _parts(path, "a child path")
    if not parts:
        raise ValueError(f"a child path is needed; got {path!r}")
    return (*base, *parts[:-1]), parts[-1]


def _check_name(name: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(f"a child's name must be a string; got {name!r}")
    problem = name_problem(name)  # the rule of ids: a name is shown as they are
    if problem is not None:
        raise SpecError(None, "name", f"start_child(name=): a name is printable text of 1 "
                        f"to {MAX_NAME_LENGTH} characters, without '/' or surrounding "
                        f"spaces; {show_value(name)} holds {problem}", value=name)


def _sup_path(base: tuple[str, ...], path: Any) -> tuple[str, ...]:
    return (*base, *_parts(path, "a supervisor path"))


def outcome(tree: Tree) -> ExitReason:
    """The root's exit reason, or the exception saying why the tree failed."""
    reason = tree.done.result()
    root = tree.root.path
    if not tree.root.initialized:
        raise SupervisorExitError(root, reason, f"supervisor {root[0]!r} failed to start: {reason}")
    if tree.gave_up is not None and not tree.stop_requested:
        report = tree.gave_up
        lines = [f"supervisor {root[0]!r} gave up: {report.why}"]
        if report.history:
            lines.append("recent exits (oldest first):")
            for child, record in report.history:
                ago = report.time - record.time
                up = "" if record.uptime is None else f", after {record.uptime:.3g} s up"
                lines.append(f"  {child}: {record.reason} ({ago:.3g} s before giving up{up})")
        raise IntensityExceededError(root, reason, report.history, "\n".join(lines))
    if reason.is_abnormal and not tree.stop_requested:
        raise SupervisorExitError(root, reason)
    return reason


class AsyncSupervisor:
    """A handle on a running supervisor, for asyncio code on the tree's loop."""

    def __init__(self, tree: Tree, path: tuple[str, ...]) -> None:
        self._tree = tree
        self.path = path

    def at(self, path: str) -> AsyncSupervisor:
        """A handle on the nested supervisor at ``path`` (relative to this one)."""
        return AsyncSupervisor(self._tree, _sup_path(self.path, path))

    async def which_children(self, supervisor: str = "") -> list[ChildInfo]:
        """The children of this supervisor (or of the nested one at ``supervisor``),
        in start order."""
        path = _sup_path(self.path, supervisor)
        result: list[ChildInfo] = await self._tree.call(path, ev.WhichChildren())
        return self._tree.with_details(path, result)

    async def count_children(self, supervisor: str = "") -> ChildCounts:
        """OTP's counts (specs, active, supervisors, workers) of this supervisor, or of
        the nested one at ``supervisor``."""
        result: ChildCounts = await self._tree.call(
            _sup_path(self.path, supervisor), ev.CountChildren()
        )
        return result

    async def start_child(
        self,
        spec: Any = None,
        *,
        args: tuple[Any, ...] = (),
        supervisor: str = "",
        name: str | None = None,
    ) -> str | None:
        """Add and start a child; return its id, or None if its start declined
        (it raised :class:`~otp_py.Ignore`: OTP's ``{ok, undefined}``).

        For a static supervisor pass a :class:`~otp_py.ChildSpec` (or
        :class:`~otp_py.SupervisorSpec`); for a simple_one_for_one supervisor pass the
        extra ``args`` appended to the template's (its id is generated,
        ``"template#N"``) and, if it is to be found by :meth:`whereis`, its tree-wide
        ``name`` (a static child carries its own: ``ChildSpec(name=...)``). Raises
        :class:`~otp_py.AlreadyStartedError`, :class:`~otp_py.AlreadyPresentError`,
        :class:`~otp_py.NameTakenError` (a name already in the tree),
        :class:`~otp_py.MaxChildrenError` (a simple_one_for_one supervisor at its
        ``max_children``) or :class:`~otp_py.StartChildError`."""
        if not isinstance(args, tuple | list):
            raise TypeError(f"start_child's args must be a tuple or list; got {args!r}")
        if spec is not None:
            if not isinstance(spec, ChildSpec | SupervisorSpec):
                raise TypeError(f"start_child needs a ChildSpec or SupervisorSpec (or, for a "
                                f"simple_one_for_one supervisor, none); got {spec!r}")
            check_nested(spec)
            if name is not None:
                raise TypeError(f"start_child(name=) names a simple_one_for_one child; a "
                                f"spec carries its own: ChildSpec(id={spec.id!r}, "
                                f"name={name!r})")
            names = {n: p for n, p in declared_names(spec).items()}
        elif name is not None:
            _check_name(name)
            names = {name: ()}
        else:
            names = {}
        sup_path = _sup_path(self.path, supervisor)
        request = ev.StartChildRequest(spec=spec, extra_args=tuple(args), name=name)
        registry = self._tree.names
        if not names:
            result: str | None = await self._tree.call(sup_path, request)
            return result
        await registry.claim(names, self._holds)
        try:
            result = await self._tree.call(sup_path, request)
        except BaseException:
            registry.release(names)
            raise
        if result is None and spec is None:  # a dynamic child that ignored: not kept
            registry.release(names)
        elif spec is not None:  # the paths under the new child: from its own id down
            registry.register({n: (*sup_path, *p) for n, p in names.items()})
        else:
            registry.register({n: (*sup_path, result) for n in names})
        return result

    async def whereis(self, name_or_path: str) -> ChildInfo | None:
        """The child registered under ``name_or_path`` anywhere in the tree, or else
        the child at that path from this supervisor (``"db"``, ``"pool/w#2"``): its
        :meth:`which_children` row (state, pid...), or None if there is none.

        Names come first: a string that is a name in the tree is never read as a
        path. A named child keeps its name across restarts; a child that has left
        (ended temporary, deleted, gone with a restarted supervisor) is not found,
        and its name is free again (except a name the tree's spec declares, which
        stays its child's)."""
        if not isinstance(name_or_path, str):
            raise TypeError(f"whereis needs a name or a child path (a string); got "
                            f"{name_or_path!r}")
        registry = self._tree.names
        path = registry.lookup(name_or_path)
        if path is not None:
            info = await self._info_at(path)
            if info is not None and getattr(info.spec, "name", None) == name_or_path:
                return info
            registry.forget(name_or_path, path)
            return None
        sup, child = _split(self.path, name_or_path)
        return await self._info_at((*sup, child))

    async def _info_at(self, path: tuple[str, ...]) -> ChildInfo | None:
        try:
            info = await self._tree.call(path[:-1], ev.GetChildInfo(path[-1]))
        except (ChildNotFoundError, SupervisorNotRunningError):
            return None
        [row] = self._tree.with_details(path[:-1], [info])
        assert isinstance(row, ChildInfo)
        return row

    async def _holds(self, name: str, path: tuple[str, ...]) -> bool:
        info = await self._info_at(path)
        return info is not None and getattr(info.spec, "name", None) == name

    def partition(self, key: Any) -> str:
        """The id of the partition ``key`` belongs to, on a supervisor built by
        :func:`otp_py.partitioned`: ``"0"`` to ``"N-1"``, by a hash that is the same in
        every process and run (an int ``k``: ``abs(k) % N``; a str or bytes: its
        CRC-32). Raises NotSupportedError if this supervisor is not partitioned,
        TypeError for a key that is not an int, str or bytes."""
        node = self._tree.nodes.get(self.path)
        if node is None:
            raise SupervisorNotRunningError(f"no running supervisor at {'/'.join(self.path)!r}"
                                            " in this process")
        ids = [child.id for child in node.spec.children]
        if not ids or ids != [str(index) for index in range(len(ids))]:
            raise NotSupportedError(f"supervisor {'/'.join(self.path)!r} is not partitioned "
                                    "(otp_py.partitioned builds one)")
        return str(partition_of(key, len(ids)))

    async def start_child_in(
        self,
        key: Any,
        spec: Any = None,
        *,
        args: tuple[Any, ...] = (),
        name: str | None = None,
    ) -> str:
        """:meth:`start_child` in the partition of ``key`` (see :meth:`partition`),
        whose partitions are supervisors; return the new child's path from this
        supervisor, ``"<partition>/<id>"``."""
        part = self.partition(key)
        child_id = await self.start_child(spec, args=args, supervisor=part, name=name)
        return f"{part}/{child_id}"

    async def terminate_child(self, path: str) -> None:
        """Stop a child; its spec is kept (unless temporary or dynamic)."""
        sup, child = _split(self.path, path)
        await self._tree.call(sup, ev.TerminateChild(child))

    async def restart_child(self, path: str) -> str | None:
        """Start a stopped child again; return its id, or None if its start declined
        (:class:`~otp_py.Ignore`). Raises :class:`~otp_py.ChildRunningError`,
        :class:`~otp_py.ChildRestartingError`, :class:`~otp_py.ChildNotFoundError`."""
        sup, child = _split(self.path, path)
        result: str | None = await self._tree.call(sup, ev.RestartChild(child))
        return result

    async def delete_child(self, path: str) -> None:
        """Forget a stopped child's spec."""
        sup, child = _split(self.path, path)
        await self._tree.call(sup, ev.DeleteChild(child))

    async def get_childspec(self, path: str) -> Any:
        """The spec of the child at ``path``. Raises :class:`~otp_py.ChildNotFoundError`."""
        sup, child = _split(self.path, path)
        return await self._tree.call(sup, ev.GetChildSpec(child))

    async def child_history(self, path: str) -> tuple[ExitRecord, ...]:
        """The crash history of the child at ``path``: its last exits (reason with
        traceback, exit code or signal, stderr tail, uptime, restart delay), oldest
        first. Raises :class:`~otp_py.ChildNotFoundError`."""
        sup, child = _split(self.path, path)
        result: tuple[ExitRecord, ...] = await self._tree.call(sup, ev.GetChildHistory(child))
        return result

    async def update(self, spec: SupervisorSpec, *, dry_run: bool = False) -> ReloadPlan:
        """Apply a changed declaration of the tree to it while it runs; return the plan.

        This is supervisorctl's ``reread`` + ``update`` (see :ref:`cli-reload`
        for the rules): children only in ``spec`` are started at their place, children
        only in the running spec are stopped and deleted, changed children are
        restarted with their new spec, unchanged ones are not touched (same pid), and
        changed supervisor flags (strategy, intensity...) apply without restarting
        anything; the restart budget keeps its history. A child that fails to start
        stays stopped (``restart_child`` tries again); the reload goes on.

        ``spec`` is validated whole, and the plan made, before anything is done:
        :class:`TypeError` if it is not a SupervisorSpec, :class:`~otp_py.SpecError`
        if it cannot be the tree's root or cannot replace it in place (another root
        id, a change between simple_one_for_one and a static strategy at the root),
        :class:`~otp_py.NameTakenError` if it declares a name a child added by
        ``start_child`` holds. With ``dry_run``, only that: the plan is returned and
        nothing changes. Only the root's handle can update (a nested supervisor is
        reloaded as a part of the tree); reloads are applied one at a time."""
        tree = self._tree
        if self.path != tree.root.path:
            raise NotSupportedError(f"update() reloads the whole tree: call it on the root's "
                                    f"handle with the tree's new spec (this handle is on "
                                    f"{'/'.join(self.path)!r})")
        if not isinstance(spec, SupervisorSpec):
            raise TypeError(f"update() needs the tree's new SupervisorSpec; got {spec!r}")
        check_tree_arguments("update", spec)
        if spec.id != tree.root.path[-1]:
            raise SpecError(spec.id, "id", f"a reload keeps the root's id: the running tree's "
                            f"root is {tree.root.path[-1]!r}; got {spec.id!r}")
        place = tree.root.path[:-1]
        names = declared_names(spec, place)
        async with tree.reload_lock:
            if not self.running:
                raise SupervisorNotRunningError("the tree has ended")
            result = plan(tree.root.spec, spec, tree.root.path)
            if dry_run or result.is_empty:
                return result
            await tree.names.check_declared(names, self._holds)
            await self._reload(tree.root.path, spec, lambda: tree.names.declare(names))
            tree.refresh_watchdog()
        return result

    async def _reload(self, path: tuple[str, ...], spec: Any,
                      applied: Callable[[], None] = lambda: None) -> None:
        """Reload the supervisor at ``path``, then the nested ones it kept;
        ``applied()`` once its own level is done (not if it was refused)."""
        nested, _failed = await self._tree.call(path, Reload(spec))
        applied()
        by_id = {child.id: child for child in spec.children}
        for child_id in nested:
            # One gone meanwhile (its parent is restarting it) starts from its new
            # spec, which the parent already holds.
            with contextlib.suppress(SupervisorNotRunningError):
                await self._reload((*path, child_id), by_id[child_id])

    def restart_budgets(self) -> dict[str, float | None]:
        """How much of its restart budget each supervisor at or under this one has
        used, now, by path (``"root/pool"``): the restarts that still count in its
        window over the restarts allowed, so 1.0 means its next restart gives up (and
        it falls back as the window passes); None for a policy that never gives up.
        Supervisors inside a subtree that runs in its own process are not included.
        Call it on the tree's loop (it reads and returns at once)."""
        return {"/".join(path): ratio
                for path, ratio in self._tree.budgets_used(self.path).items()}

    async def stop(self) -> ExitReason:
        """Stop the whole tree in order and wait for it; return the root's reason."""
        if not self._tree.done.done():
            self._tree.request_stop()
        return await asyncio.shield(self._tree.done)

    def kill(self) -> None:
        """Stop the tree now: kill every child at once (as a second Ctrl-C does) and
        let the tree end; :meth:`wait` then returns."""
        if not self._tree.done.done():
            self._tree.force_kill()

    async def wait(self) -> ExitReason:
        """Wait until the tree ends. Returns the root's reason after a requested
        stop; raises :class:`~otp_py.IntensityExceededError` if it gave up."""
        await asyncio.shield(self._tree.done)
        return outcome(self._tree)

    @property
    def running(self) -> bool:
        """Whether the tree still runs."""
        return not self._tree.done.done()

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(report)`` for every report of the tree, on the tree's loop
        thread. Returns a function that removes it."""
        if not callable(listener):
            raise TypeError(f"add_listener(): a listener is a function taking one report; "
                            f"got {listener!r}")
        self._tree.listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._tree.listeners.remove(listener)

        return remove


class Supervisor:
    """A thread-safe handle on a tree running in a background thread (see :func:`start`).

    Every method may be called from any thread except the tree's own (from a report
    listener, use the tree's loop instead). Usable as a context manager that stops the
    tree on exit."""

    def __init__(
        self,
        tree: Tree,
        path: tuple[str, ...],
        thread: threading.Thread | None = None,
    ) -> None:
        self._tree = tree
        self._async = AsyncSupervisor(tree, path)
        self._thread = thread
        self.path = path

    def _call(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        loop = self._tree.loop
        if self._thread is not None and threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a Supervisor handle cannot be used from the tree's own thread")
        if loop.is_closed():
            coro.close()
            raise SupervisorNotRunningError("the tree has ended")
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:
            coro.close()
            raise SupervisorNotRunningError("the tree has ended") from None
        return future.result(timeout)

    def at(self, path: str) -> Supervisor:
        """A handle on the nested supervisor at ``path``."""
        return Supervisor(self._tree, _sup_path(self.path, path), self._thread)

    def which_children(self, supervisor: str = "") -> list[ChildInfo]:
        """See :meth:`AsyncSupervisor.which_children`."""
        return self._call(self._async.which_children(supervisor))

    def count_children(self, supervisor: str = "") -> ChildCounts:
        """See :meth:`AsyncSupervisor.count_children`."""
        return self._call(self._async.count_children(supervisor))

    def start_child(
        self,
        spec: Any = None,
        *,
        args: tuple[Any, ...] = (),
        supervisor: str = "",
        name: str | None = None,
    ) -> str | None:
        """See :meth:`AsyncSupervisor.start_child`."""
        return self._call(
            self._async.start_child(spec, args=args, supervisor=supervisor, name=name)
        )

    def whereis(self, name_or_path: str) -> ChildInfo | None:
        """See :meth:`AsyncSupervisor.whereis`."""
        return self._call(self._async.whereis(name_or_path))

    def partition(self, key: Any) -> str:
        """See :meth:`AsyncSupervisor.partition`."""

        async def route() -> str:
            return self._async.partition(key)

        return self._call(route())

    def start_child_in(
        self, key: Any, spec: Any = None, *, args: tuple[Any, ...] = (), name: str | None = None
    ) -> str:
        """See :meth:`AsyncSupervisor.start_child_in`."""
        return self._call(self._async.start_child_in(key, spec, args=args, name=name))

    def terminate_child(self, path: str) -> None:
        """See :meth:`AsyncSupervisor.terminate_child`."""
        self._call(self._async.terminate_child(path))

    def restart_child(self, path: str) -> str | None:
        """See :meth:`AsyncSupervisor.restart_child`."""
        return self._call(self._async.restart_child(path))

    def delete_child(self, path: str) -> None:
        """See :meth:`AsyncSupervisor.delete_child`."""
        self._call(self._async.delete_child(path))

    def get_childspec(self, path: str) -> Any:
        """See :meth:`AsyncSupervisor.get_childspec`."""
        return self._call(self._async.get_childspec(path))

    def child_history(self, path: str) -> tuple[ExitRecord, ...]:
        """See :meth:`AsyncSupervisor.child_history`."""
        return self._call(self._async.child_history(path))

    def update(self, spec: SupervisorSpec, *, dry_run: bool = False) -> ReloadPlan:
        """See :meth:`AsyncSupervisor.update`."""
        return self._call(self._async.update(spec, dry_run=dry_run))

    def restart_budgets(self, timeout: float | None = None) -> dict[str, float | None]:
        """See :meth:`AsyncSupervisor.restart_budgets`. Raises :class:`TimeoutError`
        if the tree's loop does not answer within ``timeout`` seconds (it is blocked)."""
        return self._call(_in_loop(self._async.restart_budgets), timeout)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(report)`` for every report, on the tree's thread."""
        return self._call(_in_loop(self._async.add_listener, listener))

    @property
    def running(self) -> bool:
        """Whether the tree still runs."""
        return not self._tree.done.done()

    def _check_waiting(self, what: str, timeout: Any) -> None:
        """Refuse, before anything is done, a wait that cannot be made."""
        if timeout is not None and (isinstance(timeout, bool)
                                    or not isinstance(timeout, int | float)
                                    or not timeout >= 0):
            raise TypeError(f"{what}(): timeout must be a number of seconds >= 0 or None; "
                            f"got {timeout!r}")
        if self._thread is not None and threading.current_thread() is self._thread:
            raise RuntimeError(f"{what}() cannot wait for the tree from the tree's own thread "
                               "(a listener or a task child): use the AsyncSupervisor's "
                               f"{what}(), or call it from another thread")

    def stop(self, timeout: float | None = None) -> ExitReason | None:
        """Stop the tree in order, wait for its thread to end, return the root's
        reason (None if it did not end within ``timeout``)."""
        self._check_waiting("stop", timeout)
        loop = self._tree.loop
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_request_stop, self._tree)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return None
        _started.discard(self)
        return self._tree.done.result() if self._tree.done.done() else None

    def kill(self, timeout: float | None = None) -> ExitReason | None:
        """Kill every child at once and end the tree (a second Ctrl-C); wait for its
        thread; return the root's reason (None if it did not end within ``timeout``)."""
        self._check_waiting("kill", timeout)
        loop = self._tree.loop
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._async.kill)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return None
        return self._tree.done.result() if self._tree.done.done() else None

    def wait(self, timeout: float | None = None) -> ExitReason:
        """Block until the tree ends; raise like :func:`run` if it gave up."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"the tree still runs after {timeout} s")
        return outcome(self._tree)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def _in_loop(function: Callable[..., _T], *args: Any) -> _T:
    return function(*args)


def _refuse_in_main_import(what: str) -> None:
    """Refuse to start a tree while the fork server imports the supervisor's script to
    find a process child's target: the script has no ``__main__`` guard, and starting
    its tree again there would recurse (the fork server reports the cause and fix)."""
    script = os.environ.get(IMPORTING_MAIN)
    if script:
        raise RuntimeError(f"{what}() called while {script} is imported to find the "
                           "target of a process child: the script has no "
                           'if __name__ == "__main__": guard')


def _request_stop(tree: Tree) -> None:
    if not tree.done.done():
        tree.request_stop()


async def _launch(
    spec: Any, random: Callable[[], float] | None, on_report: Listener | None,
    notifier: Notifier | None = None,
) -> Tree:
    loop = asyncio.get_running_loop()
    tree = Tree(spec, loop, random=random, guardian=Guardian.shared())
    if on_report is not None:
        tree.listeners.append(on_report)
    if notifier is not None:
        notifier.attach(tree)
    tree.start()
    await asyncio.shield(tree.initialized)
    return tree


@contextlib.asynccontextmanager
async def supervise(
    spec: Any,
    *,
    random: Callable[[], float] | None = None,
    on_report: Listener | None = None,
    subreaper: bool = False,
    notify: bool = False,
) -> AsyncIterator[AsyncSupervisor]:
    """Run ``spec`` on the running loop for the duration of the ``async with`` block.

    The tree is started (all children up) before the block runs, and stopped in order
    when it ends. Raises :class:`~otp_py.SupervisorExitError` if the tree fails to
    start, and on leaving the block if it gave up meanwhile. ``on_report`` sees every
    report, from the first start on. ``subreaper=True`` makes the process a child
    subreaper for the block, as :func:`run` does (``otp-py run`` uses it); not the
    default, for the reason :func:`start` gives. ``notify=True`` tells the service
    manager named by ``$NOTIFY_SOCKET`` (systemd's ``Type=notify``) about the tree,
    as :func:`run` does (see :mod:`otp_py.runtime.systemd`); not the default: a
    library's tree is not the service."""
    check_tree_arguments("supervise", spec, random=random, on_report=on_report)
    _refuse_in_main_import("supervise")
    if not isinstance(subreaper, bool):
        raise TypeError(f"supervise(): subreaper must be a bool, got {subreaper!r}")
    if not isinstance(notify, bool):
        raise TypeError(f"supervise(): notify must be a bool, got {notify!r}")
    notifier = Notifier.from_environ() if notify else None
    with reaper.reaping(asyncio.get_running_loop(), subreaper), _closing(notifier):
        tree = await _launch(spec, random, on_report, notifier)
        if tree.done.done():
            outcome(tree)
        handle = AsyncSupervisor(tree, tree.root.path)
        body_failed = False
        try:
            yield handle
        except BaseException:
            body_failed = True
            raise
        finally:
            gave_up_first = tree.done.done()
            if not gave_up_first:
                tree.request_stop()
            await asyncio.shield(tree.done)
            if gave_up_first and not body_failed:
                outcome(tree)


def run(
    spec: Any,
    *,
    handle_signals: bool = True,
    random: Callable[[], float] | None = None,
    on_report: Listener | None = None,
    subreaper: bool = True,
    notify: bool = True,
) -> ExitReason:
    """Run ``spec`` until it ends, blocking the calling thread.

    Under systemd (``Type=notify``: ``$NOTIFY_SOCKET`` is set) the service manager
    is told when the tree is ready, how it is, when it stops, and gets watchdog
    pings from the tree's loop (``notify=False`` to opt out); see
    :doc:`/production`.

    For the run, the process is a child subreaper (``subreaper=False`` to opt out): a
    descendant whose parent dies (a daemon) comes back to it rather than to init, is
    reaped when it dies and SIGKILLed when the tree ends; see
    :mod:`otp_py.runtime.reaper` for which children count as adopted orphans (never
    one in our process group, nor one a live ``Popen`` waits for).

    SIGINT and SIGTERM stop the tree in order (only when called from the main thread
    and ``handle_signals`` is true); a second SIGINT kills what is left at once.
    Returns the root's exit reason when the tree was asked to stop (or shut itself
    down through ``auto_shutdown``); raises :class:`~otp_py.IntensityExceededError`
    when the root gave up and :class:`~otp_py.SupervisorExitError` when it failed to
    start or ended abnormally."""
    check_tree_arguments("run", spec, random=random, on_report=on_report)
    _refuse_in_main_import("run")
    if not isinstance(subreaper, bool):
        raise TypeError(f"run(): subreaper must be a bool, got {subreaper!r}")
    if not isinstance(notify, bool):
        raise TypeError(f"run(): notify must be a bool, got {notify!r}")
    # only if the application configured no logging and listens to no reports itself
    logs = on_report is None and default_logging.install()
    try:
        return loops.run(_run(spec, handle_signals, random, on_report, subreaper, notify))
    finally:
        default_logging.uninstall(logs)


async def _run(
    spec: Any,
    handle_signals: bool,
    random: Callable[[], float] | None,
    on_report: Listener | None,
    subreaper: bool = False,
    notify: bool = False,
) -> ExitReason:
    loop = asyncio.get_running_loop()
    notifier = Notifier.from_environ() if notify else None
    with reaper.reaping(loop, subreaper), _closing(notifier):
        return await _run_tree(loop, spec, handle_signals, random, on_report, notifier)


@contextlib.contextmanager
def _closing(notifier: Notifier | None) -> Any:
    try:
        yield
    finally:
        if notifier is not None:
            notifier.close()


async def _run_tree(
    loop: asyncio.AbstractEventLoop,
    spec: Any,
    handle_signals: bool,
    random: Callable[[], float] | None,
    on_report: Listener | None,
    notifier: Notifier | None = None,
) -> ExitReason:
    tree = Tree(spec, loop, random=random, guardian=Guardian.shared())
    if on_report is not None:
        tree.listeners.append(on_report)
    if notifier is not None:
        notifier.attach(tree)
    installed: list[signal.Signals] = []
    if handle_signals and threading.current_thread() is threading.main_thread():

        def on_signal(signum: signal.Signals) -> None:
            if tree.stop_requested and signum == signal.SIGINT:
                tree.force_kill()
            elif not tree.done.done():
                tree.request_stop()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
    try:
        tree.start()
        await asyncio.shield(tree.done)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return outcome(tree)


def start(
    spec: Any,
    *,
    random: Callable[[], float] | None = None,
    on_report: Listener | None = None,
    name: str = "otp_py-tree",
    subreaper: bool = False,
) -> Supervisor:
    """Run ``spec`` on an event loop in a background thread; return once every child
    is up. Raises :class:`~otp_py.SupervisorExitError` if the tree fails to start.

    ``subreaper=True`` makes the process a child subreaper, as :func:`run` does (not
    the default: a library does not own its host's process, whose own subprocesses'
    orphans would come back to it too); adopted orphans are reaped on ``SIGCHLD``
    when called from the main thread (which installs a ``SIGCHLD`` handler), and
    killed when the tree ends and at exit.

    ``on_report`` is registered before the first child starts, so it sees every
    report. The thread ends when the tree does (``stop()``, or the root gives up)."""
    check_tree_arguments("start", spec, random=random, on_report=on_report)
    _refuse_in_main_import("start")
    if not isinstance(subreaper, bool):
        raise TypeError(f"start(): subreaper must be a bool, got {subreaper!r}")
    box: dict[str, Any] = {}
    ready = threading.Event()
    # only if the application configured no logging and listens to no reports itself
    logs = on_report is None and default_logging.install()
    was_subreaper = reaper.is_subreaper()
    reaps = subreaper and reaper.become()

    def main() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(_serve(loop, spec, random, on_report, box, ready))
        except BaseException as exc:  # never leave the caller waiting
            box.setdefault("error", exc)
        finally:
            ready.set()
            loops.close(loop)
            default_logging.uninstall(logs)
            if reaps:
                reaper.end(was_subreaper)

    thread = threading.Thread(target=main, name=name, daemon=True)
    thread.start()
    ready.wait()
    if "tree" not in box:
        raise box.get("error") or RuntimeError("the tree's thread ended before it started")
    tree: Tree = box["tree"]
    if tree.done.done() and not tree.root.initialized:
        thread.join()
        outcome(tree)
    handle = Supervisor(tree, tree.root.path, thread)
    _started.add(handle)
    _stop_at_exit()
    return handle


_started: set[Supervisor] = set()
"""Handles of trees start() left running (held strongly: a caller may drop its
handle, and the tree must still be stopped at exit). A stopped tree leaves it."""


def _stop_at_exit() -> None:
    """Register (again) the exit hook that stops started trees. atexit runs hooks
    last-registered first; registering at every start() puts ours ahead of
    multiprocessing's, which would otherwise join the tree's fork and spawn
    children for ever before the tree could stop them."""
    atexit.unregister(_stop_started_trees)
    atexit.register(_stop_started_trees)


def _stop_started_trees() -> None:
    """At interpreter exit, stop in order the trees :func:`start` left running (their
    threads are daemons and would otherwise die mid-flight; the guardian would still
    kill their processes, but nobody would get a graceful stop)."""
    for handle in list(_started):
        if handle.running:
            with contextlib.suppress(Exception):
                handle.stop()
    _started.clear()


async def _serve(
    loop: asyncio.AbstractEventLoop,
    spec: Any,
    random: Callable[[], float] | None,
    on_report: Listener | None,
    box: dict[str, Any],
    ready: threading.Event,
) -> None:
    tree = Tree(spec, loop, random=random, guardian=Guardian.shared())
    if on_report is not None:
        tree.listeners.append(on_report)
    box["tree"] = tree
    tree.start()
    await asyncio.shield(tree.initialized)
    ready.set()
    await asyncio.shield(tree.done)
