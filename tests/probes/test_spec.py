"""Probe fields are checked where the child is declared: a bad one raises SpecError
naming the child and the field (``readiness.timeout``)."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest

import otp_py as otp
from otp_py import probes
from tests.probes import targets


def _child(**fields: Any) -> otp.ChildSpec:
    return otp.ChildSpec.command("web", "sleep 60", **fields)


BAD_FIELDS = [
    ("interval", 0.001), ("interval", -1), ("interval", math.nan), ("interval", 1e9),
    ("timeout", 0), ("timeout", -0.5), ("initial_delay", -1), ("initial_delay", math.inf),
    ("failure_threshold", 0), ("success_threshold", 0),
]


@pytest.mark.parametrize("role", ["readiness", "liveness"])
@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
def test_a_bad_timing_field_names_the_child_and_the_field(
        role: str, field: str, value: Any) -> None:
    with pytest.raises(otp.SpecError) as caught:
        _child(**{role: probes.Tcp(8000, **{field: value})})
    assert caught.value.child_id == "web"
    assert caught.value.field == f"{role}.{field}"
    assert str(caught.value).startswith(f"child 'web': field '{role}.{field}': expected ")
    assert not isinstance(caught.value, otp.SpecTypeError)


@pytest.mark.parametrize(("field", "value"), [
    ("interval", "1s"), ("timeout", None), ("failure_threshold", 2.5),
    ("success_threshold", True), ("initial_delay", "0")])
def test_a_timing_field_of_the_wrong_type_is_a_spec_type_error(field: str, value: Any) -> None:
    with pytest.raises(otp.SpecTypeError) as caught:
        _child(readiness=probes.Tcp(8000, **{field: value}))
    assert caught.value.field == f"readiness.{field}"


@pytest.mark.parametrize(("probe", "field"), [
    (probes.Tcp(0), "port"), (probes.Tcp(70000), "port"), (probes.Tcp("80"), "port"),
    (probes.Tcp(80, host=""), "host"), (probes.Tcp(80, host="a b"), "host"),
    (probes.Http("https://127.0.0.1/"), "url"), (probes.Http("127.0.0.1:80/"), "url"),
    (probes.Http("http://127.0.0.1:99999/"), "url"), (probes.Http(b"http://x/"), "url"),
    (probes.Http("http://x/a b"), "url"),
    (probes.Http("http://x/", headers={"X-A": "1\r\nEvil: 2"}), "headers"),
    (probes.Http("http://x/", headers={"bad name": "1"}), "headers"),
    (probes.Exec([]), "argv"), (probes.Exec(["ls", 3]), "argv"), (probes.Exec("a\0b"), "argv"),
    (probes.Exec('unbalanced "quote'), "argv"),
    (probes.Call("not callable"), "func"), (probes.Call(lambda x: x), "func"),  # type: ignore[arg-type]
    (probes.Call(targets.sleep_forever.__call__), None),
])
def test_a_bad_target_names_the_child_and_the_field(probe: probes.Probe, field: str | None) -> None:
    if field is None:  # (a valid one, for contrast)
        _child(liveness=probe)
        return
    with pytest.raises(otp.SpecError) as caught:
        _child(liveness=probe)
    assert caught.value.child_id == "web"
    assert caught.value.field == f"liveness.{field}"


def _generator() -> Any:
    yield True


def test_a_generator_function_is_refused() -> None:
    with pytest.raises(otp.SpecError, match=r"liveness\.func"):
        _child(liveness=probes.Call(_generator))


def test_a_liveness_probe_needs_a_success_threshold_of_1() -> None:
    with pytest.raises(otp.SpecError) as caught:
        _child(liveness=probes.Tcp(8000, success_threshold=2))
    assert caught.value.field == "liveness.success_threshold"
    _child(readiness=probes.Tcp(8000, success_threshold=2))  # fine for readiness


@pytest.mark.parametrize("value", ["http://127.0.0.1/", 8000, object(), otp.Heartbeat()])
def test_anything_but_a_probe_is_refused(value: Any) -> None:
    with pytest.raises(otp.SpecTypeError) as caught:
        _child(readiness=value)
    assert (caught.value.child_id, caught.value.field) == ("web", "readiness")


@pytest.mark.parametrize("backend", ["process", "thread", "asyncio"])
def test_probes_apply_to_every_backend(backend: str) -> None:
    start = {"process": targets.sleep_forever, "thread": targets.thread_forever,
             "asyncio": targets.task_forever}[backend]
    spec = otp.ChildSpec(id="w", start=start, backend=backend,  # type: ignore[arg-type]
                         readiness=probes.Call(targets.alive), liveness=probes.Tcp(8000))
    assert spec.readiness == probes.Call(targets.alive)


def test_probes_are_values_that_travel() -> None:
    spec = _child(readiness=probes.Http("http://127.0.0.1:8000/", headers={"X-A": "b"}),
                  liveness=probes.Exec("test -e /tmp", interval=2))
    assert pickle.loads(pickle.dumps(spec)) == spec  # (to a subtree in its own process)
    assert hash(spec) == hash(pickle.loads(pickle.dumps(spec)))
    assert spec.liveness == probes.Exec(["test", "-e", "/tmp"], interval=2)
    assert spec.readiness is not None
    assert spec.readiness.headers == (("X-A", "b"),)  # type: ignore[attr-defined]


def test_the_descriptions_status_shows() -> None:
    assert probes.Http("http://127.0.0.1:8000/health").describe() == \
        "http GET http://127.0.0.1:8000/health"
    assert probes.Tcp(53, host="::1").describe() == "tcp [::1]:53"
    assert probes.Exec(["pg_isready", "-q"]).describe() == "exec pg_isready -q"
    assert probes.Call(targets.alive).describe() == "call tests.probes.targets:alive"
    assert probes.Tcp(1, interval=0.5, initial_delay=2).timing() == (
        "every 0.5 s, timeout 1 s, after 2 s, failure_threshold 3, success_threshold 1")
