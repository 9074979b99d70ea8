"""Names: what an id or a name may hold, and the tree-wide child names a spec declares.

**What a name may hold.** An id (and a tree-wide name, a shared budget's name) travels
far from where it was written: into paths (``pool/w1``), the control socket's file
name, ``otp-py status`` rows, log lines and reports. So it must be printable text
that cannot forge any of them: no control or format characters (Unicode categories
Cc and Cf: newline, NUL, ANSI escapes, bidi overrides), no line or paragraph
separators (Zl, Zp), no ``/`` (the path separator), no surrounding spaces, and
between 1 and :data:`MAX_NAME_LENGTH` characters (:func:`name_problem`).

**Tree-wide names.** A child (worker or supervisor) may carry a ``name`` unique across
its whole tree, as a registered name is unique across an Erlang node.
:func:`declared_names` reads a spec and returns every name it declares with the path
of its child; the runtime keeps the tree's registry (``otp_py/runtime/registry.py``)
and adds the names that ``start_child`` brings. Two things are refused, with a
:class:`~otp_py.SpecError` naming the child and the field ``name``: a name declared
twice, and a name inside the template of a simple_one_for_one supervisor (every
dynamic child would carry it; give each its own with ``start_child(name=...)``
instead).

Pure: it only reads strings and walks specs.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Final

from otp_py._errors import SpecError

__all__ = ["MAX_NAME_LENGTH", "declared_names", "name_problem"]

MAX_NAME_LENGTH: Final = 255
"""The longest id accepted, in characters (a file name's limit, and more than any
row of a terminal shows)."""

_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})


def name_problem(value: str) -> str | None:
    """What is wrong with ``value`` as an id or a name, or None if nothing is."""
    if not value:
        return "an empty string"
    if len(value) > MAX_NAME_LENGTH:
        return f"{len(value)} characters long (at most {MAX_NAME_LENGTH})"
    for index, char in enumerate(value):
        category = unicodedata.category(char)
        if category in _FORBIDDEN_CATEGORIES:
            code = f"U+{ord(char):04X}"
            name = unicodedata.name(char, "")
            shown = f"{name} ({code}" if name else f"{code} ({char!r}"
            return (f"the control or format character {shown}, category {category}) at "
                    f"index {index}")
    if "/" in value:
        return "a '/' (it separates the ids of a path)"
    if value != value.strip():
        return "surrounding spaces"
    return None


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
                            "start_child(name=...)", value=name)
        other = found.get(name)
        if other is not None:
            raise SpecError(spec.id, "name", f"name {name!r} is already the name of "
                            f"{'/'.join(other)!r}; names are unique across the whole tree "
                            f"(this child is {'/'.join(path)!r})", kind="duplicate_name",
                            value=name)
        found[name] = path
    if not getattr(spec, "is_supervisor", False):
        return
    template = "/".join(path) if spec.strategy.dynamic else in_template
    for child in spec.children:
        _walk(child, (*path, child.id), found, template)
