"""Probes: what a readiness or liveness check of a child is, and what its results mean.

This module is pure: it declares the probes (:class:`Exec`, :class:`Tcp`,
:class:`Http`, :class:`Call`, values on a :class:`~otp_py.ChildSpec`) and decides what a
run of results means (:class:`ProbeTracker`). It runs no probe and reads no clock:
the runtime (:mod:`otp_py.runtime.probes`) runs each attempt on the tree's event loop,
passes the times in, and carries out what the tracker says.

**The rules** (Kubernetes' probe fields, with otp_py's meaning of each role):

* The first attempt begins ``initial_delay`` seconds after the child is up (for
  ``liveness``: after it is *ready*, readiness probe included). Attempts never
  overlap: the next one begins ``interval`` seconds after the previous one began, or
  as soon as it ended if it took longer than that.
* An attempt that has not answered within ``timeout`` seconds fails (its command is
  killed, its connection closed).
* **Readiness** gates the start, like :func:`otp_py.notify_ready`: the child is
  reported started once ``success_threshold`` attempts in a row have passed. Failures
  are retried at each interval; the child's ``start_timeout`` bounds the wait (the
  supervisor's start timer, as for ``ready=True``). Once passed, readiness is not
  probed again: from then on liveness is what watches the child.
* **Liveness** watches a started child: ``failure_threshold`` failed attempts in a
  row make it *hung* (:class:`~otp_py.reasons.Hung`), and the supervisor stops it and
  restarts it per its restart type, as for a missed heartbeat. A passing attempt
  resets the count. (``success_threshold`` must be 1 here, as in Kubernetes: there is
  no state a success would have to be earned back to.)

A probe's fields are checked when it is given to a :class:`~otp_py.ChildSpec`
(:meth:`Probe.check`), so that an error names the child and the field
(``child 'web': field 'readiness.timeout': ...``).
"""

from __future__ import annotations

import functools
import inspect
import math
import shlex
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, Literal

import attrs

from otp_py._errors import SpecError, SpecTypeError, show_value

__all__ = [
    "AGAIN",
    "HUNG",
    "READY",
    "ROLES",
    "Call",
    "Exec",
    "Http",
    "Probe",
    "ProbeAttempt",
    "ProbeStep",
    "ProbeTracker",
    "Tcp",
    "detection_bound",
    "to_argv",
]

Role = Literal["readiness", "liveness"]
ROLES: Final[tuple[str, ...]] = ("readiness", "liveness")
"""The fields of a :class:`~otp_py.ChildSpec` that take a probe."""

_MAX_SECONDS: Final = 365 * 24 * 3600.0
MIN_INTERVAL: Final = 0.01
"""The shortest interval accepted between attempts: 10 ms."""


