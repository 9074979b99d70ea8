"""Run a tree in the foreground with a live view and a control socket.

One asyncio loop runs everything: the tree (``otp.supervise``), the view's refresh,
and the control server. The command ends when

* SIGINT (Ctrl-C) or SIGTERM arrives, ``--duration`` runs out, or ``otp-py ctl stop``
  asks: the tree is stopped in order (children right to left) and the exit status is
  0; a second Ctrl-C while it stops ends the command at once (process children die
  with it: they have a parent-death signal, commands are killed by the guardian). A
  SIGHUP from a terminal that hung up (its standard streams poll as hung up) also
  stops it in order: nobody is left to watch;
* the tree ends by itself: exit status 0 if it shut down normally (``auto_shutdown``),
  1 with one line on stderr if it gave up (``IntensityExceededError``) or failed.

SIGHUP otherwise reloads the tree: the tree file is read again and applied
(:mod:`otp_py.cli.reloading`), as ``otp-py ctl reload`` does; the tree runs on either
way. SIGQUIT does not end it either: it prints the state of the tree and the stacks of the
process to stderr (:mod:`otp_py.cli.dump`), as a JVM does, and the tree runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import Any, Final

import attrs

import otp_py as otp
from otp_py.cli.control import ControlServer
from otp_py.cli.dump import state_dump, write_detached
from otp_py.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from otp_py.cli.reloading import ReloadRefusedError, describe, load_again, terminal_hung_up
from otp_py.cli.render import duration
from otp_py.cli.snapshot import Recorder, count_specs, snapshot
from otp_py.cli.view import View

__all__ = ["RunOptions", "run_tree"]

MIN_REFRESH: Final = 0.1
"""Seconds between two snapshots at the least, however many events arrive."""

STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
HANDLED_SIGNALS: Final = (*STOP_SIGNALS, signal.SIGHUP, signal.SIGQUIT)


def _load_prepared(options: RunOptions) -> otp.SupervisorSpec:
    new = load_again(options.source)
    if options.prepare is None:
        return new
    try:
        return options.prepare(new)
    except CliError as exc:
        raise ReloadRefusedError(*exc.lines) from None


@attrs.frozen
class RunOptions:
    """How ``run`` and ``demo`` run a tree."""

    duration: float | None = None
    """Stop the tree after this many seconds (None: until asked)."""
    interval: float = 2.0
    """Seconds between two refreshes of the tree table."""
    control: ControlServer | None = None
    """The control server, bound but not yet serving (None: no control socket)."""
    source: str | None = None
    """What a reload reads again: the tree file (an absolute path), or the
    ``MODULE:ATTR`` the tree came from (which it refuses); None: not reloadable."""
    metrics: tuple[str, int] | None = None
    """Where to serve Prometheus metrics (None: nowhere)."""
    web: tuple[str, int] | None = None
    """Where to serve the web observer (None: nowhere)."""
    web_remote: bool = False
    """Whether ``web`` may be a non-loopback address (a token is then required)."""
    prepare: Callable[[otp.SupervisorSpec], otp.SupervisorSpec] | None = None
    """What the command line did to the tree it loaded (its output capture, say), done
    again to a tree a reload loads, so that a reload compares like with like."""


def run_tree(spec: otp.SupervisorSpec, view: View, options: RunOptions) -> int:
    """Run ``spec`` until it is asked to stop or ends; return the exit status.

    Raises :class:`CliError` when the tree gave up or failed to start."""
    try:
        return asyncio.run(_run(spec, view, options))
    finally:
        view.close()


async def _run(spec: otp.SupervisorSpec, view: View, options: RunOptions) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    wake = asyncio.Event()
    recorder = Recorder()
    recorder.subscribe(view.event)
    if view.wants_events_refresh:
        recorder.subscribe(lambda _at, _report: wake.set())

    def request_stop(why: str) -> None:
        if not stop.is_set():
            stop.set()  # first: a note that cannot be written must not cancel the stop
            view.note(f"{why}: stopping tree {spec.id!r} in order "
                      "(Ctrl-C again to kill it at once)")

    control = options.control

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            if signum == signal.SIGINT:
                view.note("second Ctrl-C: killing the tree now")
                view.close()
                if control is not None:
                    control.close_now()
                # A handle has no public "kill what is left now" (run() keeps its own);
                # ending the process is that: children do not outlive it (their
                # parent-death signal and the guardian see to it).
                os._exit(130)
            return
        request_stop(signum.name)

    dumps: set[asyncio.Task[None]] = set()
    running: list[otp.AsyncSupervisor] = []
    webs: list[Any] = []  # the web observer, once it serves
    declared = [spec]  # the declaration the tree runs now (a reload replaces it)

    async def reload(dry_run: bool) -> list[str]:
        """Read the tree file again and apply it (or only plan it); the answer's
        lines. Raises :class:`ReloadRefusedError`, having changed nothing."""
        if not running or stop.is_set():
            raise ReloadRefusedError("the tree is starting or stopping; reload it once it runs")
        new = await asyncio.to_thread(_load_prepared, options)  # (file I/O, imports)
        try:
            plan = await running[0].update(new, dry_run=dry_run)
        except (otp.OtpError, ValueError, TypeError) as exc:
            raise ReloadRefusedError(*str(exc).splitlines()) from None
        if not dry_run:
            declared[0] = new
            if control is not None:
                control.replace_spec(new)
            for web in webs:
                web.replace_spec(new)
        return describe(plan, options.source, dry_run=dry_run)

    async def reload_on_hangup() -> None:
        try:
            lines = await reload(dry_run=False)
        except ReloadRefusedError as exc:
            lines = ["reload refused, nothing changed:", *(f"  {line}" for line in exc.lines)]
        except Exception as exc:  # a reload that fails must not take the tree down
            lines = [f"reload failed: {type(exc).__name__}: {exc}"]
        for line in lines:
            view.note(f"SIGHUP: {line}")

    def on_hangup() -> None:
        # SIGHUP asks a daemon to read its configuration again (sshd, nginx,
        # supervisord): read the tree file again, apply it, keep running. But a
        # terminal that hangs up sends it too, and then nobody is left to watch.
        if terminal_hung_up():
            request_stop("SIGHUP (the terminal hung up)")
            return
        task = loop.create_task(reload_on_hangup())
        dumps.add(task)  # (a task nobody references may be collected mid-way)
        task.add_done_callback(dumps.discard)

    def on_quit() -> None:
        task = loop.create_task(_dump(running[0] if running else None, declared[0], recorder))
        dumps.add(task)  # (a task nobody references may be collected mid-way)
        task.add_done_callback(dumps.discard)

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    loop.add_signal_handler(signal.SIGQUIT, on_quit)
    supervisors, workers = count_specs(spec)
    view.note(f"starting tree {spec.id!r} ({supervisors} supervisor"
              f"{'s' if supervisors != 1 else ''}, {workers} worker{'s' if workers != 1 else ''})")
    started = time.monotonic()
    server = None
    try:
        metrics, listener = _metrics(options, recorder)
        async with otp.supervise(spec, on_report=listener, subreaper=True,
                                 notify=True) as sup:
            running.append(sup)
            if metrics is not None and options.metrics is not None:
                server = _serve_metrics(metrics, sup, options.metrics)
                host, port = server.address
                view.note(f"metrics at http://{host}:{port}/metrics")
            if control is not None:
                await control.serve(sup, spec, recorder, lambda: request_stop("ctl stop"),
                                    reload=reload)
                view.note(f"control socket {control.path} (otp-py status, otp-py ctl)")
            if options.web is not None:
                webs.append(await _serve_web(sup, spec, recorder, control, options, view))
            watcher = asyncio.create_task(_watch(sup, declared, recorder, view, wake, options))
            try:
                reason = await _until_done(sup, spec.id, stop, options, view)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
    except otp.SupervisorExitError as exc:  # gave up, or failed to start
        raise CliError(str(exc).splitlines()[0], code=EXIT_FAILED) from None
    finally:
        for web in webs:
            await web.close()
        if server is not None:
            server.close()
        if control is not None:
            await control.close()
        for signum in HANDLED_SIGNALS:
            loop.remove_signal_handler(signum)
        # The tree has ended: a reload or a dump asked now has nothing to act on, and
        # their default action (death by the signal) would hide the exit status, and
        # the one line saying why, of a tree that gave up (a SIGHUP storm, measured).
        for signum in (signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_IGN)
        for task in list(dumps):
            task.cancel()
    view.note(f"tree {spec.id!r} ended: {reason} (after {duration(time.monotonic() - started)})")
    return EXIT_OK


def _metrics(options: RunOptions, recorder: Recorder
             ) -> tuple[Any, Callable[[otp.reports.Report], None]]:
    """The metrics collector (when asked for) and the listener that feeds it and the
    recorder alike."""
    if options.metrics is None:
        return None, recorder
    from otp_py.observe import TreeMetrics

    try:
        metrics = TreeMetrics()
    except ImportError as exc:
        raise CliError(str(exc), code=EXIT_USAGE) from None

    def both(report: otp.reports.Report) -> None:
        recorder(report)
        metrics(report)

    return metrics, both


def _serve_metrics(metrics: Any, sup: otp.AsyncSupervisor, where: tuple[str, int]) -> Any:
    from otp_py.observe import serve_metrics

    metrics.watch(sup)
    try:
        return serve_metrics(metrics, *where)
    except OSError as exc:
        raise CliError(f"cannot serve metrics on {where[0]}:{where[1]}: {exc.strerror or exc}",
                       code=EXIT_USAGE) from None


async def _serve_web(sup: otp.AsyncSupervisor, spec: otp.SupervisorSpec, recorder: Recorder,
                     control: ControlServer | None, options: RunOptions, view: View) -> Any:
    """Serve the web observer (:mod:`otp_py.web`) on the tree's loop; print its
    address (with its token, when one is needed)."""
    try:
        from otp_py.web import serve_web
    except ImportError as exc:
        raise CliError(f"--web: {exc}", code=EXIT_USAGE) from None
    assert options.web is not None
    host, port = options.web
    try:
        observer, url = await serve_web(sup, spec, host, port, allow_remote=options.web_remote,
                                        recorder=recorder, control=control)
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CliError(f"cannot serve the web observer on {host}:{port}: {why}",
                       code=EXIT_USAGE) from None
    view.note(f"web observer at {url}")
    if observer.token is not None:
        view.note("the web observer needs the token in that address on every request; "
                  "keep it secret")
    return observer


async def _until_done(sup: otp.AsyncSupervisor, tree_id: str, stop: asyncio.Event,
                      options: RunOptions, view: View) -> otp.reasons.ExitReason:
    ended = asyncio.ensure_future(sup.wait())
    asked = asyncio.ensure_future(stop.wait())
    waits: set[asyncio.Future[Any]] = {ended, asked}
    timer = None
    if options.duration is not None:
        timer = asyncio.ensure_future(asyncio.sleep(options.duration))
        waits.add(timer)
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (asked, timer):
            if future is not None:
                future.cancel()
    if ended in done:
        return ended.result()  # raises IntensityExceededError if the root gave up
    ended.cancel()
    if timer is not None and timer in done:
        view.note(f"--duration {options.duration:g} s is over: stopping tree {tree_id!r} "
                  "in order")
    return await sup.stop()


async def _watch(sup: otp.AsyncSupervisor, declared: list[otp.SupervisorSpec],
                 recorder: Recorder, view: View, wake: asyncio.Event,
                 options: RunOptions) -> None:
    """Refresh the view's snapshot every ``interval`` seconds, and soon after an event
    when the view wants that. ``declared[0]`` is the spec running now."""
    while sup.running:
        root = await snapshot(sup, declared[0], recorder)
        if not sup.running or root["note"] is not None:
            return  # the tree ended meanwhile: its last picture is of no use
        try:
            view.show(root, time.time())
        except Exception as exc:  # a view that cannot draw must not stop the tree
            view.note(f"the view failed ({type(exc).__name__}: {exc}); events only from now")
            return
        wake.clear()
        await asyncio.sleep(MIN_REFRESH)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), max(options.interval - MIN_REFRESH, 0.0))


async def _dump(sup: otp.AsyncSupervisor | None, spec: otp.SupervisorSpec,
                recorder: Recorder) -> None:
    """Print the SIGQUIT dump to stderr without blocking the loop on it."""
    try:
        text = await state_dump(sup if sup is not None and sup.running else None,
                                spec, recorder)
    except Exception as exc:  # a dump that fails must not touch the tree
        text = f"otp-py: SIGQUIT: the dump failed: {type(exc).__name__}: {exc}\n"
    write_detached(text)
