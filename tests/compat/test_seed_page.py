"""Every name the Celery 0.4 ``celery.supervisor`` page documents exists at
``otp_py.<name>``, with the documented signature.

The page is kept verbatim in ``data/celery-supervisor-0.4.0.md``; its ``###``
headings are read here, so a name the page documents cannot be forgotten. A heading
with the ``celery.supervisor.`` prefix (or a dotted name) is module-level; a bare
name is a member of the class documented last (so ``Process`` is
``OFASupervisor.Process``, and ``daemon`` is ``OFASupervisor.Process.daemon``).
Members are looked up on an instance, as users meet them.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import attrs
import pytest

import otp_py

PAGE = Path(__file__).parent / "data" / "celery-supervisor-0.4.0.md"
MODULE = "celery.supervisor."
HEADING = re.compile(
    r"^### (?:(?P<kind>class|exception) )?(?P<name>[\w.]+)(?:\((?P<params>.*)\))?$"
)
EMPTY = inspect.Parameter.empty


@attrs.frozen
class Item:
    heading: str
    kind: str | None
    """``"class"``, ``"exception"`` or None (a function, method or attribute)."""
    path: tuple[str, ...]
    """From ``otp_py``: ``("OFASupervisor", "Process", "join")``."""
    params: str | None
    """The documented parameter list, None for an attribute."""


def documented_items() -> list[Item]:
    items: list[Item] = []
    owner: tuple[str, ...] = ()
    for line in PAGE.read_text().splitlines():
        match = HEADING.match(line)
        if match is None:
            continue
        kind, name, params = match["kind"], match["name"], match["params"]
        if name.startswith(MODULE):
            path = tuple(name[len(MODULE) :].split("."))
        elif "." in name:
            path = tuple(name.split("."))
        else:
            path = (*owner, name)
        if kind is not None:
            owner = path
        items.append(Item(line[4:], kind, path, params))
    return items


ITEMS = documented_items()


def test_the_page_was_read() -> None:
    names = {item.path[-1] for item in ITEMS}
    assert {"OFASupervisor", "MaxRestartsExceededError", "raise_ping_timeout"} <= names
    assert len(ITEMS) == 21


def instance_of(cls: type) -> Any:
    """An instance made with a placeholder for each required argument."""
    required = [
        p
        for p in inspect.signature(cls).parameters.values()
        if p.default is EMPTY and p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    return cls(*[_noop for _ in required])


def _noop() -> None:
    pass


def resolve(path: tuple[str, ...]) -> Any:
    if len(path) == 1:
        return getattr(otp_py, path[0])
    owner: Any = otp_py
    for name in path[:-1]:
        owner = getattr(owner, name)
    assert isinstance(owner, type), f"{'.'.join(path[:-1])} is not a class"
    return getattr(instance_of(owner), path[-1])


def parse_params(params: str) -> list[tuple[str, Any]]:
    """``"a, b=None"`` -> ``[("a", EMPTY), ("b", None)]``."""
    arguments = ast.parse(f"def f({params}): pass").body[0].args  # type: ignore[attr-defined]
    names = [a.arg for a in arguments.args]
    defaults = [ast.literal_eval(d) for d in arguments.defaults]
    return list(zip(names, [EMPTY] * (len(names) - len(defaults)) + defaults, strict=True))


def assert_signature(obj: Any, params: str) -> None:
    """The documented parameters, in order, with their defaults; anything more must
    be keyword-only and optional (``multiprocessing.Process`` adds ``daemon``)."""
    actual = list(inspect.signature(obj).parameters.values())
    documented = parse_params(params)
    head, rest = actual[: len(documented)], actual[len(documented) :]
    assert [(p.name, p.default) for p in head] == documented
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in head)
    assert all(p.kind is p.KEYWORD_ONLY and p.default is not EMPTY for p in rest), rest


@pytest.mark.parametrize("item", ITEMS, ids=[".".join(item.path) for item in ITEMS])
def test_documented_name_exists_with_its_signature(item: Item) -> None:
    if len(item.path) == 1:
        assert item.path[0] in otp_py.__all__
    obj = resolve(item.path)
    if item.kind == "exception":
        assert isinstance(obj, type) and issubclass(obj, Exception)
    elif item.kind == "class":
        assert isinstance(obj, type)
    if item.params is not None:
        assert callable(obj)
        assert_signature(obj, item.params)
    elif item.kind is None:
        assert not inspect.ismethod(obj), f"{item.heading} is documented as an attribute"
