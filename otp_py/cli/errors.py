"""How the command line fails: one clear line on stderr and an exit status.

A user mistake (a wrong path, an invalid tree file, no tree running) is a
:class:`CliError`; :func:`otp_py.cli.main.main` prints its message and exits with its
code, never with a traceback (``--debug`` shows one).
"""

from __future__ import annotations

from typing import Final

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "CliError"]

EXIT_OK: Final = 0
"""The command did what was asked (a tree stopped because it was asked to)."""

EXIT_FAILED: Final = 1
"""The tree gave up or failed to start, or a control request was refused."""

EXIT_USAGE: Final = 2
"""The command line or the tree declaration is wrong."""


class CliError(Exception):
    """A failure to report as one line, exiting with ``code``.

    ``lines`` holds the message (usually one line; ``check`` reports one line per
    problem in a tree file). ``located`` lines start with their own place
    (``tree.toml:12: ...``) and are printed as they are, like a compiler's.
    """

    def __init__(self, *lines: str, code: int = EXIT_FAILED, located: bool = False) -> None:
        if not lines:
            raise TypeError("CliError needs a message")
        self.lines = lines
        self.code = code
        self.located = located
        super().__init__("\n".join(lines))
