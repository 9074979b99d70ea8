"""What a name may hold: the rule for child and supervisor ids and budget names.

An id travels far from where it was written: into paths (``pool/w1``), the control
socket's file name, ``otp-py status`` rows, log lines and reports. So it must be
printable text that cannot forge any of them: no control or format characters
(Unicode categories Cc and Cf: newline, NUL, ANSI escapes, bidi overrides), no line
or paragraph separators (Zl, Zp), no ``/`` (the path separator), no surrounding
spaces, and between 1 and :data:`MAX_NAME_LENGTH` characters. Pure: no I/O.
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["MAX_NAME_LENGTH", "name_problem"]

MAX_NAME_LENGTH: Final = 255
"""The longest id accepted, in characters (a file name's limit, and more than any
row of a terminal shows)."""

_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})


def name_problem(value: str) -> str | None:
    """What is wrong with ``value`` as an id, or None if nothing is."""
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
