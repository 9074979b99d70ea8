"""Trees declared in TOML: supervisord's config file, shaped as a tree.

The file's top level is the root supervisor; ``[[children]]`` arrays of tables hold
its children, and a child table with ``children`` (or ``strategy``, ``intensity``,
``auto_shutdown``) is a nested supervisor with ``[[children.children]]`` of its own::

    id = "root"
    strategy = "one_for_one"
    intensity = { max_restarts = 3, period = 5 }

    [[children]]
    id = "web"
    command = ["python", "-m", "http.server", "8000"]

    [[children]]
    id = "jobs"
    strategy = "one_for_all"

      [[children.children]]
      id = "worker"
      start = "myapp.jobs:work"      # an import path
      args = ["default"]
      backend = "process"

Every field of :class:`~otp_py.ChildSpec` and :class:`~otp_py.SupervisorSpec` has a
key of the same name (the keys are read from the specs' fields, so a new field is a
new key). Fields that hold Python objects take an import path (``start``,
``process_class``, a custom ``strategy``, ``intensity`` or ``decider``) or a table
(``intensity``, ``heartbeat``, ``watchdog``, ``output``, the rules of a ``decider``, the
probes ``readiness`` and ``liveness``: ``{ http = "http://127.0.0.1:8000/", interval = 1 }``); see
``docs/cli.rst`` for the full reference.

Loading collects *every* problem rather than stopping at the first, each with its
place: the file, the table path (``children[1].children[0]``) and, when it can be
found, the line. The messages are the library's own :class:`~otp_py.SpecError`
messages, which name the child and the field.
"""

from __future__ import annotations

import functools
import importlib
import operator
import os
import re
import shutil
import signal
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, NoReturn

import attrs

import otp_py as otp
from otp_py.cli.errors import EXIT_USAGE, CliError
from otp_py.cli.load import ImportPathError, import_object

__all__ = ["SUPERVISOR_KEYS", "WORKER_KEYS", "Problem", "check_file", "load_file", "parse"]

WORKER_KEYS: Final = tuple(
    key for f in attrs.fields(otp.ChildSpec)
    for key in ((f.name, "command") if f.name == "start" else (f.name,))
)
"""The keys of a worker table: :class:`~otp_py.ChildSpec`'s fields, and ``command``
(``start`` with ``backend = "command"``)."""

SUPERVISOR_KEYS: Final = tuple(f.name for f in attrs.fields(otp.SupervisorSpec))
"""The keys of a supervisor table: :class:`~otp_py.SupervisorSpec`'s fields."""

_SUPERVISOR_ONLY: Final = frozenset(SUPERVISOR_KEYS) - frozenset(WORKER_KEYS)
_WINDOW_KEYS: Final = ("max_restarts", "period")
_INTENSITY_KEYS: Final = (*_WINDOW_KEYS, "backoff", "decaying", "shared")
_BACKOFF_KEYS: Final = ("initial", "maximum", "multiplier", "jitter", "reset_after")
_DECAYING_KEYS: Final = ("threshold", "decay", "backoff", "jitter")
_HEARTBEAT_KEYS: Final = ("interval", "timeout")
_WATCHDOG_KEYS: Final = ("interval", "timeout", "threshold")
_PROBE_KINDS: Final = ("exec", "tcp", "http", "call")
_PROBE_TIMING: Final = ("interval", "timeout", "failure_threshold", "success_threshold",
                        "initial_delay")
_PROBE_KEYS: Final = (*_PROBE_KINDS, "host", "headers", *_PROBE_TIMING)
_OUTPUT_KEYS: Final = tuple(f.name for f in attrs.fields(otp.OutputCapture))
_RULE_MATCHES: Final = ("exit_code", "signal", "exception")
_RULE_KEYS: Final = (*_RULE_MATCHES, "decision", "delay")
_DECISIONS: Final = ("restart", "stop", "escalate", "shutdown_tree", "ignore")


