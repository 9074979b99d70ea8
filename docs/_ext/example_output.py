"""Sphinx directive that runs an example script at build time and shows what it printed.

``.. example-output:: ../examples/howto_simulate.py``
    Runs the script (path relative to the page, as for ``literalinclude``) with the
    Python that runs Sphinx and includes its standard output as a literal block. The
    output shown is therefore the output of the code shown, as of this build: it
    cannot drift from it.

Options:

``:timeout:``
    Seconds the script may run (default: the ``example_output_timeout`` setting,
    60 s).

A script that exits with a non-zero status, times out or cannot be started is an
error, not an empty block: the build, run with ``-W``, fails and says why.

Settings (``conf.py``):

``example_output_cwd``
    The working directory of the scripts (default: the script's own directory).
``example_output_pythonpath``
    Directories put in front of ``PYTHONPATH`` for the scripts (default: none), so
    they import the project from its checkout like the pages' ``autodoc`` does.
``example_output_timeout``
    The default timeout in seconds.

:func:`run_example` does the running; it needs neither Sphinx nor docutils, which
are imported only when Sphinx loads the extension, so tests can compare what the
directive shows with what the script prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sphinx.application import Sphinx

__all__ = ["ExampleFailedError", "run_example", "setup"]

DEFAULT_TIMEOUT = 60.0


class ExampleFailedError(RuntimeError):
    """The example script did not run to a successful end."""


def run_example(
    script: str | os.PathLike[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    pythonpath: Sequence[str | os.PathLike[str]] = (),
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """Run ``script`` with this interpreter and return its standard output.

    ``cwd`` defaults to the script's directory; ``pythonpath`` entries are put in
    front of ``PYTHONPATH``. Raises :class:`ExampleFailedError` (with the end of the
    script's standard error) when it exits with a non-zero status or runs longer
    than ``timeout`` seconds.
    """
    path = Path(script).resolve()
    if not path.is_file():
        raise ExampleFailedError(f"no such example: {path}")
    env = dict(os.environ)
    if pythonpath:
        entries = [str(Path(p).resolve()) for p in pythonpath]
        if env.get("PYTHONPATH"):
            entries.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(entries)
    try:
        result = subprocess.run(
            [sys.executable, str(path)],
            cwd=str(cwd) if cwd is not None else str(path.parent),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ExampleFailedError(f"{path.name} still ran after {timeout:g} s") from None
    except OSError as exc:
        raise ExampleFailedError(f"cannot run {path.name}: {exc}") from None
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-10:])
        raise ExampleFailedError(f"{path.name} exited with status {result.returncode}:\n{tail}")
    return result.stdout


def _directive() -> type:
    """The directive class (built here so that importing this module needs no Sphinx)."""
    from docutils import nodes
    from docutils.parsers.rst import directives
    from sphinx.util.docutils import SphinxDirective

    class ExampleOutputDirective(SphinxDirective):
        """``.. example-output:: PATH``: the standard output of running PATH."""

        has_content = False
        required_arguments = 1
        optional_arguments = 0
        option_spec = {"timeout": directives.positive_int}

        def run(self) -> list[nodes.Node]:
            relative, absolute = self.env.relfn2path(self.arguments[0])
            self.env.note_dependency(relative)  # rebuild the page when the script changes
            config = self.config
            timeout = self.options.get("timeout", config.example_output_timeout)
            try:
                output = run_example(
                    absolute,
                    cwd=config.example_output_cwd,
                    pythonpath=config.example_output_pythonpath,
                    timeout=timeout,
                )
            except ExampleFailedError as exc:
                error = self.state.document.reporter.error(
                    f"{self.name}: {exc}", line=self.lineno
                )
                return [error]
            text = output.rstrip("\n")
            block = nodes.literal_block(text, text)
            block["language"] = "text"
            self.set_source_info(block)
            return [block]

    return ExampleOutputDirective


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directive and its settings (Sphinx's extension entry point)."""
    app.add_config_value("example_output_cwd", None, "env")
    app.add_config_value("example_output_pythonpath", [], "env")
    app.add_config_value("example_output_timeout", DEFAULT_TIMEOUT, "env", types=(int, float))
    app.add_directive("example-output", _directive())
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
