"""The soak's command worker: runs until stopped; SIGUSR1 makes it exit with status
3 (a crash). Not a test module."""

import signal
import sys

signal.signal(signal.SIGUSR1, lambda signum, frame: sys.exit(3))
while True:
    signal.pause()
