"""Install what the Celery stack needs into the running interpreter's environment.

Run ``python -m examples.celery_stack.setup``. It is idempotent: a requirement that is
already met is left alone, and pip is only called for the missing ones. Redis itself
is Debian's ``redis-server`` (``apt-get install redis-server``); this command only
checks that it is there, because installing system packages is the operator's call.

``--check`` installs nothing and exits 1 if anything is missing (the test suite uses
it to decide whether to skip).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys

# distribution name -> the requirement handed to pip when it is missing
REQUIREMENTS: dict[str, str] = {
    "celery": "celery[redis]>=5.3,<6",
    "redis": "redis>=4.5",
    "uvicorn": "uvicorn>=0.23",
    "supervisor": "supervisor>=4.2",
    "psutil": "psutil>=5.9",
    "matplotlib": "matplotlib>=3.7",  # only for the plot (--plot); small next to celery
}


def missing() -> list[str]:
    """The requirements whose distribution is not installed in this environment."""
    absent = []
    for dist, requirement in REQUIREMENTS.items():
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            absent.append(requirement)
    return absent


def redis_server() -> str | None:
    """Where ``redis-server`` is, or None."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if shutil.which("/usr/bin/redis-server") else None
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.celery_stack.setup",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="install nothing; exit 1 if anything is missing")
    args = parser.parse_args(argv)
    absent = missing()
    server = redis_server()
    if args.check:
        for requirement in absent:
            print(f"missing: {requirement}")
        if server is None:
            print("missing: redis-server (apt-get install redis-server)")
        return 1 if absent or server is None else 0
    if absent:
        print(f"installing: {' '.join(absent)}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *absent], check=True)
    else:
        print("python requirements: all installed")
    if server is None:
        print("redis-server is not installed: apt-get install redis-server", file=sys.stderr)
        return 1
    print(f"redis-server: {server}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