@attrs.frozen
class Problem:
    """One thing wrong with a tree file, and where it is."""

    file: str
    where: str | None
    """The table path: ``""`` for the root table, ``"children[1].children[0]"``;
    None when the file is not TOML at all."""
    line: int | None
    message: str

    def describe(self) -> str:
        """``tree.toml:14: children[1].children[0]: child 'w': field 'shutdown': ...``"""
        place = f"{self.file}:{self.line}" if self.line else self.file
        if self.where is None:
            return f"{place}: {self.message}"
        return f"{place}: {self.where or '(root table)'}: {self.message}"


# ---------------------------------------------------------------- finding lines


_AOT_HEADER = re.compile(r"^\s*\[\[\s*([^\[\]]+?)\s*\]\]\s*(?:#.*)?$")
_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*[.=]""")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _unquote(key: str) -> str:
    key = key.strip()
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] and key[0] in "\"'" else key


class _Locator:
    """Line numbers of tables and keys, found by reading the TOML text again.

    ``tomllib`` keeps no positions, so this follows the table headers (``[a.b]``,
    ``[[children]]``) the way TOML resolves them and notes the line of each key in
    each table. Tables written inline (``children = [{...}]``) are found at the line
    of the key that holds them."""

    def __init__(self, text: str) -> None:
        self._headers: dict[str, int] = {}
        self._keys: dict[str, dict[str, int]] = {"": {}}
        arrays: dict[str, int] = {}
        current = ""
        in_string = False
        for number, line in enumerate(text.splitlines(), start=1):
            quotes = line.count('"""') + line.count("'''")
            if in_string:
                in_string = quotes % 2 == 0
                continue
            if quotes % 2:
                in_string = True
            aot = _AOT_HEADER.match(line)
            header = aot or _HEADER.match(line)
            if header:
                current = self._resolve(header.group(1), arrays, is_array=aot is not None)
                self._headers.setdefault(current, number)
                self._keys.setdefault(current, {})
                continue
            key = _KEY.match(line)
            if key:
                self._keys[current].setdefault(_unquote(key.group(1)), number)

    @staticmethod
    def _resolve(header: str, arrays: dict[str, int], *, is_array: bool) -> str:
        keys = [_unquote(k) for k in header.split(".")]
        resolved = ""
        for i, key in enumerate(keys):
            path = _join(resolved, key)
            if i < len(keys) - 1:
                resolved = f"{path}[{arrays[path] - 1}]" if path in arrays else path
            elif is_array:
                index = arrays.get(path, 0)
                arrays[path] = index + 1
                resolved = f"{path}[{index}]"
            else:
                resolved = path
        return resolved

    def line(self, where: str, key: str | None = None) -> int | None:
        """The line of ``key`` in the table at ``where`` (or of the table itself)."""
        keys = self._keys.get(where)
        if key is not None and "." in key:  # a field of a table in the table (a probe's)
            head, _, rest = key.partition(".")
            inner = _join(where, head)
            if rest in self._keys.get(inner, ()):
                return self._keys[inner][rest]
            key = head
        if key is not None:
            if keys is not None and key in keys:
                return keys[key]
            sub = self._headers.get(_join(where, key))
            if sub is not None:
                return sub
        if where in self._headers:
            return self._headers[where]
        if keys is not None:  # the root table: no header
            return None
        parent, _, last = where.rpartition(".")
        return self.line(parent, last.partition("[")[0])


# ---------------------------------------------------------------- building specs


_SPEC_PREFIX = re.compile(r"^spec: field '[^']*': ")


class _Skip(Exception):  # noqa: N818 - internal control flow, not an error
    """A value could not be converted; its problem is already noted."""


