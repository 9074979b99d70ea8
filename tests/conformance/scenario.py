"""Conformance scenarios: load them, build their trees, render traces in OTP's syntax.

The format is defined in the conformance README (shared/conformance/README.md); the
traces it compares against were recorded from Erlang/OTP 25. Erlang syntax lives
only here: the library's own API stays Pythonic, and this module translates.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

import otp_py as otp
from otp_py import reasons

STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one")
RESTARTS = ("permanent", "transient", "temporary")
AUTO = ("never", "any_significant", "all_significant")
CALLS = (
    "terminate_child",
    "restart_child",
    "delete_child",
    "start_child",
    "which_children",
    "count_children",
    "get_childspec",
    "check_childspecs",
)


class ScenarioError(ValueError):
    """The scenario file does not follow the format."""


@attrs.frozen
class Scenario:
    name: str
    description: str
    flags: dict[str, Any]
    children: list[dict[str, Any]]
    timeline: list[dict[str, Any]]

    def strategy_of(self, sup_path: str) -> str:
        """The strategy of the supervisor at ``sup_path`` ("root", "sup1", ...)."""
        if sup_path == "root":
            return str(self.flags.get("strategy", "one_for_one"))
        children = self.children
        found: dict[str, Any] | None = None
        for part in sup_path.split("/"):
            found = next((c for c in children if c.get("id") == part), None)
            if found is None or found.get("type") != "supervisor":
                raise ScenarioError(f"no supervisor at {sup_path!r}")
            children = found.get("children", [])
        assert found is not None
        return str(found.get("flags", {}).get("strategy", "one_for_one"))


def load(path: str | Path) -> Scenario:
    """Read and check a scenario file; raise :class:`ScenarioError` on any problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: the top level must be an object")
    flags = data.get("flags", {})
    _check_flags(path, "root", flags)
    children = data.get("children")
    if not isinstance(children, list):
        raise ScenarioError(f"{path}: 'children' must be a list")
    _check_children(path, "root", flags, children)
    timeline = data.get("timeline", [])
    if not isinstance(timeline, list):
        raise ScenarioError(f"{path}: 'timeline' must be a list")
    scenario = Scenario(path.stem, str(data.get("description", "")), flags, children, timeline)
    _check_timeline(path, scenario)
    return scenario


def _check_flags(path: Path, where: str, flags: Any) -> None:
    if not isinstance(flags, dict):
        raise ScenarioError(f"{path}: {where}: 'flags' must be an object")
    if flags.get("strategy", "one_for_one") not in STRATEGIES:
        raise ScenarioError(f"{path}: {where}: unknown strategy {flags.get('strategy')!r}")
    for key in ("intensity", "period"):
        value = flags.get(key, 1 if key == "intensity" else 5)
        if not isinstance(value, int) or isinstance(value, bool) or value < (key == "period"):
            raise ScenarioError(f"{path}: {where}: {key} must be a non-negative integer"
                                f"{' above 0' if key == 'period' else ''}; got {value!r}")
    if flags.get("auto_shutdown", "never") not in AUTO:
        raise ScenarioError(f"{path}: {where}: unknown auto_shutdown "
                            f"{flags.get('auto_shutdown')!r}")


def _check_child(path: Path, where: str, child: Any) -> None:
    if not isinstance(child, dict) or not isinstance(child.get("id"), str):
        raise ScenarioError(f"{path}: {where}: a child must be an object with a string 'id'")
    label = f"{where}/{child['id']}"
    if child.get("restart", "permanent") not in RESTARTS:
        raise ScenarioError(f"{path}: {label}: unknown restart {child.get('restart')!r}")
    shutdown = child.get("shutdown", 1000)
    if not (shutdown in ("brutal_kill", "infinity") or
            (isinstance(shutdown, int) and not isinstance(shutdown, bool) and shutdown >= 0)):
        raise ScenarioError(f"{path}: {label}: bad shutdown {shutdown!r}")
    if child.get("type", "worker") not in ("worker", "supervisor"):
        raise ScenarioError(f"{path}: {label}: unknown type {child.get('type')!r}")
    fails = child.get("fail_start", [])
    if not isinstance(fails, list) or not all(isinstance(n, int) and n > 0 for n in fails):
        raise ScenarioError(f"{path}: {label}: fail_start must be a list of positive integers")
    if child.get("type") == "supervisor":
        flags = child.get("flags", {})
        _check_flags(path, label, flags)
        kids = child.get("children", [])
        if not isinstance(kids, list):
            raise ScenarioError(f"{path}: {label}: 'children' must be a list")
        _check_children(path, label, flags, kids)


