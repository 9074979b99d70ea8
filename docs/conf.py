"""Sphinx configuration for the otp_py documentation.

Build with warnings as errors (as tox's ``docs`` environment does)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The build needs no network: no intersphinx, the default (alabaster) theme.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
]

exclude_patterns = ["_build"]
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

html_theme = "alabaster"
html_title = f"otp_py {release}"
html_theme_options = {
    "description": "Erlang/OTP supervision trees for Python",
    "fixed_sidebar": True,
}