class _Builder:
    def __init__(self, file: str, locator: _Locator) -> None:
        self.file = file
        self.locator = locator
        self.problems: list[Problem] = []

    def problem(self, where: str, key: str | None, message: str) -> None:
        self.problems.append(Problem(self.file, where, self.locator.line(where, key), message))

    def spec_problem(self, where: str, exc: otp.SpecError, label: str,
                     key: str | None = None) -> None:
        """Note a :class:`~otp_py.SpecError`, naming ``label`` when the library could
        not name the child (a policy's own error, an invalid id)."""
        message = str(exc)
        if exc.child_id is None and message.startswith("spec:"):
            message = label + message[len("spec"):]
        self.problem(where, key or exc.field, message)

    def fail(self, where: str, key: str, label: str, detail: str) -> NoReturn:
        """Note that field ``key`` is wrong, and skip it."""
        self.problem(where, key, f"{label}: field {key!r}: {detail}")
        raise _Skip

    # -- values

    def imported(self, where: str, key: str, label: str, path: Any, what: str) -> Any:
        if not isinstance(path, str) or ":" not in path:
            self.fail(where, key, label, f"expected an import path 'package.module:name' "
                      f"naming {what}; got {path!r}")
        try:
            return import_object(path)
        except ImportPathError as exc:
            self.fail(where, key, label, str(exc))

    def table(self, where: str, key: str, label: str, value: Any,
              allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, key, label, f"expected a table with keys {', '.join(allowed)}; "
                      f"got {value!r}")
        unknown = [k for k in value if k not in allowed]
        if unknown:
            self.fail(where, key, label, f"unknown key {unknown[0]!r} (expected "
                      f"{', '.join(allowed)})")
        return value

    def construct(self, where: str, key: str, label: str, make: Callable[..., Any],
                  **fields: Any) -> Any:
        try:
            return make(**fields)
        except Exception as exc:  # a policy's SpecError, or a user class refusing
            self.fail(where, key, label, _SPEC_PREFIX.sub("", str(exc)) or type(exc).__name__)

    def intensity(self, where: str, label: str, value: Any) -> otp.IntensityPolicy:
        if isinstance(value, str):
            policy = self.imported(where, "intensity", label, value, "an IntensityPolicy")
            if isinstance(policy, type) and issubclass(policy, otp.IntensityPolicy):
                policy = self.construct(where, "intensity", label, policy)
            if not isinstance(policy, otp.IntensityPolicy):
                self.fail(where, "intensity", label, f"{value!r} is {type(policy).__name__}, "
                          "not an otp_py.IntensityPolicy")
            return policy
        spec = self.table(where, "intensity", label, value, _INTENSITY_KEYS)
        policies: list[otp.IntensityPolicy] = []
        if any(k in spec for k in _WINDOW_KEYS):
            window = {k: spec[k] for k in _WINDOW_KEYS if k in spec}
            policies.append(self.construct(where, "intensity", label, otp.SlidingWindow,
                                           **window))
        if "backoff" in spec:
            backoff = self.table(where, "intensity", label, spec["backoff"], _BACKOFF_KEYS)
            policies.append(self.construct(where, "intensity", label, otp.ExponentialBackoff,
                                           **backoff))
        if "decaying" in spec:
            decaying = self.table(where, "intensity", label, spec["decaying"], _DECAYING_KEYS)
            policies.append(self.construct(where, "intensity", label,
                                           otp.DecayingFailureCount, **decaying))
        if not policies and "shared" not in spec:
            self.fail(where, "intensity", label, "give at least one of max_restarts and "
                      "period, backoff, decaying or shared")
        if "shared" in spec:
            fields: dict[str, Any] = {"name": spec["shared"]}
            if policies:  # else the shared budget's own default, OTP's 1 in 5 s
                fields["policy"] = functools.reduce(operator.and_, policies)
            shared: otp.IntensityPolicy = self.construct(
                where, "intensity", label, otp.SharedBudget, **fields)
            return shared
        combined: otp.IntensityPolicy = functools.reduce(operator.and_, policies)
        return combined

    def strategy(self, where: str, label: str, value: Any) -> Any:
        if not (isinstance(value, str) and ":" in value):
            return value  # a name, or a wrong value the spec refuses with its own message
        strategy = self.imported(where, "strategy", label, value, "a RestartStrategy")
        if isinstance(strategy, type) and issubclass(strategy, otp.RestartStrategy):
            strategy = self.construct(where, "strategy", label, strategy)
        return strategy

    def stop_signal(self, where: str, label: str, value: Any, key: str = "stop_signal") -> Any:
        if not isinstance(value, str):
            return value
        name = value.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        try:
            return signal.Signals[name]
        except KeyError:
            self.fail(where, key, label, f"expected a signal name such as 'SIGTERM' or a "
                      f"number; got {value!r}")

    def heartbeat(self, where: str, label: str, value: Any) -> Any:
        if value is True:
            return otp.Heartbeat()
        if value is False:
            return None
        fields = self.table(where, "heartbeat", label, value, _HEARTBEAT_KEYS)
        return self.construct(where, "heartbeat", label, otp.Heartbeat, **fields)

    def probe(self, where: str, label: str, value: Any, role: str) -> Any:
        """A probe table: exactly one of ``exec`` (an argv or a command line), ``tcp``
        (a port, or ``"host:port"``), ``http`` (a URL) or ``call`` (an import path),
        plus the timing keys (and ``host`` for tcp, ``headers`` for http). Its values
        are checked by the ChildSpec, whose error names the child and the field."""
        fields = self.table(where, role, label, value, _PROBE_KEYS)
        kinds = [k for k in _PROBE_KINDS if k in fields]
        if len(kinds) != 1:
            self.fail(where, role, label, f"a probe has exactly one of "
                      f"{', '.join(_PROBE_KINDS)}; got {value!r}")
        kind = kinds[0]
        target = fields[kind]
        timing = {k: fields[k] for k in _PROBE_TIMING if k in fields}
        for key, owner in (("host", "tcp"), ("headers", "http")):
            if key in fields and kind != owner:
                self.fail(where, role, label, f"{key!r} is a key of a {owner} probe, not of "
                          f"a {kind} probe")
        if kind == "exec":
            return otp.probes.Exec(target, **timing)
        if kind == "tcp":
            host = fields.get("host", "127.0.0.1")
            if isinstance(target, str):
                head, colon, port = target.rpartition(":")
                if colon and port.isdigit():
                    host, target = head.strip("[]") or host, int(port)
            return otp.probes.Tcp(target, host=host, **timing)
        if kind == "http":
            return otp.probes.Http(target, headers=fields.get("headers", ()), **timing)
        func = self.imported(where, role, label, target, "the probe function")
        return otp.probes.Call(func, **timing)

    def watchdog(self, where: str, label: str, value: Any) -> Any:
        if value is True:
            return otp.LoopWatchdog()
        if value is False:
            return None
        fields = self.table(where, "watchdog", label, value, _WATCHDOG_KEYS)
        return self.construct(where, "watchdog", label, otp.LoopWatchdog, **fields)

    def output(self, where: str, label: str, value: Any) -> Any:
        """``output = true`` (capture, with what is inherited or the defaults),
        ``false`` (do not), or a table of :class:`~otp_py.OutputCapture` fields."""
        if value is True:
            return otp.OutputCapture()
        if value is False:
            return otp.OutputCapture(enabled=False)
        fields = self.table(where, "output", label, value, _OUTPUT_KEYS)
        return self.construct(where, "output", label, otp.OutputCapture, **fields)

    def decider(self, where: str, label: str, value: Any) -> Any:
        """An import path to a :class:`~otp_py.Decider`, or its rules as an array of
        tables: ``{ exit_code = 78, decision = "escalate" }``."""
        if isinstance(value, str):
            decider = self.imported(where, "decider", label, value, "a Decider")
            if not isinstance(decider, otp.Decider):
                self.fail(where, "decider", label, f"{value!r} is "
                          f"{type(decider).__name__}, not an otp_py.Decider")
            return decider
        if not isinstance(value, list):
            self.fail(where, "decider", label, "expected an import path to a Decider, or an "
                      f"array of rules such as {{ exit_code = 78, decision = 'escalate' }}; "
                      f"got {value!r}")
        rules = [self.rule(where, label, rule) for rule in value]
        return self.construct(where, "decider", label, otp.Decider, rules=rules)

    def rule(self, where: str, label: str, value: Any) -> tuple[Any, otp.Decision]:
        rule = self.table(where, "decider", label, value, _RULE_KEYS)
        matches = [k for k in _RULE_MATCHES if k in rule]
        if len(matches) != 1:
            self.fail(where, "decider", label, f"each rule needs exactly one of "
                      f"{', '.join(_RULE_MATCHES)}; got {value!r}")
        kind = matches[0]
        given = rule[kind]
        if kind == "exit_code":
            matcher: Any = self.construct(where, "decider", label, otp.OnExitCode, codes=given)
        elif kind == "signal":
            names = given if isinstance(given, list) else [given]
            numbers = [self.stop_signal(where, label, n, key="decider") for n in names]
            matcher = self.construct(where, "decider", label, otp.OnSignal, signals=numbers)
        else:
            matcher = self.imported(where, "decider", label, given, "an exception class")
            if not (isinstance(matcher, type) and issubclass(
                    matcher, BaseException | otp.reasons.ExitReason)):
                self.fail(where, "decider", label, f"{given!r} is not an exception class "
                          "(or an otp_py.reasons class)")
        decision = rule.get("decision")
        if decision not in _DECISIONS:
            self.fail(where, "decider", label, f"a rule's decision is one of "
                      f"{', '.join(_DECISIONS)}; got {decision!r}")
        if "delay" in rule:
            if decision != "restart":
                self.fail(where, "decider", label, "only a 'restart' decision takes a delay")
            return matcher, self.construct(where, "decider", label, otp.Decision.restart,
                                           delay=rule["delay"])
        return matcher, getattr(otp.Decision, str(decision).upper())

    def convert(self, fields: dict[str, Any], key: str,
                convert: Callable[[Any], Any]) -> bool:
        """Convert ``fields[key]`` in place; on a problem, drop it and return False."""
        if key not in fields:
            return True
        try:
            fields[key] = convert(fields[key])
        except _Skip:
            del fields[key]
            return False
        return True

    # -- tables

    def known_keys(self, where: str, table: Mapping[str, Any], allowed: tuple[str, ...],
                   kind: str) -> bool:
        ok = True
        for key in table:
            if key not in allowed:
                hint = ""
                if kind == "worker" and key in _SUPERVISOR_ONLY:
                    hint = " (a supervisor's key, in a table with 'start' or 'command')"
                name = table.get("id", "root" if not where else None)
                noun = "child" if kind == "worker" else "supervisor"
                label = f"{noun} {name!r}: " if isinstance(name, str) else ""
                self.problem(where, key, f"{label}unknown key {key!r} for a {kind}{hint}; "
                             f"expected {', '.join(allowed)}")
                ok = False
        return ok

    def child(self, table: Any, where: str) -> otp.ChildSpec | otp.SupervisorSpec | None:
        if not isinstance(table, dict):
            self.problem(where, None, f"expected a table (a child); got {table!r}")
            return None
        if any(k in table for k in _SUPERVISOR_ONLY):
            if "start" in table or "command" in table:
                given = sorted(k for k in _SUPERVISOR_ONLY if k in table)
                self.problem(where, "start" if "start" in table else "command",
                             f"a worker ('start' or 'command') cannot have "
                             f"{', '.join(map(repr, given))}: only a supervisor (a table "
                             "with 'children') has those")
                return None
            return self.supervisor(table, where, is_root=False)
        if "start" not in table and "command" not in table:
            label = f"child {table['id']!r}: " if isinstance(table.get("id"), str) else ""
            self.problem(where, None, f"{label}a child needs 'start' or 'command' (a worker) "
                         "or 'children' (a supervisor)")
            return None
        return self.worker(table, where)

    def worker(self, table: dict[str, Any], where: str) -> otp.ChildSpec | None:
        ok = self.known_keys(where, table, WORKER_KEYS, "worker")
        if "id" not in table:
            self.problem(where, None, "missing key 'id' (the child's name among its siblings)")
            return None
        label = f"child {table['id']!r}"
        fields = {k: v for k, v in table.items() if k in WORKER_KEYS}
        if "command" in fields:
            if "start" in fields:
                self.problem(where, "command", f"{label}: give 'start' or 'command', not both")
                return None
            backend = fields.setdefault("backend", "command")
            if backend != "command":
                self.problem(where, "backend", f"{label}: field 'backend': 'command' runs a "
                             f"program, so backend must be 'command'; got {backend!r}")
                return None
            fields["start"] = fields.pop("command")
        elif isinstance(fields["start"], str) and fields.get("backend") != "command":
            ok &= self.convert(fields, "start", lambda v: self.imported(
                where, "start", label, v, "the function to run"))
        ok &= self.convert(fields, "process_class", lambda v: self.imported(
            where, "process_class", label, v, "a multiprocessing.Process subclass"))
        ok &= self.convert(fields, "stop_signal", lambda v: self.stop_signal(where, label, v))
        ok &= self.convert(fields, "heartbeat", lambda v: self.heartbeat(where, label, v))
        ok &= self.convert(fields, "decider", lambda v: self.decider(where, label, v))
        ok &= self.convert(fields, "output", lambda v: self.output(where, label, v))
        for role in ("readiness", "liveness"):
            ok &= self.convert(fields, role, functools.partial(self.probe, where, label,
                                                               role=role))
        if "start" not in fields:
            return None  # nothing to check the other fields against
        try:
            spec = otp.ChildSpec(**fields)
        except otp.SpecError as exc:
            if exc.field == "start" and "command" in table:  # say it as the file does
                message = str(exc).replace("field 'start'", "field 'command'", 1)
                self.problem(where, "command", message)
            else:
                self.spec_problem(where, exc, label)
            return None
        return spec if ok else None

    def supervisor(self, table: dict[str, Any], where: str, *,
                   is_root: bool) -> otp.SupervisorSpec | None:
        ok = self.known_keys(where, table, SUPERVISOR_KEYS, "supervisor")
        if "id" not in table and not is_root:
            self.problem(where, None, "missing key 'id' (the supervisor's name among its "
                         "siblings)")
            return None
        sid = table.get("id", "root")
        label = f"supervisor {sid!r}"
        fields: dict[str, Any] = {k: v for k, v in table.items() if k in SUPERVISOR_KEYS}
        fields["id"] = sid
        ok &= self.convert(fields, "intensity", lambda v: self.intensity(where, label, v))
        ok &= self.convert(fields, "strategy", lambda v: self.strategy(where, label, v))
        ok &= self.convert(fields, "decider", lambda v: self.decider(where, label, v))
        ok &= self.convert(fields, "watchdog", lambda v: self.watchdog(where, label, v))
        ok &= self.convert(fields, "output", lambda v: self.output(where, label, v))
        children = fields.get("children", [])
        if not isinstance(children, list):
            self.problem(where, "children", f"{label}: field 'children': expected an array of "
                         f"tables ([[children]]); got {children!r}")
            return None
        built: list[otp.ChildSpec | otp.SupervisorSpec] = []
        where_of: dict[str, str] = {}
        for index, child in enumerate(children):
            child_where = _join(where, f"children[{index}]")
            spec = self.child(child, child_where)
            if spec is None:
                ok = False
                continue
            built.append(spec)
            where_of[spec.id] = child_where
        fields["children"] = built
        try:
            spec = otp.SupervisorSpec(**fields)
        except otp.SpecError as exc:
            if exc.field == "children" and len(built) != len(children):
                return None  # the children's own problems are already noted
            if exc.child_id != sid and exc.child_id in where_of:
                self.problem(where_of[str(exc.child_id)], exc.field, str(exc))
            else:
                self.spec_problem(where, exc, label)
            return None
        if is_root and spec.backend != "inline":
            self.problem(where, "backend", f"{label}: field 'backend': the root supervisor "
                         "runs in the otp-py process; backend = \"process\" is for nested "
                         "supervisors")
            return None
        return spec if ok else None


