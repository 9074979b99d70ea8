"""Tree-wide child names: which names a spec declares, and where.

A child (worker or supervisor) may carry a ``name`` unique across its whole tree, as a
registered name is unique across an Erlang node. This module reads a spec and returns
every name it declares with the path of its child; the runtime keeps the tree's
registry (``otp_py/runtime/registry.py``) and adds the names that ``start_child``
brings. Pure: it only walks specs.

Two things are refused, with a :class:`~otp_py.SpecError` naming the child and the
field ``name``: a name declared twice, and a name inside the template of a
simple_one_for_one supervisor (every dynamic child would carry it; give each its own
with ``start_child(name=...)`` instead).
"""

from __future__ import annotations

from typing import Any

from otp_py._errors import SpecError

__all__ = ["declared_names"]


def declared_names(spec: Any, base: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Every name declared in ``spec`` (a child or a supervisor spec), mapped to its
    child's path: ``base`` followed by the ids from ``spec`` down."""
    found: dict[str, tuple[str, ...]] = {}
    _walk(spec, (*base, spec.id), found, in_template=None)
    return found


def _walk(
    spec: Any, path: tuple[str, ...], found: dict[str, tuple[str, ...]], in_template: str | None
) -> None:
    name = getattr(spec, "name", None)
    if name is not None:
        if in_template is not None:
            raise SpecError(spec.id, "name", f"name {name!r} is inside the child template of "
                            f"simple_one_for_one supervisor {in_template!r}: every dynamic "
                            "child would carry it; give each its own with "
                            "start_child(name=...)")
        other = found.get(name)
        if other is not None:
            raise SpecError(spec.id, "name", f"name {name!r} is already the name of "
                            f"{'/'.join(other)!r}; names are unique across the whole tree "
                            f"(this child is {'/'.join(path)!r})")
        found[name] = path
    if not getattr(spec, "is_supervisor", False):
        return
    template = "/".join(path) if spec.strategy.dynamic else in_template
    for child in spec.children:
        _walk(child, (*path, child.id), found, template)
