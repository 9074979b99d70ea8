"""What the children of ``stderr_flood_tree.py`` run: numbered lines to standard error.

Not a test module (a module of its own, so that the fork server can import it).
"""

from __future__ import annotations

import os

LINE = 100
"""Bytes per line written (with its newline)."""

WRITE_LINES = 100
"""Lines per write (a 10,000-byte write: longer than a pipe's atomic write, so a
reader sees lines cut at the chunk borders)."""


def lines(name: str, total: int) -> None:
    """Write ``total`` bytes of lines ``"<name> <seq> xxx...\\n"`` to fd 2."""
    count = total // LINE
    seq = 0
    while seq < count:
        block = []
        for _ in range(min(WRITE_LINES, count - seq)):
            head = f"{name} {seq:09d} "
            block.append(head + "x" * (LINE - len(head) - 1) + "\n")
            seq += 1
        view = memoryview("".join(block).encode())
        while view:
            view = view[os.write(2, view):]