def parse(text: str, file: str = "<tree>") -> tuple[otp.SupervisorSpec | None, list[Problem]]:
    """Build the tree declared in ``text``; return it (None if anything is wrong)
    and the list of problems found."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        return None, [Problem(file, None, line, f"invalid TOML: {exc}")]
    builder = _Builder(file, _Locator(text))
    spec = builder.supervisor(data, "", is_root=True)
    if builder.problems:
        return None, sorted(builder.problems, key=lambda p: p.line or 0)
    return spec, []


def check_file(path: str) -> tuple[otp.SupervisorSpec | None, list[Problem]]:
    """:func:`parse` the file at ``path``; raise :class:`CliError` if it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{path}: no such file", code=EXIT_USAGE) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CliError(f"{path}: cannot read: {reason}", code=EXIT_USAGE) from None
    return parse(text, path)


def load_file(path: str) -> otp.SupervisorSpec:
    """The tree declared in the file at ``path``; :class:`CliError` (exit status 2)
    with one line per problem if it is not valid."""
    spec, problems = check_file(path)
    if spec is None:
        raise CliError(*(p.describe() for p in problems), code=EXIT_USAGE, located=True)
    return spec


# ------------------------------------------------------- what would fail at start


def start_problems(spec: otp.SupervisorSpec, file: str | None = None,
                   text: str | None = None) -> list[Problem]:
    """What would fail when the tree starts, though the declaration is valid: a
    command not found on ``PATH`` (the child's own ``env`` PATH, if it sets one), a
    ``cwd`` that does not exist, a process child's target that cannot be found by
    import (the child process finds it by module and name). With the file's ``text``
    each problem carries its line; relative paths are taken from the current
    directory, as ``otp-py run`` takes them."""
    locator = _Locator(text) if text is not None else None
    problems: list[Problem] = []

    def add(where: str, child: otp.ChildSpec, key: str, message: str) -> None:
        line = locator.line(where, key) if locator is not None else None
        if line is None and locator is not None:
            line = locator.line(where)
        problems.append(Problem(file or spec.id, where, line,
                                f"child {child.id!r}: field {key!r}: {message}"))

    def visit(sup: otp.SupervisorSpec, where: str) -> None:
        for index, child in enumerate(sup.children):
            here = _join(where, f"children[{index}]")
            if isinstance(child, otp.SupervisorSpec):
                visit(child, here)
                continue
            if child.backend == "command":
                key = "command" if locator is None or locator.line(here, "command") else "start"
                message = _command_problem(child)
                if message:
                    add(here, child, key, message)
            if child.cwd is not None and not os.path.isdir(child.cwd):
                add(here, child, "cwd", f"no such directory: {child.cwd!r}"
                    + ("" if os.path.isabs(child.cwd) else f" (from {os.getcwd()})"))
            if child.backend == "process":
                message = _target_problem(child.start)
                if message:
                    add(here, child, "start", message)

    visit(spec, "")
    return sorted(problems, key=lambda p: p.line or 0)


