"""Compatibility layers for older supervisor APIs, built only on otp_py's public API.

* :mod:`otp_py.compat.ofa`: Celery 0.4's ``celery.supervisor`` (``OFASupervisor``,
  ``MaxRestartsExceededError``, ``raise_ping_timeout``), re-exported as
  ``otp_py.OFASupervisor`` and friends.
"""

from otp_py.compat.ofa import MaxRestartsExceededError, OFASupervisor, raise_ping_timeout

__all__ = ["MaxRestartsExceededError", "OFASupervisor", "raise_ping_timeout"]
