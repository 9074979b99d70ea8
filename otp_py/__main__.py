"""``python -m otp_py``: the ``otp-py`` command line (see :mod:`otp_py.cli`)."""

from otp_py.cli.main import main

raise SystemExit(main())