def _check_children(path: Path, where: str, flags: dict[str, Any], children: list[Any]) -> None:
    for child in children:
        _check_child(path, where, child)
    if flags.get("strategy") == "simple_one_for_one" and len(children) != 1:
        raise ScenarioError(f"{path}: {where}: simple_one_for_one needs exactly one child")


def _check_timeline(path: Path, scenario: Scenario) -> None:
    last = -1
    for step in scenario.timeline:
        if not isinstance(step, dict) or not isinstance(step.get("at"), int):
            raise ScenarioError(f"{path}: every step needs an integer 'at' (ms); got {step!r}")
        if step["at"] < last:
            raise ScenarioError(f"{path}: steps must be in time order")
        last = step["at"]
        kinds = [k for k in ("crash", "exit", "call", "stop") if k in step]
        if len(kinds) != 1:
            raise ScenarioError(f"{path}: step at {step['at']} needs exactly one of "
                                f"crash, exit, call, stop; got {sorted(step)}")
        if "call" in step:
            if step["call"] not in CALLS:
                raise ScenarioError(f"{path}: unknown call {step['call']!r}")
            sup = step.get("sup", "root")
            try:
                scenario.strategy_of(sup)
            except ScenarioError as exc:
                raise ScenarioError(f"{path}: step at {step['at']}: {exc}") from None
            if not isinstance(step.get("args", []), list):
                raise ScenarioError(f"{path}: step at {step['at']}: 'args' must be a list")
            if step["call"] == "check_childspecs" and not all(
                    isinstance(c, dict) and isinstance(c.get("id"), str) for c in step["args"]):
                raise ScenarioError(f"{path}: step at {step['at']}: check_childspecs takes "
                                    "CHILD objects, each with a string 'id'")
        if ("crash" in step or "exit" in step) and not isinstance(
                step.get("crash", step.get("exit")), str):
            raise ScenarioError(f"{path}: step at {step['at']}: the target must be a path")


# ---------------------------------------------------------------- building trees


def flags_to_kwargs(flags: dict[str, Any]) -> dict[str, Any]:
    return {
        "strategy": flags.get("strategy", "one_for_one"),
        "intensity": otp.SlidingWindow(flags.get("intensity", 1), float(flags.get("period", 5))),
        "auto_shutdown": flags.get("auto_shutdown", "never"),
    }


def shutdown_of(child: dict[str, Any]) -> Any:
    default = "infinity" if child.get("type") == "supervisor" else 1000
    value = child.get("shutdown", default)
    if value == "brutal_kill":
        return otp.BRUTAL_KILL
    if value == "infinity":
        return otp.INFINITY
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value  # not a shutdown: the spec refuses it, with OTP's reason
    return value / 1000.0


def build_child(
    child: dict[str, Any], path: str, make_worker: Callable[[str, dict[str, Any]], Any]
) -> Any:
    """A ChildSpec or SupervisorSpec for a scenario child at ``path``."""
    common = {
        "id": child["id"],
        "restart": child.get("restart", "permanent"),
        "shutdown": shutdown_of(child),
        "significant": bool(child.get("significant", False)),
    }
    if child.get("type") == "supervisor":
        kids = [
            build_child(k, f"{path}/{k['id']}", make_worker) for k in child.get("children", [])
        ]
        return otp.SupervisorSpec(children=kids, **flags_to_kwargs(child.get("flags", {})),
                                  **common)
    return make_worker(path, common)


def build_tree(
    scenario: Scenario, make_worker: Callable[[str, dict[str, Any]], Any]
) -> otp.SupervisorSpec:
    """The scenario's root supervisor; ``make_worker(path, fields)`` makes worker specs.

    Children of a simple_one_for_one supervisor get the supervisor's path: their names
    come from start_child arguments.
    """
    kids = []
    dynamic = scenario.flags.get("strategy") == "simple_one_for_one"
    for child in scenario.children:
        path = "root" if dynamic else child["id"]
        kids.append(build_child(child, path, make_worker))
    return otp.SupervisorSpec(id="root", children=kids, **flags_to_kwargs(scenario.flags))


