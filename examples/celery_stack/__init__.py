"""A Celery 5 + Redis + web app stack supervised by otp_py, and its chaos driver.

See README.md beside this file. Nothing here is part of the library: it is an
application of otp_py's public API and command line.
"""
