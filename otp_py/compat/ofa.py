"""Celery 0.4's ``celery.supervisor``, as a thin shim over the public API.

:class:`OFASupervisor` supervises one process (typically one that runs a
:class:`multiprocessing.pool.Pool`) with the one_for_all strategy. It takes no
decision of its own: it translates its parameters into a
:class:`~otp_py.SupervisorSpec` (see :meth:`OFASupervisor.to_spec`) and runs that
with :func:`otp_py.run`. The translation, Celery's name on the left:

* ``target``, ``args``, ``kwargs``: the child's ``start``, ``args`` and ``kwargs``;
* ``Process`` (a class attribute): the child's ``process_class``;
* ``check_interval``, ``ping_timeout``: its ``heartbeat``,
  ``Heartbeat(interval=check_interval, timeout=ping_timeout)``;
* ``join_timeout``: its ``shutdown`` (the grace a stopped process gets);
* ``max_restart_freq``, ``max_restart_freq_time``: the supervisor's ``intensity``,
  ``SlidingWindow(max_restarts=max_restart_freq, period=max_restart_freq_time)``.

Every value Celery 0.4's implementation accepted is accepted, with the meaning its
code gave it (see :func:`restart_limit`, :func:`heartbeat` and :func:`grace` for the
rule of each edge, and ``docs/coming-from-celery.rst`` for the table): Celery
validated nothing, so a value is "accepted" when its ``start()`` ran with it.

The child is permanent, so it is restarted however it ends; a hung child (no answer
to pings) is stopped, killed after ``join_timeout`` and restarted, and the restart
counts like any other. The one thing translated on the way out is the exception:
the :class:`~otp_py.IntensityExceededError` that :func:`otp_py.run` raises when the
restart budget is exhausted becomes :class:`MaxRestartsExceededError`, its subclass,
carrying the same facts.

This module imports only the public API (``import otp_py``); an import-linter
contract checks it. ``otp_py/__init__.py`` imports it last, once every name it
uses is defined.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar, NoReturn

import otp_py as otp

__all__ = [
    "MaxRestartsExceededError",
    "OFASupervisor",
    "grace",
    "heartbeat",
    "raise_ping_timeout",
    "restart_limit",
]

PING_TIMEOUT = 30
JOIN_TIMEOUT = 2
MAX_RESTART_FREQ = 3
MAX_RESTART_FREQ_TIME = 10
CHECK_INTERVAL = 2

SUPERVISOR_ID = "OFASupervisor"
"""The id of the supervisor in reports and log lines."""
CHILD_ID = "process"
"""The id of the supervised process in reports and log lines."""

YEAR = 365 * 24 * 3600.0
"""The longest finite period or timeout the general spec takes; a longer one is
read as that long (or as "never", where Celery's comparison could never be true)."""
MIN_CHECK_INTERVAL = 0.05
"""The ping interval used for ``check_interval=0``: Celery then polled without
pausing; the general heartbeat needs a positive interval, and a 50 ms one is as
good as continuous for a pool without spinning a core."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class NoRestartLimit(otp.IntensityPolicy):
    """Restart at once, every time, and never give up: what Celery 0.4 did with the
    values for which its frequency check could never be true (see
    :func:`restart_limit`). A subclass of the public
    :class:`~otp_py.IntensityPolicy`; equal to every other instance."""

    def budget(self, random: Callable[[], float]) -> otp.Budget:
        return _NoLimitBudget()

    def describe(self) -> str:
        return "no restart limit"

    def __eq__(self, other: object) -> bool:
        return type(other) is NoRestartLimit

    def __hash__(self) -> int:
        return hash(NoRestartLimit)

    def __repr__(self) -> str:
        return "NoRestartLimit()"


class _NoLimitBudget(otp.Budget):
    def on_failure(self, child_id: str, now: float) -> otp.Verdict:
        return otp.Verdict.now()


def restart_limit(
    max_restart_freq: Any, max_restart_freq_time: Any, check_interval: Any
) -> otp.IntensityPolicy:
    """The intensity policy that gives Celery 0.4's restart-frequency values their
    meaning.

    Celery 0.4 checked, every ``check_interval`` seconds (its frame clock was the sum
    of its sleeps), ``if restart_frame > max_restart_freq_time:`` and then ``if
    restarts_in_frame >= max_restart_freq: raise MaxRestartsExceededError``; it
    validated neither value, and Python 2 ordered ``None`` below every number. So:

    * ``max_restart_freq_time`` greater than 0: the window, in seconds (capped at
      :data:`YEAR`).
    * ``max_restart_freq_time`` 0, negative or ``None``: ``restart_frame > time``
      held at every check, so restarts were counted per check: the window is one
      ``check_interval``.
    * ``max_restart_freq`` 0, negative or ``None``: ``restarts >= freq`` held with no
      restart at all: no restart is allowed; the first exit (or hang) ends the
      supervisor with :class:`MaxRestartsExceededError`. This is the case Celery's
      own tests pin (``max_restart_freq=0, max_restart_freq_time=0`` with a process
      that is dead, or whose ping times out, raises).
    * ``max_restart_freq`` a positive non-integer: ``restarts >= 2.5`` first holds at
      3 restarts, so it means ``ceil(max_restart_freq)``.
    * No limit at all (:class:`NoRestartLimit`) where Celery's check could never be
      true: ``max_restart_freq`` or ``max_restart_freq_time`` infinite or NaN (every
      comparison with NaN is false); ``check_interval`` 0 with a window of 0 or more
      (its frame clock never advanced past 0); and a zero-length window
      (``check_interval`` 0 and a negative time) for a positive
      ``max_restart_freq``: no two restarts ever share it.

    Three things of Celery 0.4's loop are not mirrored, on purpose, because they
    contradict its documentation: it reset its restart count at every check (an
    indented block too few), so with the defaults it never raised; with a
    ``max_restart_freq`` of 0 or less it raised at its first frame check even when
    the process had never failed; and its ``_restart`` kept watching the dead
    process, starting another at every check. Here a healthy process is never given
    up on, and one process runs at a time.

    Values that are not numbers (nor ``None``) are handed on unchanged, so
    :class:`~otp_py.SlidingWindow` refuses them with a
    :class:`~otp_py.SpecTypeError` naming its field.
    """
    freq: Any = -math.inf if max_restart_freq is None else max_restart_freq
    period: Any = -math.inf if max_restart_freq_time is None else max_restart_freq_time
    if not (_is_number(freq) and _is_number(period) and _is_number(check_interval)):
        return otp.SlidingWindow(max_restarts=freq, period=period)
    if check_interval < 0 or math.isnan(check_interval):
        otp.Heartbeat(interval=check_interval)  # Celery's time.sleep() refused it too
    never = (
        math.isnan(freq)
        or math.isnan(period)
        or math.inf in (freq, period)
        or (check_interval == 0 and period >= 0)
    )
    if never:
        return NoRestartLimit()
    window = float(period) if period > 0 else float(check_interval)
    if freq <= 0:
        return otp.SlidingWindow(max_restarts=0, period=min(window, YEAR) if window > 0 else 1.0)
    if window == 0:
        return NoRestartLimit()
    return otp.SlidingWindow(max_restarts=math.ceil(freq), period=min(window, YEAR))


def heartbeat(check_interval: Any, ping_timeout: Any) -> otp.Heartbeat | None:
    """The pings that give Celery 0.4's ``check_interval`` and ``ping_timeout`` their
    meaning, or ``None`` for no pings.

    * ``ping_timeout`` ``None``, 0 or less, NaN, infinite or over :data:`YEAR`: no
      hang detection. Celery 0.4 built its ``threading.Timer(ping_timeout, ...)``
      but never started it, so no ping ever timed out; a timeout that is already
      over (or never comes) cannot mean more than that here.
    * ``check_interval`` 0: Celery polled without pausing; the pings go every
      :data:`MIN_CHECK_INTERVAL` seconds. Under 1 ms: every 1 ms, the shortest
      interval of a :class:`~otp_py.Heartbeat`. Over :data:`YEAR`: a year.
    * ``ping_timeout`` under ``check_interval``: the interval (a silence is noticed
      at the next ping either way).
    * ``check_interval`` negative or NaN: refused with
      :class:`~otp_py.SpecError`, as Celery's ``time.sleep()`` refused it when its
      ``start()`` ran.
    """
    if _is_number(check_interval) and check_interval == 0:
        interval: Any = MIN_CHECK_INTERVAL
    elif _is_number(check_interval) and 0 < check_interval < otp.Heartbeat.MIN_INTERVAL:
        interval = otp.Heartbeat.MIN_INTERVAL  # as often as pings may go
    elif _is_number(check_interval) and check_interval > YEAR:
        interval = YEAR
    else:
        interval = check_interval
    # (refuses a bad interval, with pings or not)
    checked = otp.Heartbeat(interval=interval, timeout=interval)
    timeout = ping_timeout
    if timeout is None or (
        _is_number(timeout) and (math.isnan(timeout) or not 0 < timeout <= YEAR)
    ):
        return None
    if _is_number(timeout) and timeout < checked.interval:
        # A silence is noticed at the next ping: a shorter timeout means the interval,
        # and a Heartbeat says it so.
        timeout = checked.interval
    return otp.Heartbeat(interval=checked.interval, timeout=timeout)


def grace(join_timeout: Any) -> Any:
    """The child's ``shutdown`` for Celery 0.4's ``join_timeout``.

    Celery gave a stopping process ``process.join(timeout=join_timeout)``: ``None``
    waits for ever (:data:`~otp_py.INFINITY`), a negative timeout does not wait at
    all (0), and one over :data:`YEAR` is as good as for ever.
    """
    if join_timeout is None:
        return otp.INFINITY
    if _is_number(join_timeout) and not math.isnan(join_timeout):
        if join_timeout < 0:
            return 0
        if join_timeout > YEAR:
            return otp.INFINITY
    return join_timeout


class MaxRestartsExceededError(otp.IntensityExceededError):
    """Restarts exceeded the maximum restart frequency.

    Raised by :meth:`OFASupervisor.start` when the process had to be restarted more
    than ``max_restart_freq`` times within ``max_restart_freq_time`` seconds; the
    process has been terminated by then. A subclass of
    :class:`~otp_py.IntensityExceededError` (and so of ``RuntimeError``), so one
    ``except`` catches it and the general error alike; ``path``, ``reason`` and
    ``history`` (the exits that used up the budget) are the general error's.
    """


def raise_ping_timeout(msg: str) -> NoReturn:
    """Raise :exc:`multiprocessing.TimeoutError` with ``msg``, for use in
    :class:`threading.Timer` callbacks."""
    raise multiprocessing.TimeoutError(msg)


class OFASupervisor:
    """Process supervisor using the one_for_all strategy.

    However, instead of registering a list of processes, you have one process which
    runs a pool. Makes for an easy implementation.

    Args:
        target: see :attr:`target`.
        args: see :attr:`args`.
        kwargs: see :attr:`kwargs`.
        ping_timeout: see :attr:`ping_timeout`.
        join_timeout: see :attr:`join_timeout`.
        max_restart_freq: see :attr:`max_restart_freq`.
        max_restart_freq_time: see :attr:`max_restart_freq_time`.
        check_interval: see :attr:`check_interval`.

    The class attribute :attr:`Process` is the process class instantiated for every
    start and restart (:class:`multiprocessing.Process` unless a subclass sets its
    own). Every parameter stays readable (and writable, as in Celery) as the
    attribute of the same name; :meth:`start` reads them when it is called.
    Every value Celery 0.4 accepted is accepted, zero and degenerate ones included,
    with the meaning Celery's code gave it (:func:`restart_limit`,
    :func:`heartbeat`, :func:`grace`). Values its ``start()`` failed on (a target
    that is not callable, a negative ``check_interval``, a string for a number...)
    raise :class:`~otp_py.SpecError` here, where they are written.
    """

    #: The process class instantiated for every start and restart of the target.
    #: A subclass may set its own :class:`multiprocessing.Process` subclass (which
    #: brings its start method with it). The default, ``multiprocessing.Process``,
    #: uses the default start method (fork on Linux), as Celery did.
    Process: ClassVar[type[BaseProcess]] = multiprocessing.Process

    def __init__(
        self,
        target: Callable[..., Any],
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        ping_timeout: float | None = PING_TIMEOUT,
        join_timeout: float | None = JOIN_TIMEOUT,
        max_restart_freq: float | None = MAX_RESTART_FREQ,
        max_restart_freq_time: float | None = MAX_RESTART_FREQ_TIME,
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        #: The target callable to be launched in a new process.
        self.target = target
        #: The positional arguments to apply to :attr:`target` (``[]`` if not given
        #: or empty, as Celery's ``args or []``).
        self.args: Sequence[Any] = args or []
        #: The keyword arguments to apply to :attr:`target` (``{}`` if not given
        #: or empty).
        self.kwargs: Mapping[str, Any] = kwargs or {}
        #: Seconds the process may leave pings unanswered before it is treated as
        #: hung: stopped, killed if it has not joined within :attr:`join_timeout`
        #: seconds, and restarted.
        self.ping_timeout = ping_timeout
        #: Seconds a process that is asked to stop (because it is hung, or the
        #: supervisor is stopping) gets to join before it is killed.
        self.join_timeout = join_timeout
        #: Limit the number of restarts which can occur in a given time interval:
        #: when restarts exceed ``max_restart_freq`` within
        #: :attr:`max_restart_freq_time` seconds, the process is terminated and
        #: :meth:`start` raises :class:`MaxRestartsExceededError`. This stops a
        #: process that repeatedly dies for the same reason.
        self.max_restart_freq = max_restart_freq
        #: The interval, in seconds, of :attr:`max_restart_freq`.
        self.max_restart_freq_time = max_restart_freq_time
        #: The time in seconds between process pings.
        self.check_interval = check_interval
        self.to_spec()  # refuse invalid parameters now, not at start()

    def to_spec(self) -> otp.SupervisorSpec:
        """The general :class:`~otp_py.SupervisorSpec` that :meth:`start` runs."""
        return otp.SupervisorSpec(
            id=SUPERVISOR_ID,
            strategy=otp.OneForAll(),
            intensity=restart_limit(
                self.max_restart_freq, self.max_restart_freq_time, self.check_interval
            ),
            children=[
                otp.ChildSpec(
                    id=CHILD_ID,
                    start=self.target,
                    backend="process",
                    args=tuple(self.args),
                    kwargs=dict(self.kwargs),
                    process_class=self.Process,
                    heartbeat=heartbeat(self.check_interval, self.ping_timeout),
                    shutdown=grace(self.join_timeout),
                )
            ],
        )

    def start(self) -> None:
        """Launches the target in a separate process and starts supervising it.

        Blocks the calling thread. The process is restarted whenever it ends, and
        when it has left pings unanswered for :attr:`ping_timeout` seconds.

        Returns (``None``) after a KeyboardInterrupt (SIGINT) or SIGTERM, once the
        process has been terminated (with :attr:`join_timeout` seconds of grace);
        the signals are handled only when called from the main thread.

        Raises:
            MaxRestartsExceededError: restarts exceeded :attr:`max_restart_freq`
                within :attr:`max_restart_freq_time` seconds. The process has been
                terminated.
            otp_py.SupervisorExitError: the process could not be started.
        """
        try:
            otp.run(self.to_spec())
        except otp.IntensityExceededError as exc:
            raise MaxRestartsExceededError(exc.path, exc.reason, exc.history, str(exc)) from None
