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
TOP_KEYS = frozenset({"description", "flags", "children", "timeline", "align_ms"})
FLAG_KEYS = frozenset({"strategy", "intensity", "period", "auto_shutdown"})
CHILD_KEYS = frozenset({"id", "restart", "shutdown", "type", "significant", "fail_start",
                        "ignore_start", "start_ms", "stop_ms", "flags", "children"})
STEP_KINDS = ("crash", "exit", "kill", "call", "stop")
STEP_KEYS = {
    "crash": frozenset({"at", "crash", "reason"}),
    "exit": frozenset({"at", "exit", "reason"}),
    "kill": frozenset({"at", "kill"}),
    "call": frozenset({"at", "call", "args", "sup"}),
    "stop": frozenset({"at", "stop"}),
}
NOT_REPLAYED: dict[str, str] = {}
"""Calls a scenario may make that no replayer can mean (none at present)."""


class ScenarioError(ValueError):
    """The scenario file does not follow the format (or asks what this replayer cannot
    replay faithfully): refused, never replayed as something else."""


@attrs.frozen
class Scenario:
    name: str
    description: str
    flags: dict[str, Any]
    children: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    align_ms: int | None = None

    def strategy_of(self, sup_path: str) -> str:
        """The strategy of the supervisor at ``sup_path`` ("root", "sup1", ...)."""
        if sup_path == "root":
            return str(self.flags.get("strategy", "one_for_one"))
        return str(self.supervisor_at(sup_path).get("flags", {}).get("strategy",
                                                                     "one_for_one"))

    def supervisor_at(self, sup_path: str) -> dict[str, Any]:
        """The scenario's object for the nested supervisor at ``sup_path``."""
        children = self.children
        found: dict[str, Any] | None = None
        for part in sup_path.split("/"):
            found = next((c for c in children if c.get("id") == part), None)
            if found is None or found.get("type") != "supervisor":
                raise ScenarioError(f"no supervisor at {sup_path!r}")
            children = found.get("children", [])
        assert found is not None
        return found

    def children_of(self, sup_path: str) -> list[dict[str, Any]]:
        if sup_path == "root":
            return self.children
        return list(self.supervisor_at(sup_path).get("children", []))

    def template_id(self, sup_path: str) -> str:
        """The id of the template of the simple_one_for_one supervisor at ``sup_path``."""
        return str(self.children_of(sup_path)[0]["id"])

    def worker_paths(self) -> set[str]:
        """Every worker path a crash, exit or kill step may address (a static worker;
        ``SUP/NAME`` for every name a start_child gives a simple_one_for_one SUP)."""
        out: set[str] = set()

        def walk(children: list[dict[str, Any]], parent: str, strategy: str) -> None:
            for c in children:
                if c.get("type") == "supervisor":
                    walk(c.get("children", []), _join(parent, c["id"]),
                         c.get("flags", {}).get("strategy", "one_for_one"))
                elif strategy != "simple_one_for_one":
                    out.add(_join(parent, c["id"]))

        walk(self.children, "root", self.strategy_of("root"))
        for step in self.timeline:
            if step.get("call") == "start_child":
                sup = step.get("sup", "root")
                if self.strategy_of(sup) == "simple_one_for_one":
                    out.update(_join(sup, a) for a in step["args"][:1])
                elif step["args"][0].get("type", "worker") == "worker":
                    out.add(_join(sup, step["args"][0]["id"]))
        return out


