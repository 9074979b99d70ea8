"""The soak's command worker: runs until stopped; SIGUSR1 makes it exit with status
3 (a crash), SIGHUP makes it flood its standard error, SIGWINCH makes it leave a
``sleep`` behind in a session of its own and exit with status 3. Not a test module."""

import os
import signal
import subprocess
import sys

FLOOD_BYTES = 8 * 2**20


def flood(signum, frame):
    chunk = b"flood " * 10922 + b"\n"
    written = 0
    while written < FLOOD_BYTES:
        written += os.write(2, chunk)


def escape(signum, frame):
    subprocess.Popen(["otp-soak-daemon", "3600"], executable="/bin/sleep",
                     start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    os._exit(3)


signal.signal(signal.SIGUSR1, lambda signum, frame: sys.exit(3))
signal.signal(signal.SIGHUP, flood)
signal.signal(signal.SIGWINCH, escape)
while True:
    signal.pause()