def check_childspecs(
    children: list[dict[str, Any]], make_worker: Callable[[str, dict[str, Any]], Any]
) -> str:
    """``supervisor:check_childspecs/1`` on scenario CHILD objects, as its result.

    otp_py refuses a spec where it is written, so "checking" is building: the specs
    are built in list order, and after each the list so far is made the children of
    a supervisor, so the first problem met is the one OTP's walk down the list meets.
    (OTP 25's check_childspecs/1 refuses a significant child only when it is
    permanent: as under a supervisor whose auto_shutdown is not never.)"""
    built = []
    try:
        for child in children:
            built.append(build_child(child, child["id"], make_worker))
            otp.SupervisorSpec(id="check", children=built, auto_shutdown="any_significant")
    except otp.SpecError as exc:
        return f"{{error,{render_spec_error(exc)}}}"
    return "ok"


def fail_starts(scenario: Scenario) -> dict[str, list[int]]:
    """Path -> 1-based start attempts that fail, for every child that has fail_start.

    Dynamic children are keyed by their supervisor's path, as the recorder does."""
    out: dict[str, list[int]] = {}

    def walk(children: list[dict[str, Any]], parent: str, strategy: str) -> None:
        for child in children:
            path = parent if strategy == "simple_one_for_one" else _join(parent, child["id"])
            if child.get("fail_start"):
                out[path] = list(child["fail_start"])
            if child.get("type") == "supervisor":
                walk(child.get("children", []), path,
                     child.get("flags", {}).get("strategy", "one_for_one"))

    walk(scenario.children, "root", scenario.flags.get("strategy", "one_for_one"))
    for step in scenario.timeline:
        if step.get("call") == "start_child" and step.get("args") and isinstance(
                step["args"][0], dict):
            sup = step.get("sup", "root")
            spec = step["args"][0]
            if spec.get("fail_start"):
                out[_join(sup, spec["id"])] = list(spec["fail_start"])
    return out


def _join(parent: str, name: str) -> str:
    return name if parent == "root" else f"{parent}/{name}"


# ------------------------------------------------------------- Erlang rendering

_ATOM = re.compile(r"^[a-z][a-zA-Z0-9_@]*$")


def atom(text: str) -> str:
    """An Erlang atom as ``~0p`` prints it (quoted when it must be)."""
    return text if _ATOM.match(text) else "'" + text.replace("'", "\\'") + "'"


def parse_reason(text: str) -> reasons.ExitReason:
    """A scenario REASON (``boom``, ``normal``, ``shutdown``, ``{shutdown,x}``)."""
    text = text.strip()
    if text == "normal":
        return reasons.Normal()
    if text == "shutdown":
        return reasons.Shutdown()
    match = re.fullmatch(r"\{\s*shutdown\s*,\s*(.+?)\s*\}", text)
    if match:
        return reasons.Shutdown(ErlangTerm(match.group(1)))
    return reasons.Abnormal(ErlangTerm(text))


@attrs.frozen
class ErlangTerm:
    """A term given as Erlang text in a scenario, rendered back verbatim."""

    text: str

    def __str__(self) -> str:
        return self.text


def term(value: Any) -> str:
    if isinstance(value, ErlangTerm):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return atom(str(value.value))
    if isinstance(value, reasons.FailedToStartChild):
        return f"{{failed_to_start_child,{atom(value.child_id)},{render_reason(value.reason)}}}"
    if isinstance(value, reasons.ExitReason):
        return render_reason(value)
    if isinstance(value, str):
        return atom(value)
    return repr(value)


def render_reason(reason: Any) -> str:
    """An exit reason in the trace's Erlang syntax."""
    if isinstance(reason, reasons.Normal):
        return "normal"
    if isinstance(reason, reasons.Shutdown):
        return f"{{shutdown,{term(reason.term)}}}" if reason.has_term else "shutdown"
    if isinstance(reason, reasons.Killed):
        return "killed"
    if isinstance(reason, reasons.Abnormal):
        return term(reason.term)
    if isinstance(reason, reasons.Crashed):
        # Replayed workers raise with the Erlang term as their message.
        return reason.message
    return atom(str(reason))