def _command_problem(child: otp.ChildSpec) -> str | None:
    argv = child.start
    program = str(argv[0]) if isinstance(argv, tuple | list) and argv else None
    if program is None:
        return None
    if "/" in program:
        base = child.cwd or os.getcwd()
        full = os.path.join(base, program)
        if not os.path.exists(full):
            return f"{program!r}: no such file"
        if not os.access(full, os.X_OK) or os.path.isdir(full):
            return f"{program!r} is not an executable file"
        return None
    search = (child.env or {}).get("PATH", os.environ.get("PATH", os.defpath))
    if shutil.which(program, path=search) is None:
        return f"{program!r} is not found on PATH ({search})"
    return None


def _target_problem(start: Any) -> str | None:
    """Why a process child's process could not find ``start`` by import, or None."""
    while isinstance(start, functools.partial):
        start = start.func
    module = getattr(start, "__module__", None)
    name = getattr(start, "__qualname__", None)
    if not module or not name:
        return None  # an instance with __call__: pickled by value
    if "<lambda>" in name or "<locals>" in name:
        return (f"{module}:{name} cannot be found by import in the child's process (a "
                "lambda or a function defined inside another); define it at the top "
                "level of a module")
    if module == "__main__":
        return None  # found by importing the script again (see the __main__ guard)
    try:
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except Exception as exc:
        return f"cannot import {module}:{name}: {type(exc).__name__}: {exc}"
    return None