@attrs.frozen(kw_only=True)
class Probe:
    """The timing fields every probe has (Kubernetes' names in parentheses).

    * ``interval``: seconds from the start of one attempt to the start of the next
      (``periodSeconds``); default 1, at least 0.01.
    * ``timeout``: seconds an attempt may take before it counts as failed
      (``timeoutSeconds``); default 1.
    * ``failure_threshold``: failed attempts in a row that make a live child hung
      (``failureThreshold``); default 3. Readiness retries until ``start_timeout``.
    * ``success_threshold``: passed attempts in a row that make a starting child
      ready (``successThreshold``); default 1; must be 1 for liveness.
    * ``initial_delay``: seconds from the child's start (for liveness: from its being
      ready) to the first attempt (``initialDelaySeconds``); default 0.
    """

    interval: float = 1.0
    timeout: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1
    initial_delay: float = 0.0

    kind: ClassVar[str] = "probe"

    def describe(self) -> str:
        """What is probed, in a few words (``http GET http://127.0.0.1:8000/``)."""
        return self.kind

    def timing(self) -> str:
        """The timing fields, as ``status`` shows them."""
        text = f"every {self.interval:g} s, timeout {self.timeout:g} s"
        if self.initial_delay:
            text += f", after {self.initial_delay:g} s"
        return f"{text}, failure_threshold {self.failure_threshold}, " \
            f"success_threshold {self.success_threshold}"

    def check(self, child_id: str, role: str) -> None:
        """Refuse bad fields, naming ``child_id`` and the field (``liveness.interval``).

        Raises :class:`~otp_py.SpecError` (:class:`~otp_py.SpecTypeError` for a value of
        the wrong type)."""
        def fail(field: str, expected: str, *, type_error: bool = False) -> None:
            self._fail(child_id, role, field, expected, getattr(self, field),
                       type_error=type_error)

        for field, low, strict in (("interval", MIN_INTERVAL, False), ("timeout", 0.0, True),
                                   ("initial_delay", 0.0, False)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                fail(field, "a number of seconds", type_error=True)
            if math.isnan(value) or value < low or (strict and value == low) \
                    or value > _MAX_SECONDS:
                bound = f"at least {low:g}" if not strict else "more than 0"
                fail(field, f"a number of seconds, {bound} and at most a year "
                     "(seconds, not milliseconds)")
        for field in ("failure_threshold", "success_threshold"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                fail(field, "a whole number of attempts, at least 1", type_error=True)
            if value < 1:
                fail(field, "a whole number of attempts, at least 1")
        if role == "liveness" and self.success_threshold != 1:
            fail("success_threshold", "1 for a liveness probe (a passing attempt resets its "
                 "failure count; there is nothing more to earn back, as in Kubernetes)")
        self._check_target(child_id, role)

    def _check_target(self, child_id: str, role: str) -> None:
        raise SpecTypeError(child_id, role, f"expected a probe: otp_py.probes.Exec, Tcp, Http "
                            f"or Call; got {show_value(self)}", kind=f"invalid_{role}",
                            value=self)

    @staticmethod
    def _fail(child_id: str, role: str, field: str, expected: str, value: Any, *,
              type_error: bool = False) -> None:
        cls = SpecTypeError if type_error else SpecError
        raise cls(child_id, f"{role}.{field}", f"expected {expected}; got {show_value(value)}",
                  kind=f"invalid_{role}", value=value)


def to_argv(value: Any) -> Any:
    """A command line (a string, split as a shell would, or a list) as an argv tuple;
    anything else is left for the field's check to refuse. Commands and exec probes
    are written the same way."""
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError:
            return value
    if isinstance(value, list):
        return tuple(value)
    return value


@attrs.frozen
class Exec(Probe):
    """Run a command; it passes if it exits with status 0 within ``timeout``.

    ``argv`` is a list of strings, or one command line split like a shell would (no
    shell runs it: give ``["sh", "-c", "..."]`` for pipes). It runs in a process group
    of its own with no standard input; the last line it writes (standard output or
    error) is shown with its exit status. At the timeout, or when the child stops
    meanwhile, the whole group is killed (SIGKILL) and reaped."""

    argv: tuple[str, ...] = attrs.field(converter=to_argv)

    kind: ClassVar[str] = "exec"

    def describe(self) -> str:
        argv = self.argv
        text = shlex.join(argv) if isinstance(argv, tuple) else repr(argv)
        return f"exec {text}"

    def _check_target(self, child_id: str, role: str) -> None:
        argv = self.argv
        if not (isinstance(argv, tuple) and argv and all(isinstance(a, str) for a in argv)):
            self._fail(child_id, role, "argv", "a non-empty list of strings or a command line",
                       argv, type_error=not isinstance(argv, tuple | str))
        if any("\0" in a for a in argv):
            self._fail(child_id, role, "argv", "arguments without NUL characters", argv)


def _port_problem(port: Any) -> str | None:
    if isinstance(port, bool) or not isinstance(port, int):
        return "type"
    if not 1 <= port <= 65535:
        return "range"
    return None


@attrs.frozen
class Tcp(Probe):
    """Connect to ``host:port``; it passes if the connection is accepted within
    ``timeout``. The connection is closed at once; nothing is sent.

    ``host`` defaults to ``127.0.0.1``. Give a numeric address where you can: a name
    is resolved by the C library in a thread of the probes' pool (one resolution of a
    probe at a time: a resolver that hangs fails its attempts at their timeout)."""

    port: int = attrs.field()
    host: str = attrs.field(default="127.0.0.1")

    kind: ClassVar[str] = "tcp"

    def describe(self) -> str:
        host = f"[{self.host}]" if ":" in str(self.host) else self.host
        return f"tcp {host}:{self.port}"

    def _check_target(self, child_id: str, role: str) -> None:
        problem = _port_problem(self.port)
        if problem is not None:
            self._fail(child_id, role, "port", "a TCP port number from 1 to 65535", self.port,
                       type_error=problem == "type")
        if not isinstance(self.host, str) or not self.host or any(
                c.isspace() or c == "\0" for c in self.host):
            self._fail(child_id, role, "host", "a host name or address (str)", self.host,
                       type_error=not isinstance(self.host, str))


def _to_headers(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(value.items())
    if isinstance(value, list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return value


_TOKEN: Final = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@attrs.frozen
class Http(Probe):
    """``GET url``; it passes if the answer's status is 2xx or 3xx (redirects are not
    followed) within ``timeout``.

    Only ``http://`` URLs: a probe talks to the child on its own machine, usually over
    the loopback. The request is HTTP/1.1 with ``Connection: close`` plus ``headers``
    (a mapping, or pairs); only the status line of the answer is read, then the
    connection is closed."""

    url: str = attrs.field()
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_to_headers,
                                                       kw_only=True)

    kind: ClassVar[str] = "http"

    def describe(self) -> str:
        return f"http GET {self.url}"

    def _check_target(self, child_id: str, role: str) -> None:
        url = self.url
        if not isinstance(url, str):
            self._fail(child_id, role, "url", "an http:// URL (str)", url, type_error=True)
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError as exc:
            self._fail(child_id, role, "url", f"an http:// URL ({exc})", url)
            return
        if parts.scheme != "http" or not parts.hostname:
            self._fail(child_id, role, "url", "an http://host[:port]/path URL (a probe "
                       "speaks plain HTTP to its child; no https)", url)
        if port is not None and not 1 <= port <= 65535:
            self._fail(child_id, role, "url", "a port from 1 to 65535 in the URL", url)
        if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
            self._fail(child_id, role, "url", "a URL without spaces or control characters "
                       "(percent-encode them)", url)
        headers = self.headers
        if not isinstance(headers, tuple) or not all(
                isinstance(h, tuple) and len(h) == 2 and all(isinstance(x, str) for x in h)
                for h in headers):
            self._fail(child_id, role, "headers", "a mapping of header names to values (str)",
                       headers, type_error=True)
        for name, value in headers:
            if not name or not set(name) <= _TOKEN or any(
                    c in "\r\n\0" for c in value) or not value.isprintable():
                self._fail(child_id, role, "headers", "header names of letters, digits and "
                           "-, and printable values without line breaks", (name, value))


def is_async_callable(obj: Any) -> bool:
    """A coroutine function, a partial of one, or an object with ``async def __call__``."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    if inspect.isfunction(obj) or inspect.ismethod(obj) or not callable(obj):
        return False
    return inspect.iscoroutinefunction(type(obj).__call__)


@attrs.frozen
class Call(Probe):
    """Call ``func()`` (no arguments); it passes if it returns anything but ``False``
    within ``timeout``, and fails if it raises or returns ``False``.

    Where it runs:

    * an ``async def`` function runs as a task on the tree's event loop; at the
      timeout it is cancelled;
    * a plain function must not block the loop, so it runs in a small pool of worker
      threads shared by every plain-function probe of the tree (created when the first
      such probe's child starts, ended when the last one's stops; not a thread per
      probe). A thread cannot be interrupted: a call that overruns its timeout counts
      as failed but runs on, and the probe's next attempts fail at once ("still
      running") until it returns, so a hung function holds one thread, not one per
      attempt."""

    func: Callable[[], Any] = attrs.field()

    kind: ClassVar[str] = "call"

    @property
    def is_async(self) -> bool:
        """Whether ``func`` is a coroutine function (run on the loop)."""
        return is_async_callable(self.func)

    def describe(self) -> str:
        func = self.func
        name = getattr(func, "__qualname__", None) or repr(func)
        module = getattr(func, "__module__", None)
        return f"call {module}:{name}" if module else f"call {name}"

    def _check_target(self, child_id: str, role: str) -> None:
        if not callable(self.func):
            self._fail(child_id, role, "func", "a function taking no arguments (sync or "
                       "async)", self.func, type_error=True)
        func = self.func
        while isinstance(func, functools.partial):
            func = func.func
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            self._fail(child_id, role, "func", "a function that returns its verdict (not a "
                       "generator function)", self.func)
        try:
            signature = inspect.signature(self.func)
        except (TypeError, ValueError):
            return  # (a builtin without a signature: it is called as is)
        try:
            signature.bind()
        except TypeError as exc:
            self._fail(child_id, role, "func", f"a function callable with no arguments "
                       f"({exc})", self.func, type_error=True)


def check_probe(child_id: str, role: str, value: Any) -> None:
    """Refuse anything but a valid :class:`Probe` in field ``role`` of child ``child_id``."""
    if value is None:
        return
    if not isinstance(value, Probe):
        raise SpecTypeError(child_id, role, f"expected a probe (otp_py.probes.Exec, Tcp, Http "
                            f"or Call) or None; got {show_value(value)}",
                            kind=f"invalid_{role}", value=value)
    value.check(child_id, role)


# ------------------------------------------------------------------ the verdicts

AGAIN: Final = "again"
"""Probe again at :attr:`ProbeStep.next_at`."""
READY: Final = "ready"
"""A readiness probe has passed: the child is ready. Probing ends."""
HUNG: Final = "hung"
"""A liveness probe has failed ``failure_threshold`` times in a row. Probing ends."""


@attrs.frozen
class ProbeAttempt:
    """The result of one attempt: whether it passed, what was seen, when it ran."""

    ok: bool
    detail: str
    began: float
    ended: float


@attrs.frozen
class ProbeStep:
    """What to do after an attempt: :data:`AGAIN` at ``next_at``, or a final
    :data:`READY` or :data:`HUNG` (``next_at`` None), with a ``detail`` to report."""

    verdict: str
    next_at: float | None
    detail: str = ""


class ProbeTracker:
    """Counts the results of one probe of one child and says what they mean.

    Pure bookkeeping: every time is passed in (seconds on the runtime's monotonic
    clock). One tracker per start of the child; :meth:`record` after each attempt."""

    __slots__ = ("attempts", "failures", "last", "probe", "role", "successes", "verdict")

    def __init__(self, probe: Probe, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be 'readiness' or 'liveness'; got {role!r}")
        self.probe = probe
        self.role = role
        self.successes = 0  # passed in a row
        self.failures = 0  # failed in a row
        self.attempts = 0
        self.last: ProbeAttempt | None = None
        self.verdict: str | None = None  # READY or HUNG once decided

    def first_at(self, since: float) -> float:
        """When the first attempt begins, for a child up (or ready) at ``since``."""
        return since + self.probe.initial_delay

    def record(self, ok: bool, detail: str, began: float, now: float) -> ProbeStep:
        """Count an attempt that began at ``began`` and ended at ``now``.

        Raises ``RuntimeError`` once a verdict was given (probing has ended)."""
        if self.verdict is not None:
            raise RuntimeError(f"the {self.role} probe already ended ({self.verdict})")
        probe = self.probe
        detail = _one_line(detail)
        self.attempts += 1
        self.last = ProbeAttempt(ok, detail, began, now)
        if ok:
            self.successes += 1
            self.failures = 0
            if self.role == "readiness" and self.successes >= probe.success_threshold:
                self.verdict = READY
                return ProbeStep(READY, None, detail)
        else:
            self.successes = 0
            self.failures += 1
            if self.role == "liveness" and self.failures >= probe.failure_threshold:
                self.verdict = HUNG
                times = "once" if self.failures == 1 else f"{self.failures} times in a row"
                return ProbeStep(HUNG, None, f"liveness probe {probe.describe()} failed "
                                 f"{times}; last: {detail}")
        return ProbeStep(AGAIN, max(began + probe.interval, now), detail)

    def status(self) -> dict[str, Any]:
        """What ``otp-py status`` shows: the probe, its counts and its last result."""
        last = self.last
        return {
            "probe": self.probe.describe(),
            "timing": self.probe.timing(),
            "attempts": self.attempts,
            "successes": self.successes,
            "failures": self.failures,
            "verdict": self.verdict,
            "last": None if last is None else {
                "ok": last.ok, "detail": last.detail, "took": last.ended - last.began},
        }


MAX_DETAIL: Final[int] = 200
"""Characters of an attempt's result kept (and shown, and put in a hung reason)."""


def _one_line(text: str) -> str:
    """An attempt's result as one printable line of at most :data:`MAX_DETAIL`
    characters: it may be what the child said (an HTTP reason phrase, a function's
    exception), and goes to the operator's terminal, logs and status table."""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return cleaned if len(cleaned) <= MAX_DETAIL else cleaned[: MAX_DETAIL - 3] + "..."


def detection_bound(probe: Probe) -> float:
    """The most seconds from the beginning of a live child's last passed attempt to
    its being declared hung: ``failure_threshold`` attempts, each beginning at most
    ``max(interval, timeout)`` after the one before and taking at most ``timeout``
    (ignoring the loop's own lateness)."""
    step = max(probe.interval, probe.timeout)
    return probe.failure_threshold * step + probe.timeout