def render_spec_error(error: otp.SpecError) -> str:
    """A spec refused at construction as the reason OTP gives for it, built from the
    error's ``kind`` and values (never from its message)."""
    if error.kind == "bad_combination":
        pairs = ",".join(f"{{{atom(field)},{term(value)}}}" for field, value in error.value)
        return f"{{bad_combination,[{pairs}]}}"
    value = error.value
    if error.field == "shutdown" and isinstance(value, int | float) \
            and not isinstance(value, bool):
        value = round(value * 1000)  # the scenario's milliseconds, as build_child divided
    kind = "invalid_mfa" if error.kind == "invalid_start" else error.kind
    return f"{{{atom(kind)},{term(value)}}}"


def render_error(error: BaseException) -> str:
    """An API error as OTP's ``{error, ...}``."""
    if isinstance(error, otp.SpecError):
        return f"{{error,{render_spec_error(error)}}}"
    if isinstance(error, otp.ChildNotFoundError):
        return "{error,not_found}"
    if isinstance(error, otp.ChildRunningError):
        return "{error,running}"
    if isinstance(error, otp.ChildRestartingError):
        return "{error,restarting}"
    if isinstance(error, otp.AlreadyPresentError):
        return "{error,already_present}"
    if isinstance(error, otp.AlreadyStartedError):
        return "{error,{already_started,pid}}"
    if isinstance(error, otp.NotSupportedError):
        return "{error,simple_one_for_one}"
    if isinstance(error, otp.StartChildError):
        return f"{{error,{render_reason(error.reason)}}}"
    return f"{{error,{atom(type(error).__name__)}}}"


def render_result(fun: str, value: Any, error: BaseException | None, *, dynamic: bool) -> str:
    """An API call's result as the trace writes it."""
    if error is not None:
        if fun == "start_child" and not dynamic and isinstance(error, otp.StartChildError):
            return f"{{error,{{{render_reason(error.reason)},child}}}}"
        return render_error(error)
    if fun in ("terminate_child", "delete_child"):
        return "ok"
    if fun in ("restart_child", "start_child"):
        return "{ok,pid}"
    if fun == "which_children":
        return render_which(value, dynamic=dynamic)
    if fun == "count_children":
        return (f"[{{specs,{value.specs}}},{{active,{value.active}}},"
                f"{{supervisors,{value.supervisors}}},{{workers,{value.workers}}}]")
    if fun == "get_childspec":
        return "{ok,spec}"
    return repr(value)


def render_which(infos: Iterable[Any], *, dynamic: bool) -> str:
    rows = []
    for info in infos:
        child = {"running": "pid", "restarting": "restarting"}.get(info.state, "undefined")
        kind = "supervisor" if info.is_supervisor else "worker"
        rows.append(("undefined" if dynamic else info.id, child, kind))
    rows.sort()
    return "[" + ",".join(f"{{{atom(i)},{c},{k}}}" for i, c, k in rows) + "]"


def normalize(lines: list[str], scenario: Scenario) -> list[str]:
    """Sort runs of terminate lines of one simple_one_for_one supervisor's children,
    as the recorder does (OTP stops those in no defined order)."""
    parents = set()

    def walk(children: list[dict[str, Any]], parent: str, strategy: str) -> None:
        if strategy == "simple_one_for_one":
            parents.add(parent)
        for c in children:
            if c.get("type") == "supervisor":
                walk(c.get("children", []), _join(parent, c["id"]),
                     c.get("flags", {}).get("strategy", "one_for_one"))

    walk(scenario.children, "root", scenario.flags.get("strategy", "one_for_one"))

    def key_of(line: str | None) -> str | None:
        if line and line.startswith("terminate "):
            p = line.split()[1]
            parent = p.rsplit("/", 1)[0] if "/" in p else "root"
            return parent if parent in parents else None
        return None

    out: list[str] = []
    run: list[str] = []
    key: str | None = None
    for line in [*lines, None]:
        k = key_of(line)
        if k is not None and k == key:
            assert line is not None
            run.append(line)
            continue
        out.extend(sorted(run) if key is not None else run)
        run, key = ([line] if line is not None else []), k
    return out