def load(path: str | Path) -> Scenario:
    """Read and check a scenario file; raise :class:`ScenarioError` on any problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: the top level must be an object")
    _no_unknown(path, "the top level", data, TOP_KEYS)
    if not isinstance(data.get("description", ""), str):
        raise ScenarioError(f"{path}: 'description' must be a string")
    align = data.get("align_ms")
    if align is not None and not (_is_int(align) and 0 <= align <= 999):
        raise ScenarioError(f"{path}: align_ms must be an integer in 0..999; got {align!r}")
    flags = data.get("flags", {})
    _check_flags(path, "root", flags)
    children = data.get("children")
    if not isinstance(children, list):
        raise ScenarioError(f"{path}: 'children' must be a list")
    _check_children(path, "root", flags, children)
    timeline = data.get("timeline", [])
    if not isinstance(timeline, list):
        raise ScenarioError(f"{path}: 'timeline' must be a list")
    scenario = Scenario(path.stem, str(data.get("description", "")), flags, children, timeline,
                        align)
    _check_timeline(path, scenario)
    return scenario


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _no_unknown(path: Path, where: str, obj: dict[str, Any], known: frozenset[str]) -> None:
    extra = sorted(set(obj) - known)
    if extra:
        raise ScenarioError(f"{path}: {where}: unknown key{'s' if len(extra) > 1 else ''} "
                            f"{', '.join(map(repr, extra))} (known: {', '.join(sorted(known))})")


def _check_flags(path: Path, where: str, flags: Any) -> None:
    if not isinstance(flags, dict):
        raise ScenarioError(f"{path}: {where}: 'flags' must be an object")
    _no_unknown(path, f"{where}: flags", flags, FLAG_KEYS)
    if flags.get("strategy", "one_for_one") not in STRATEGIES:
        raise ScenarioError(f"{path}: {where}: unknown strategy {flags.get('strategy')!r}")
    for key in ("intensity", "period"):
        value = flags.get(key, 1 if key == "intensity" else 5)
        if not _is_int(value) or value < (key == "period"):
            raise ScenarioError(f"{path}: {where}: {key} must be a non-negative integer"
                                f"{' above 0' if key == 'period' else ''}; got {value!r}")
    if flags.get("auto_shutdown", "never") not in AUTO:
        raise ScenarioError(f"{path}: {where}: unknown auto_shutdown "
                            f"{flags.get('auto_shutdown')!r}")


def _check_child(path: Path, where: str, child: Any, *, refusable: bool = False) -> None:
    """``refusable``: a child given to start_child or check_childspecs, whose values
    may be wrong on purpose (OTP's refusal is what the scenario records); only its
    shape is checked."""
    if not isinstance(child, dict) or not isinstance(child.get("id"), str) or not child["id"]:
        raise ScenarioError(f"{path}: {where}: a child must be an object with a string 'id'")
    label = _join(where, child["id"])
    _no_unknown(path, label, child, CHILD_KEYS)
    if refusable:
        return
    if "/" in child["id"]:
        raise ScenarioError(f"{path}: {label}: an id cannot contain '/' (it separates paths)")
    if child.get("restart", "permanent") not in RESTARTS:
        raise ScenarioError(f"{path}: {label}: unknown restart {child.get('restart')!r}")
    shutdown = child.get("shutdown", 1000)
    if not (shutdown in ("brutal_kill", "infinity") or (_is_int(shutdown) and shutdown >= 0)):
        raise ScenarioError(f"{path}: {label}: bad shutdown {shutdown!r}")
    kind = child.get("type", "worker")
    if kind not in ("worker", "supervisor"):
        raise ScenarioError(f"{path}: {label}: unknown type {kind!r}")
    if not isinstance(child.get("significant", False), bool):
        raise ScenarioError(f"{path}: {label}: significant must be true or false")
    attempts = {}
    for key in ("fail_start", "ignore_start"):
        ns = child.get(key, [])
        if not isinstance(ns, list) or not all(_is_int(n) and n > 0 for n in ns):
            raise ScenarioError(f"{path}: {label}: {key} must be a list of positive integers")
        attempts[key] = set(ns)
    both = attempts["fail_start"] & attempts["ignore_start"]
    if both:
        raise ScenarioError(f"{path}: {label}: attempts {sorted(both)} are in both fail_start "
                            "and ignore_start")
    for key in ("start_ms", "stop_ms"):
        if key in child and not (_is_int(child[key]) and child[key] >= 0):
            raise ScenarioError(f"{path}: {label}: {key} must be a non-negative integer (ms); "
                                f"got {child[key]!r}")
    if kind == "supervisor":
        for key in ("start_ms", "stop_ms"):
            if child.get(key):
                raise ScenarioError(f"{path}: {label}: {key} is for workers only")
        for key in ("fail_start", "ignore_start"):
            if child.get(key):
                raise ScenarioError(f"{path}: {label}: {key} on a supervisor is not replayed: "
                                    "an otp_py supervisor's start cannot be scripted to fail "
                                    "or ignore")
        flags = child.get("flags", {})
        _check_flags(path, label, flags)
        kids = child.get("children", [])
        if not isinstance(kids, list):
            raise ScenarioError(f"{path}: {label}: 'children' must be a list")
        _check_children(path, label, flags, kids)
    else:
        for key in ("flags", "children"):
            if key in child:
                raise ScenarioError(f"{path}: {label}: {key!r} is for supervisors only")


def _check_children(path: Path, where: str, flags: dict[str, Any], children: list[Any]) -> None:
    seen: set[str] = set()
    for child in children:
        _check_child(path, where, child)
        if child["id"] in seen:
            raise ScenarioError(f"{path}: {where}: two children named {child['id']!r}")
        seen.add(child["id"])
    if flags.get("strategy") == "simple_one_for_one" and len(children) != 1:
        raise ScenarioError(f"{path}: {where}: simple_one_for_one needs exactly one child")


def _check_timeline(path: Path, scenario: Scenario) -> None:
    last = -1
    for step in scenario.timeline:
        if not isinstance(step, dict) or not _is_int(step.get("at")) or step["at"] < 0:
            raise ScenarioError(f"{path}: every step needs an integer 'at' (ms, >= 0); "
                                f"got {step!r}")
        at = step["at"]
        where = f"{path}: step at {at}"
        if at < last:
            raise ScenarioError(f"{path}: steps must be in time order")
        last = at
        kinds = [k for k in STEP_KINDS if k in step]
        if len(kinds) != 1:
            raise ScenarioError(f"{where} needs exactly one of {', '.join(STEP_KINDS)}; "
                                f"got {sorted(step)}")
        kind = kinds[0]
        _no_unknown(path, f"step at {at} ({kind})", step, STEP_KEYS[kind])
        if kind in ("crash", "exit", "kill"):
            if not isinstance(step[kind], str) or not step[kind]:
                raise ScenarioError(f"{where}: the target of {kind} must be a path")
            reason = step.get("reason", "boom")
            if not isinstance(reason, str) or not reason.strip():
                raise ScenarioError(f"{where}: 'reason' must be an Erlang term as text")
            if step[kind] not in scenario.worker_paths():
                raise ScenarioError(f"{where}: {kind} {step[kind]!r} names no worker of this "
                                    "scenario")
        elif kind == "stop":
            if step["stop"] is not True:
                raise ScenarioError(f"{where}: 'stop' must be true")
        else:
            _check_call(path, where, scenario, step)


def _check_call(path: Path, where: str, scenario: Scenario, step: dict[str, Any]) -> None:
    fun = step["call"]
    if fun in NOT_REPLAYED:
        raise ScenarioError(f"{where}: {NOT_REPLAYED[fun]}")
    if fun not in CALLS:
        raise ScenarioError(f"{path}: unknown call {fun!r}")
    sup = step.get("sup", "root")
    if not isinstance(sup, str):
        raise ScenarioError(f"{where}: 'sup' must be a supervisor's path")
    try:
        strategy = scenario.strategy_of(sup)
    except ScenarioError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    args = step.get("args", [])
    if not isinstance(args, list):
        raise ScenarioError(f"{where}: 'args' must be a list")
    dynamic = strategy == "simple_one_for_one"
    if fun in ("which_children", "count_children"):
        if args:
            raise ScenarioError(f"{where}: {fun} takes no args")
    elif fun == "start_child" and not dynamic:
        if len(args) != 1:
            raise ScenarioError(f"{where}: start_child on a static supervisor takes one "
                                "CHILD object")
        _check_child(path, f"{where}: start_child under {sup}", args[0], refusable=True)
    elif fun == "check_childspecs":
        for child in args:
            _check_child(path, f"{where}: check_childspecs", child, refusable=True)
    elif len(args) != 1 or not isinstance(args[0], str) or not args[0]:
        what = "a child name" if dynamic and fun != "get_childspec" else "a child id"
        raise ScenarioError(f"{where}: {fun} takes one argument, {what}")


def _join(parent: str, name: str) -> str:
    return name if parent == "root" else f"{parent}/{name}"


# ---------------------------------------------------------------- building trees


def flags_to_kwargs(flags: dict[str, Any]) -> dict[str, Any]:
    return {
        "strategy": flags.get("strategy", "one_for_one"),
        # OTP's whole-second restart stamps (align_ms scenarios depend on them)
        "intensity": otp.SlidingWindow(flags.get("intensity", 1), float(flags.get("period", 5)),
                                       resolution=1.0),
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


@attrs.frozen
class Script:
    """A worker's scripted behaviour (the README's fail_start, ignore_start, start_ms,
    stop_ms). Attempts are counted per path by the replayer."""

    fail: frozenset[int] = frozenset()
    ignore: frozenset[int] = frozenset()
    start_ms: int = 0
    stop_ms: int = 0

    @classmethod
    def of(cls, child: dict[str, Any]) -> Script:
        return cls(frozenset(child.get("fail_start", ())), frozenset(child.get("ignore_start", ())),
                   child.get("start_ms", 0), child.get("stop_ms", 0))


MakeWorker = Callable[[str, dict[str, Any], Script], Any]


def build_child(child: dict[str, Any], path: str, make_worker: MakeWorker) -> Any:
    """A ChildSpec or SupervisorSpec for a scenario child at ``path``."""
    common = {
        "id": child["id"],
        "restart": child.get("restart", "permanent"),
        "shutdown": shutdown_of(child),
        "significant": bool(child.get("significant", False)),
    }
    if child.get("type") == "supervisor":
        flags = child.get("flags", {})
        dynamic = flags.get("strategy") == "simple_one_for_one"
        kids = [build_child(k, path if dynamic else f"{path}/{k['id']}", make_worker)
                for k in child.get("children", [])]
        return otp.SupervisorSpec(children=kids, **flags_to_kwargs(flags), **common)
    return make_worker(path, common, Script.of(child))


def build_tree(scenario: Scenario, make_worker: MakeWorker) -> otp.SupervisorSpec:
    """The scenario's root supervisor; ``make_worker(path, fields, script)`` makes worker
    specs.

    The template of a simple_one_for_one supervisor gets the supervisor's path: a child
    made from it gets its name as its start argument, and its path is ``SUP/NAME``.
    """
    kids = []
    dynamic = scenario.flags.get("strategy") == "simple_one_for_one"
    for child in scenario.children:
        path = "root" if dynamic else child["id"]
        kids.append(build_child(child, path, make_worker))
    return otp.SupervisorSpec(id="root", children=kids, **flags_to_kwargs(scenario.flags))


def check_childspecs(children: list[dict[str, Any]], make_worker: MakeWorker) -> str:
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


def worker_path(base: str, args: tuple[Any, ...]) -> str:
    """The path of a worker built at ``base``: a dynamic child's is ``SUP/NAME``."""
    return _join(base, str(args[0])) if args else base


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


