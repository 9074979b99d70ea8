"""``python -m otp_py.cli``: the ``otp-py`` command line."""

from otp_py.cli.main import main

raise SystemExit(main())
