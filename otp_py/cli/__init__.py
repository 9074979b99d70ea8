"""``otp-py``: run a supervision tree from the command line, and watch it.

The command line is an application on top of the library: it imports only the
public API (``import otp_py as otp``), as any user program would; an import-linter
contract keeps it that way.

* ``otp-py demo``: an embedded tree whose children crash on purpose, in a live view.
* ``otp-py run MODULE:ATTR | tree.toml``: run a tree declared in Python or TOML.
* ``otp-py check tree.toml``: validate a tree file; each error with its location.
* ``otp-py tree MODULE:ATTR | tree.toml [--mermaid]``: print the declared tree.
* ``otp-py status`` and ``otp-py ctl restart|terminate|stop PATH``: talk to a running
  tree over its control socket (see :mod:`otp_py.cli.control`).

:func:`otp_py.cli.main.main` is the console script's entry point. This package
imports nothing itself: process children of the demo are loaded from
:mod:`otp_py.cli.demo` in fresh processes, which need none of the command line.
"""