def render_result(
    fun: str, value: Any, error: BaseException | None, *, dynamic: bool, speed: float = 1.0
) -> str:
    """An API call's result as the trace writes it."""
    if error is not None:
        if fun == "start_child" and not dynamic and isinstance(error, otp.StartChildError):
            return f"{{error,{{{render_reason(error.reason)},child}}}}"
        return render_error(error)
    if fun in ("terminate_child", "delete_child"):
        return "ok"
    if fun in ("restart_child", "start_child"):
        return "{ok,undefined}" if value is None else "{ok,pid}"  # None: it ignored
    if fun == "which_children":
        return render_which(value, dynamic=dynamic)
    if fun == "count_children":
        return (f"[{{specs,{value.specs}}},{{active,{value.active}}},"
                f"{{supervisors,{value.supervisors}}},{{workers,{value.workers}}}]")
    if fun == "get_childspec":
        return render_spec(value, speed)
    return repr(value)


def render_spec(spec: Any, speed: float = 1.0) -> str:
    """A spec as get_childspec's map, without start and modules, keys sorted.
    ``speed``: the replay divided timeouts by it; the map shows the scenario's."""
    shutdown = spec.shutdown
    if shutdown is otp.BRUTAL_KILL:
        shown = "brutal_kill"
    elif shutdown == otp.INFINITY:
        shown = "infinity"
    else:
        shown = str(round(shutdown * speed * 1000))
    fields = {
        "id": atom(spec.id),
        "restart": spec.restart.value,
        "shutdown": shown,
        "significant": "true" if spec.significant else "false",
        "type": "supervisor" if spec.is_supervisor else "worker",
    }
    return "{ok,#{" + ",".join(f"{k}=>{v}" for k, v in sorted(fields.items())) + "}}"


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
