"""Sphinx configuration for the otp_py documentation.

Build with warnings as errors (as tox's ``docs`` environment does)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The build needs no network: no intersphinx. The theme is Furo (``pip install -e
'.[docs]'``): responsive, so wide code blocks and tables (the benchmark table) scroll
in their own box instead of being cut at the page's edge.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # otp_py, when it is not installed
sys.path.insert(0, str(HERE / "_ext"))  # local extensions

import otp_py  # noqa: E402 - after the path set-up

project = "otp_py"
author = "otp_py contributors"
copyright = "otp_py contributors"
release = otp_py.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "restart_table",  # docs/_ext: .. restart-table:: and .. strategy-plans::
    "example_output",  # docs/_ext: .. example-output:: (runs an example, shows its output)
]

exclude_patterns = ["_build"]

# example_output: examples run from the repository root, importing this checkout.
example_output_cwd = str(HERE.parent)
example_output_pythonpath = [str(HERE.parent)]
example_output_timeout = 60

nitpicky = False

# autodoc: document members in source order, show type hints in the signature only
# as written (the library is fully annotated; the prose says what they mean).
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_default_options = {"members": True, "show-inheritance": True}
# An override without a docstring of its own (OneForOne.plan, SlidingWindow.budget...)
# is not repeated with its base class's text: the base class documents the contract.
autodoc_inherit_docstrings = False

napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"otp_py {release}"


# napoleon reads the first line of an *attribute's* docstring as "type: text", so
# "Whether children are dynamic (only SimpleOneForOne): started at run time..."
# would render as a type. otp_py's attribute docstrings are plain prose: keep them
# as written (napoleon still handles the Google-style sections of functions).
_attribute_docstrings: dict[str, list[str]] = {}


def _keep_attribute_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what == "attribute":
        _attribute_docstrings[name] = list(lines)


def _restore_attribute_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what == "attribute" and name in _attribute_docstrings:
        lines[:] = _attribute_docstrings.pop(name)


def setup(app: Any) -> None:
    """Sphinx calls this with the application: connect the two hooks around napoleon
    (whose own hook runs at the default priority, 500)."""
    app.connect("autodoc-process-docstring", _keep_attribute_docstring, priority=100)
    app.connect("autodoc-process-docstring", _restore_attribute_docstring, priority=900)
